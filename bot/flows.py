"""One customer message, end to end: store it, ask Rasa, store and push the replies.

This is the only place that wires storage, Rasa, sentiment and handoff together.
Storage calls are synchronous SQLAlchemy and run in worker threads.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from bot.desk import (
    HandoffDesk,
    assess_turn,
    fold_late_score,
    record_sentiment,
    update_mood,
)
from bot.rasa_client import RasaClient, RasaTurn, RasaUnavailable
from bot.scoring import SentimentBatcher
from bot.serializers import conversation_view, is_internal, message_view
from handoff.policy import Decision, PolicyError, PolicySettings, load_policy
from sentiment.analyzer import SentimentScores
from tandem.bus import EventBus, conversation_topic
from tandem.conversations import service
from tandem.conversations.models import Conversation, Message
from tandem.conversations.states import BOT_HANDLES, State
from tandem.db import session_scope

logger = logging.getLogger(__name__)


def _mtime(path: Path | None) -> int | None:
    try:
        return path.stat().st_mtime_ns if path is not None else None
    except OSError:
        return None

BOT_UNAVAILABLE_TEXT = (
    "Sorry, I'm having trouble answering right now. Your message is saved, "
    "and you can ask for a person at any time."
)
HANDOFF_DEFAULT_TEXT = "I'll connect you with a person. Please stay with me."


@dataclass
class TurnResult:
    message: dict[str, Any]
    replies: list[dict[str, Any]] = field(default_factory=list)
    conversation: dict[str, Any] = field(default_factory=dict)
    duplicate: bool = False


@dataclass
class _Incoming:
    message: dict[str, Any]
    message_id: int
    forward_to_bot: bool
    rasa_metadata: dict[str, Any]
    duplicate: bool
    state: str = State.BOT.value
    assigned_staff_id: int | None = None


@dataclass
class _BotOutcome:
    replies: list[dict[str, Any]]
    conversation: dict[str, Any]
    decision: Decision | None
    handoff_trigger: str | None


class ChatFlows:
    def __init__(
        self,
        engine: Engine,
        rasa: RasaClient,
        bus: EventBus,
        desk: HandoffDesk,
        scorer: SentimentBatcher,
        policy: PolicySettings,
        policy_file: Path | None = None,
    ) -> None:
        self.engine = engine
        self.rasa = rasa
        self.bus = bus
        self.desk = desk
        self.scorer = scorer
        # Scores that arrive after their turn (the model was still loading), being stored.
        self._late_scores: set[asyncio.Task[None]] = set()
        self.use_policy(policy)
        # The owner's file: re-read when it changes, so that every gateway process follows
        # an edit made through another one (or by hand).
        self.policy_file = policy_file
        self._policy_mtime = _mtime(policy_file)
        # One turn at a time per conversation, so replies keep the customer's order.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def use_policy(self, policy: PolicySettings) -> None:
        """Apply a new handoff policy from the next turn on (the owner edited it)."""
        self.policy = policy
        self.fallback_intents = frozenset(policy.triggers.fallbacks.intents)

    def follow_policy_file(self) -> None:
        mtime = _mtime(self.policy_file)
        if self.policy_file is None or mtime is None or mtime == self._policy_mtime:
            return
        self._policy_mtime = mtime
        try:
            self.use_policy(load_policy(self.policy_file))
        except PolicyError as error:
            # A broken edit must not stop the chat: keep the policy that worked.
            logger.error("%s; keeping the handoff policy in force", error)
            return
        logger.info("handoff policy reloaded from %s", self.policy_file)

    def _lock(self, conversation_id: str) -> asyncio.Lock:
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[conversation_id] = lock
        return lock

    async def start_conversation(
        self, channel: str, customer_id: int | None = None, verified_via: str | None = None
    ) -> dict[str, Any]:
        def create() -> dict[str, Any]:
            with session_scope(self.engine) as session:
                return conversation_view(
                    service.create_conversation(
                        session,
                        channel=channel,
                        customer_id=customer_id,
                        verified_via=verified_via,
                    )
                )

        return await run_in_threadpool(create)

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            with session_scope(self.engine) as session:
                return conversation_view(service.get_conversation(session, conversation_id))

        return await run_in_threadpool(read)

    async def history(self, conversation_id: str, after_id: int = 0) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            with session_scope(self.engine) as session:
                service.get_conversation(session, conversation_id)
                # Internal staff notes never reach the customer.
                return [
                    message_view(m)
                    for m in service.list_messages(session, conversation_id, after_id=after_id)
                    if not is_internal(m)
                ]

        return await run_in_threadpool(read)

    async def customer_message(
        self,
        conversation_id: str,
        text: str,
        client_message_id: str | None = None,
        button_payload: str | None = None,
    ) -> TurnResult:
        """Store the customer's message, then let the bot answer if it has the conversation.

        `text` is what the customer saw and is stored; a quick-reply button's
        `button_payload` (such as "/affirm") is what Rasa receives instead.
        """
        self.follow_policy_file()
        async with self._lock(conversation_id):
            incoming = await run_in_threadpool(
                self._store_incoming, conversation_id, text, client_message_id
            )
            if incoming.duplicate:
                return TurnResult(message=incoming.message, duplicate=True)
            await self._publish(conversation_id, {"type": "message", "message": incoming.message})
            if not incoming.forward_to_bot:
                return await self._held_turn(conversation_id, text, incoming)

            # Sentiment runs in its worker thread while Rasa thinks.
            scoring = self._start_scoring(text)
            await self._publish(conversation_id, {"type": "typing", "sender": "bot", "on": True})
            try:
                turn = await self.rasa.send(
                    conversation_id, button_payload or text, incoming.rasa_metadata
                )
            except RasaUnavailable as error:
                logger.warning("conversation %s: %s", conversation_id, error)
                turn = None
            finally:
                await self._publish(
                    conversation_id, {"type": "typing", "sender": "bot", "on": False}
                )
            scores = await self._settle_score(conversation_id, incoming.message_id, scoring)

            if turn is None:
                replies, conversation = await run_in_threadpool(
                    self._store_bot_unavailable, conversation_id, incoming.message_id, scores
                )
                decision = None
            else:
                outcome = await run_in_threadpool(
                    self._store_bot_turn, conversation_id, incoming.message_id, turn, scores
                )
                replies, conversation, decision = (
                    outcome.replies,
                    outcome.conversation,
                    outcome.decision,
                )
            for reply in replies:
                await self._publish(conversation_id, {"type": "message", "message": reply})
            if decision is not None and decision.escalate:
                actor = "policy"
                replies = replies + await self.desk.escalate(conversation_id, decision, actor=actor)
                conversation = await self.conversation(conversation_id)
            return TurnResult(message=incoming.message, replies=replies, conversation=conversation)

    async def _held_turn(self, conversation_id: str, text: str, incoming: _Incoming) -> TurnResult:
        """A message the bot does not answer: staff have it, or the offline flow does."""
        if incoming.state == State.OFFLINE_TICKET:
            step = await run_in_threadpool(
                self.desk.offline_step, conversation_id, incoming.message_id
            )
            if step.forward:
                # The ticket is complete: the customer is back with the bot.
                return await self._forward_after_ticket(conversation_id, text, incoming)
            if step.answer_first:
                # A question where the form expected a name or an address: the bot answers
                # it, then the form asks again (once).
                answered = await self._forward_after_ticket(conversation_id, text, incoming)
                again = await run_in_threadpool(self.desk.offline_reask, conversation_id)
                for reply in again:
                    await self._publish(conversation_id, {"type": "message", "message": reply})
                return TurnResult(
                    message=answered.message,
                    replies=answered.replies + again,
                    conversation=await self.conversation(conversation_id),
                )
            for reply in step.replies:
                await self._publish(conversation_id, {"type": "message", "message": reply})
            await self._score_held(conversation_id, text, incoming)
            return TurnResult(
                message=incoming.message,
                replies=step.replies,
                conversation=await self.conversation(conversation_id),
            )
        await self.desk.to_staff(
            {
                "type": "customer_message",
                "conversation_id": conversation_id,
                "assigned_staff_id": incoming.assigned_staff_id,
                "message": incoming.message,
            }
        )
        await self._score_held(conversation_id, text, incoming)
        return TurnResult(message=incoming.message)

    async def _forward_after_ticket(
        self, conversation_id: str, text: str, incoming: _Incoming
    ) -> TurnResult:
        scoring = self._start_scoring(text)
        try:
            turn = await self.rasa.send(conversation_id, text, incoming.rasa_metadata)
        except RasaUnavailable as error:
            logger.warning("conversation %s: %s", conversation_id, error)
            scores = await self._settle_score(conversation_id, incoming.message_id, scoring)
            replies, conversation = await run_in_threadpool(
                self._store_bot_unavailable, conversation_id, incoming.message_id, scores
            )
            return TurnResult(incoming.message, replies, conversation)
        scores = await self._settle_score(conversation_id, incoming.message_id, scoring)
        outcome = await run_in_threadpool(
            self._store_bot_turn, conversation_id, incoming.message_id, turn, scores
        )
        for reply in outcome.replies:
            await self._publish(conversation_id, {"type": "message", "message": reply})
        replies = outcome.replies
        if outcome.decision is not None and outcome.decision.escalate:
            replies = replies + await self.desk.escalate(conversation_id, outcome.decision)
        return TurnResult(incoming.message, replies, await self.conversation(conversation_id))

    async def _score_held(self, conversation_id: str, text: str, incoming: _Incoming) -> None:
        scoring = self._start_scoring(text)
        scores = await self._settle_score(conversation_id, incoming.message_id, scoring)
        if scores is None:
            return

        def store() -> None:
            with session_scope(self.engine) as session:
                conversation = service.get_conversation(session, conversation_id, lock=True)
                message = session.get_one(Message, incoming.message_id)
                record_sentiment(message, scores)
                update_mood(conversation, message, scores, fallback=None)

        await run_in_threadpool(store)

    # --- sentiment that must not hold up a reply ---

    def _start_scoring(self, text: str) -> asyncio.Future[SentimentScores | None]:
        return asyncio.ensure_future(self.scorer.score(text))

    async def _settle_score(
        self,
        conversation_id: str,
        message_id: int,
        scoring: asyncio.Future[SentimentScores | None],
    ) -> SentimentScores | None:
        """The message's scores if they come in time; else None, and they are stored later.

        A model that is still loading (or a CPU too busy to score in time) must not delay
        the reply: the message is stored unscored, marked `sentiment: pending`, and scored
        in the background when the model is ready, so the sentiment log stays complete.
        """
        if not scoring.done():
            await asyncio.wait({scoring}, timeout=self.scorer.turn_wait_seconds())
        if scoring.done():
            return None if scoring.cancelled() else scoring.result()
        await run_in_threadpool(self._mark_score_pending, message_id)
        task = asyncio.ensure_future(self._store_late_score(conversation_id, message_id, scoring))
        self._late_scores.add(task)
        task.add_done_callback(self._late_scores.discard)
        return None

    def _mark_score_pending(self, message_id: int) -> None:
        with session_scope(self.engine) as session:
            message = session.get_one(Message, message_id)
            message.payload = {**(message.payload or {}), "sentiment": "pending"}

    async def _store_late_score(
        self,
        conversation_id: str,
        message_id: int,
        scoring: asyncio.Future[SentimentScores | None],
    ) -> None:
        try:
            scores = await scoring
        except Exception:
            logger.exception("late sentiment score failed for message %s", message_id)
            scores = None

        def store() -> None:
            with session_scope(self.engine) as session:
                # The conversation's lock orders this after the turn's own storage step.
                conversation = service.get_conversation(session, conversation_id, lock=True)
                message = session.get_one(Message, message_id)
                record_sentiment(message, scores)
                later = session.scalar(
                    select(func.count(Message.id)).where(
                        Message.conversation_id == conversation_id,
                        Message.sender == "customer",
                        Message.id > message_id,
                    )
                )
                fold_late_score(conversation, message, scores, int(later or 0), self.policy)
                payload = dict(message.payload or {})
                # "unavailable": the model never loaded; the message stays unscored for good.
                payload["sentiment"] = "late" if scores is not None else "unavailable"
                message.payload = payload

        # After the turn that stored the message (it holds this lock until it is done).
        async with self._lock(conversation_id):
            await run_in_threadpool(store)

    async def wait_for_late_scores(self) -> None:
        """For tests and shutdown: until every late score is stored."""
        while self._late_scores:
            await asyncio.gather(*list(self._late_scores), return_exceptions=True)

    async def _publish(self, conversation_id: str, event: dict[str, Any]) -> None:
        await self.bus.publish(conversation_topic(conversation_id), event)

    # --- storage steps (worker threads) ---

    def _store_incoming(
        self, conversation_id: str, text: str, client_message_id: str | None
    ) -> _Incoming:
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            message, created = service.add_message(
                session,
                conversation,
                sender="customer",
                text=text,
                client_message_id=client_message_id,
            )
            if not created:
                return _Incoming(message_view(message), message.id, False, {}, True)
            if conversation.state == State.CLOSED:
                service.transition(
                    session,
                    conversation,
                    State.BOT,
                    actor="customer",
                    reason="the customer wrote again after the conversation was closed",
                )
            forward = State(conversation.state) in BOT_HANDLES
            if not forward:
                # The bot is silent while a person has (or will have) the conversation.
                message.status = "held"
            session.flush()
            return _Incoming(
                message=message_view(message),
                message_id=message.id,
                forward_to_bot=forward,
                rasa_metadata=_rasa_metadata(conversation),
                duplicate=False,
                state=conversation.state,
                assigned_staff_id=conversation.assigned_staff_id,
            )

    def _store_bot_turn(
        self,
        conversation_id: str,
        message_id: int,
        turn: RasaTurn,
        scores: SentimentScores | None,
    ) -> _BotOutcome:
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            customer_message = session.get_one(Message, message_id)
            service.record_nlu(customer_message, turn.parse_data)
            record_sentiment(customer_message, scores)
            customer_message.status = "answered"
            replies = []
            handoff_trigger: str | None = None
            for rasa_message in turn.messages:
                stored, trigger = self._store_rasa_message(session, conversation, rasa_message)
                handoff_trigger = handoff_trigger or trigger
                if stored is not None:
                    replies.append(message_view(stored))
            mood = update_mood(
                conversation,
                customer_message,
                scores,
                fallback=customer_message.intent in self.fallback_intents,
            )
            decision = assess_turn(
                session,
                conversation,
                customer_message,
                mood,
                self.policy,
                fallback_intents=self.fallback_intents,
                handoff_trigger=handoff_trigger,
            )
            return _BotOutcome(replies, conversation_view(conversation), decision, handoff_trigger)

    def _store_rasa_message(
        self, session: Session, conversation: Conversation, rasa_message: dict[str, Any]
    ) -> tuple[Message | None, str | None]:
        """Store one bot reply; also returns the handoff trigger when an action asked for one."""
        custom = rasa_message.get("custom")
        tandem = custom.get("tandem") if isinstance(custom, dict) else None
        text = rasa_message.get("text") or ""
        payload: dict[str, Any] = {}
        trigger: str | None = None
        if rasa_message.get("buttons"):
            payload["buttons"] = [
                {"title": b.get("title", ""), "payload": b.get("payload", "")}
                for b in rasa_message["buttons"]
            ]
        if isinstance(tandem, dict):
            payload["tandem"] = tandem
            text = text or str(tandem.get("text") or "")
            trigger = self._apply_bot_signal(session, conversation, tandem)
            if tandem.get("type") == "handoff" and not text:
                text = HANDOFF_DEFAULT_TEXT
        elif custom is not None:
            payload["custom"] = custom
        if not text and not payload.get("buttons"):
            return None, trigger
        message, _ = service.add_message(
            session, conversation, sender="bot", text=text, payload=payload or None
        )
        return message, trigger

    def _apply_bot_signal(
        self, session: Session, conversation: Conversation, signal: dict[str, Any]
    ) -> str | None:
        """Act on an action's custom payload; a handoff goes through the policy path."""
        kind = signal.get("type")
        if kind == "identified" and isinstance(signal.get("customer_id"), int):
            service.mark_identified(
                session,
                conversation,
                customer_id=signal["customer_id"],
                via=str(signal.get("via") or "chat"),
            )
        elif kind == "handoff" and conversation.state == State.BOT:
            return str(signal.get("reason") or "request_human")
        return None

    def _store_bot_unavailable(
        self, conversation_id: str, message_id: int, scores: SentimentScores | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            customer_message = session.get_one(Message, message_id)
            customer_message.status = "bot_unavailable"
            record_sentiment(customer_message, scores)
            update_mood(conversation, customer_message, scores, fallback=None)
            service.record_event(
                session,
                conversation,
                kind="bot_unavailable",
                actor="system",
                reason="Rasa did not answer",
                data={"message_id": message_id},
            )
            reply, _ = service.add_message(
                session,
                conversation,
                sender="system",
                text=BOT_UNAVAILABLE_TEXT,
                payload={"buttons": [{"title": "Talk to a person", "payload": "/request_human"}]},
            )
            return [message_view(reply)], conversation_view(conversation)


def _rasa_metadata(conversation: Conversation) -> dict[str, Any]:
    return {
        "conversation_id": conversation.id,
        "customer_id": conversation.customer_id,
        "verified": bool(conversation.customer_verified),
        # Who is asking, as a keyed tag: the actions limit order checks per client with it.
        "client": conversation.client_tag,
    }
