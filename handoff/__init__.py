"""Handoff: when a conversation goes from the bot to a person, and to whom.

Public API (no web code here; the gateway wires it in):

    policy    PolicySettings, load_policy, PolicyError, Signals, CustomerValue,
              Decision, Reason, evaluate, update_negative_streak, update_fallback_streak
    identity  sign_identity, verify_identity, VerifiedIdentity, IdentityError
    queue     HandoffQueue, QueueEntry, ClaimResult, StaffPresence, InProcessQueue
    redis_queue  RedisQueue
    factory   make_queue
    replay    Scenario, Turn, load_scenarios, replay_scenario, first_escalating_turn,
              load_stored_conversation, sentiment_tools
    dryrun    python -m handoff.dryrun FILE [--policy handoff.yml]
"""

from handoff.identity import IdentityError, VerifiedIdentity, sign_identity, verify_identity
from handoff.policy import (
    CustomerValue,
    Decision,
    PolicyError,
    PolicySettings,
    Reason,
    Signals,
    evaluate,
    load_policy,
    update_fallback_streak,
    update_negative_streak,
)
from handoff.queue import ClaimResult, HandoffQueue, InProcessQueue, QueueEntry, StaffPresence

__all__ = [
    "ClaimResult",
    "CustomerValue",
    "Decision",
    "HandoffQueue",
    "IdentityError",
    "InProcessQueue",
    "PolicyError",
    "PolicySettings",
    "QueueEntry",
    "Reason",
    "Signals",
    "StaffPresence",
    "VerifiedIdentity",
    "evaluate",
    "load_policy",
    "sign_identity",
    "update_fallback_streak",
    "update_negative_streak",
    "verify_identity",
]
