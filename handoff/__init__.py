"""Handoff: when a conversation goes from the bot to a person, and to whom.

A pure library: no web code, no imports from the app; paths and loaders are passed in.

    turn      decide_turn, TurnFacts, TurnOutcome: THE per-turn step (streaks, form
              answers, action-requested handoffs) that the gateway, the demo seeder, the
              dry-run and the benchmarks all call
    state     HandoffState: what a conversation remembers between turns (typed)
    signals   Handoff/Identified/Retry/Refused/UnderstoodSignal: actions <-> gateway
    policy    PolicySettings, load_policy, PolicyError, Signals, CustomerValue,
              Decision, Reason, Note, evaluate
    identity  sign_identity, verify_identity, VerifiedIdentity, IdentityError
    queue     HandoffQueue, QueueEntry, ClaimResult, StaffPresence, InProcessQueue
    redis_queue  RedisQueue
    factory   make_queue
    replay    Scenario, Turn, load_scenarios, replay_scenario, first_escalating_turn,
              sentiment_tools (the dry-run CLI is `python -m tandem.dryrun`)
"""

from handoff.identity import IdentityError, VerifiedIdentity, sign_identity, verify_identity
from handoff.policy import (
    CustomerValue,
    Decision,
    Note,
    PolicyError,
    PolicySettings,
    Reason,
    Signals,
    evaluate,
    load_policy,
)
from handoff.queue import ClaimResult, HandoffQueue, InProcessQueue, QueueEntry, StaffPresence
from handoff.state import HandoffState
from handoff.turn import TurnFacts, TurnOutcome, decide_turn

__all__ = [
    "ClaimResult",
    "CustomerValue",
    "Decision",
    "HandoffQueue",
    "HandoffState",
    "IdentityError",
    "InProcessQueue",
    "Note",
    "PolicyError",
    "PolicySettings",
    "QueueEntry",
    "Reason",
    "Signals",
    "StaffPresence",
    "TurnFacts",
    "TurnOutcome",
    "VerifiedIdentity",
    "decide_turn",
    "evaluate",
    "load_policy",
    "sign_identity",
    "verify_identity",
]
