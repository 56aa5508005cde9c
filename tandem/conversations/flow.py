"""One customer message, end to end, whatever its entry (HTTP, WebSocket, after a ticket,
after a return to the bot):

    store it -> score it (off the loop) -> the assistant (Rasa) -> store the replies
    -> the per-turn step (handoff.turn.decide_turn) -> a transition -> publish after commit

`customer_message` is the only entry and `_assistant_turn` the only way a message reaches
the assistant, so typing events and bus publishes happen on every path. Storage calls are
synchronous SQLAlchemy and run in worker threads.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from handoff import turn as turn_step
from handoff.identity import rasa_identity_metadata
from handoff.policy import Decision, PolicyError, PolicySettings, load_policy
from handoff.signals import (
    CUSTOM_KEY,
    PERSON_PAYLOAD,
    AnySignal,
    HandoffSignal,
    IdentifiedSignal,
    RefusedSignal,
    RetrySignal,
    UnderstoodSignal,
    read_signal,
)
from sentiment.analyzer import SentimentScores
from tandem.bus import EventBus
from tandem.conversations import service, transitions
from tandem.conversations.assistant import Assistant, AssistantTurn, AssistantUnavailable
from tandem.conversations.effects import Effects, Publisher
from tandem.conversations.facts import decide_stored_turn, entity_spans, record_sentiment
from tandem.conversations.models import Conversation, Message
from tandem.conversations.states import BOT_HANDLES, State
from tandem.conversations.views import conversation_view, is_internal, message_view
from tandem.db import session_scope
from tandem.desk import HandoffDesk
from tandem.scoring import SentimentBatcher

logger = logging.getLogger(__name__)

BOT_UNAVAILABLE_TEXT = (
    "Sorry, I'm having trouble answering right now. Your message is saved, "
    "and you can ask for a person at any time."
)
HANDOFF_DEFAULT_TEXT = "I'll connect you with a person. Please stay with me."


def _mtime(path: Path | None) -> int | None:
    try:
        return path.stat().st_mtime_ns if path is not None else None
    except OSError:
        return None


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
    duplicate: bool
    state: State = State.BOT
    rasa_metadata: dict[str, Any] = field(default_factory=dict)
    assigned_staff_id: int | None = None
    effects: Effects | None = None


class ChatFlows:
    def __init__(
        self,
        engine: Engine,
        assistant: Assistant,
        publisher: Publisher,
        desk: HandoffDesk,
        scorer: SentimentBatcher,
        policy: PolicySettings,
        policy_file: Path | None = None,
        *,
        identity_secret: str = "",
    ) -> None:
        self.engine = engine
        self.identity_secret = identity_secret
        self.assistant = assistant
        self.publisher = publisher
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

    @property
    def bus(self) -> EventBus:
        """Where the customer's WebSocket listens (the publisher's bus)."""
        return self.publisher.bus

    def use_policy(self, policy: PolicySettings) -> None:
        """Apply a new handoff policy from the next turn on (the owner edited it)."""
        self.policy = policy

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

    # ------------------------------------------------------------------ reading

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

    # ------------------------------------------------------------------ the turn

    async def customer_message(
        self,
        conversation_id: str,
        text: str,
        client_message_id: str | None = None,
        button_payload: str | None = None,
    ) -> TurnResult:
        """Store the customer's message, then let whoever has the conversation answer it.

        `text` is what the customer saw and is stored; a quick-reply button's
        `button_payload` (such as "/affirm") is what the assistant receives instead.
        """
        self.follow_policy_file()
        async with self._lock(conversation_id):
            incoming = await run_in_threadpool(
                self._store_incoming, conversation_id, text, client_message_id
            )
            if incoming.duplicate:
                return TurnResult(message=incoming.message, duplicate=True)
            await self.publisher.to_customer(
                conversation_id, {"type": "message", "message": incoming.message}
            )
            if incoming.effects is not None:
                await self.publisher.publish(incoming.effects)
            if incoming.state is State.OFFLINE_TICKET:
                return await self._offline_turn(conversation_id, text, incoming, button_payload)
            if incoming.state not in BOT_HANDLES:
                return await self._held_turn(conversation_id, text, incoming)
            return await self._assistant_turn(conversation_id, text, incoming, button_payload)

    async def _offline_turn(
        self, conversation_id: str, text: str, incoming: _Incoming, button_payload: str | None
    ) -> TurnResult:
        """The offline contact form has the message, unless it is not an answer to it."""
        step = await run_in_threadpool(
            self.desk.offline_step, conversation_id, incoming.message_id
        )
        if step.forward:
            # The ticket is complete: the customer is back with the bot.
            return await self._assistant_turn(conversation_id, text, incoming, button_payload)
        if step.answer_first:
            # A question where the form expected a name or an address: the bot answers it,
            # then the form asks again (once).
            answered = await self._assistant_turn(
                conversation_id, text, incoming, button_payload
            )
            # One question per turn: when the bot's answer asks one, the form asks later.
            bot_asked = any(
                reply["sender"] == "bot" and ends_with_question(reply["text"])
                for reply in answered.replies
            )
            again = (
                None
                if bot_asked
                else await run_in_threadpool(self.desk.offline_reask, conversation_id)
            )
            if again is not None:
                await self.publisher.publish(again)
            return TurnResult(
                message=answered.message,
                replies=answered.replies + (again.said if again else []),
                conversation=await self.conversation(conversation_id),
            )
        said = step.effects.said if step.effects else []
        if step.effects is not None:
            await self.publisher.publish(step.effects)
        await self._score_without_assistant(conversation_id, text, incoming)
        return TurnResult(
            message=incoming.message,
            replies=said,
            conversation=await self.conversation(conversation_id),
        )

    async def _held_turn(self, conversation_id: str, text: str, incoming: _Incoming) -> TurnResult:
        """A person has (or will have) the conversation: the bot stays silent, except to say
        once per wait that what the customer types while queued is kept."""
        await self.publisher.to_staff(
            {
                "type": "customer_message",
                "conversation_id": conversation_id,
                "assigned_staff_id": incoming.assigned_staff_id,
                "message": incoming.message,
            }
        )
        acknowledged = Effects(conversation_id)
        if incoming.state is State.QUEUED:
            acknowledged = await run_in_threadpool(self._acknowledge_queued, conversation_id)
            await self.publisher.publish(acknowledged)
        await self._score_without_assistant(conversation_id, text, incoming)
        return TurnResult(message=incoming.message, replies=acknowledged.said)

    def _acknowledge_queued(self, conversation_id: str) -> Effects:
        effects = Effects(conversation_id)
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            state = service.load_handoff(conversation)
            if conversation.state != State.QUEUED or state.queued_ack:
                return effects
            state.queued_ack = True
            service.save_handoff(conversation, state)
            message, _ = service.add_message(
                session,
                conversation,
                sender="system",
                text=self.desk.profile().say("handoff_queued_ack"),
                payload={"kind": "queued_ack"},
            )
            session.flush()
            effects.say(message)
        return effects

    async def _assistant_turn(
        self, conversation_id: str, text: str, incoming: _Incoming, button_payload: str | None
    ) -> TurnResult:
        """The only path to the assistant: typing on, ask, typing off, store, decide, publish."""
        # Sentiment runs in its worker thread while the assistant thinks.
        scoring = self._start_scoring(text)
        typing = {"type": "typing", "sender": "bot"}
        await self.publisher.to_customer(conversation_id, typing | {"on": True})
        try:
            answer: AssistantTurn | None = await self.assistant.send(
                conversation_id, button_payload or text, incoming.rasa_metadata
            )
        except AssistantUnavailable as error:
            logger.warning("conversation %s: %s", conversation_id, error)
            answer = None
        finally:
            await self.publisher.to_customer(conversation_id, typing | {"on": False})
        scores = await self._settle_score(conversation_id, incoming.message_id, scoring)
        effects, decision, conversation = await run_in_threadpool(
            self._store_turn, conversation_id, incoming.message_id, answer, scores
        )
        await self.publisher.publish(effects)
        replies = list(effects.said)
        if decision.escalate:
            replies += await self.desk.escalate(conversation_id, decision, actor="policy")
            # Only a handoff changed the state since the turn was stored: read it again.
            conversation = await self.conversation(conversation_id)
        return TurnResult(message=incoming.message, replies=replies, conversation=conversation)

    async def _score_without_assistant(
        self, conversation_id: str, text: str, incoming: _Incoming
    ) -> None:
        """A message nobody automated answers (staff or the form have it): mood and streaks."""
        scoring = self._start_scoring(text)
        scores = await self._settle_score(conversation_id, incoming.message_id, scoring)

        def store() -> None:
            with session_scope(self.engine) as session:
                conversation = service.get_conversation(session, conversation_id, lock=True)
                message = session.get_one(Message, incoming.message_id)
                record_sentiment(message, scores)
                decide_stored_turn(
                    session, conversation, message, self.policy, bot_answered=False
                )

        await run_in_threadpool(store)

    # ------------------------------------------------------------------ storage steps

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
                return _Incoming(message_view(message), message.id, duplicate=True)
            effects = None
            if conversation.state == State.CLOSED:
                effects = transitions.reopen(session, conversation)
            state = State(conversation.state)
            if state not in BOT_HANDLES:
                # The bot is silent while a person has (or will have) the conversation.
                message.status = "held"
            session.flush()
            return _Incoming(
                message=message_view(message),
                message_id=message.id,
                duplicate=False,
                state=state,
                # A verified customer travels signed: the actions trust nothing else.
                rasa_metadata=rasa_identity_metadata(
                    self.identity_secret,
                    conversation.id,
                    conversation.customer_id,
                    bool(conversation.customer_verified),
                )
                # A keyed hash of the client's address: order checks are limited per client.
                | {"client": conversation.client_tag},
                assigned_staff_id=conversation.assigned_staff_id,
                effects=effects,
            )

    def _store_turn(
        self,
        conversation_id: str,
        message_id: int,
        answer: AssistantTurn | None,
        scores: SentimentScores | None,
    ) -> tuple[Effects, Decision, dict[str, Any]]:
        """Store the assistant's replies (or the apology when it did not answer) and decide;
        also returns the conversation's view, so a calm turn needs no second read."""
        with session_scope(self.engine) as session:
            conversation = service.get_conversation(session, conversation_id, lock=True)
            customer_message = session.get_one(Message, message_id)
            record_sentiment(customer_message, scores)
            effects = Effects(conversation_id)
            handoff_request: str | None = None
            slot_retries = 0  # the form's count of rejected answers to one question
            slot_refused = False  # the form understood the answer but could not take it
            form_understood = False  # the NLU could not place it; the form read it
            bot_said: list[tuple[Message, dict[str, Any]]] = []
            if answer is None:
                customer_message.status = "bot_unavailable"
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
                    payload={
                        "buttons": [{"title": "Talk to a person", "payload": PERSON_PAYLOAD}]
                    },
                )
                session.flush()
                effects.say(reply)
            else:
                service.record_nlu(customer_message, answer.parse_data)
                customer_message.status = "answered"
                for bot_message in answer.messages:
                    stored, signal = self._store_bot_message(session, conversation, bot_message)
                    if isinstance(signal, HandoffSignal) and conversation.state == State.BOT:
                        handoff_request = handoff_request or signal.reason
                    elif isinstance(signal, RetrySignal):
                        slot_retries = max(slot_retries, signal.attempt)
                    elif isinstance(signal, RefusedSignal):
                        slot_refused = True
                    elif isinstance(signal, UnderstoodSignal):
                        form_understood = True
                    if stored is not None:
                        session.flush()
                        bot_said.append((stored, effects.say(stored)))
            decision = decide_stored_turn(
                session,
                conversation,
                customer_message,
                self.policy,
                handoff_request=handoff_request,
                slot_retries=slot_retries,
                slot_refused=slot_refused,
                fallback=False if form_understood else None,
                bot_answered=answer is not None,
                bot_texts=[view["text"] for view in effects.said if view["sender"] == "bot"],
            )
            if decision.escalate:
                withhold_questions(effects, bot_said)
            else:
                one_question_per_turn(effects, bot_said)
            return effects, decision, conversation_view(conversation)

    def _store_bot_message(
        self, session: Session, conversation: Conversation, bot_message: dict[str, Any]
    ) -> tuple[Message | None, AnySignal | None]:
        """Store one bot reply; also returns the action's signal, if it carries one."""
        custom = bot_message.get("custom")
        signal = read_signal(custom)
        text = bot_message.get("text") or ""
        payload: dict[str, Any] = {}
        if bot_message.get("buttons"):
            payload["buttons"] = [
                {"title": b.get("title", ""), "payload": b.get("payload", "")}
                for b in bot_message["buttons"]
            ]
        if isinstance(signal, IdentifiedSignal):
            payload["tandem"] = signal.model_dump()
            service.mark_identified(
                session, conversation, customer_id=signal.customer_id, via=signal.via
            )
        elif isinstance(signal, HandoffSignal):
            payload["tandem"] = signal.model_dump()
            text = text or signal.text or HANDOFF_DEFAULT_TEXT
        elif custom is not None and signal is None:
            payload["custom"] = custom
        if not text and not payload.get("buttons"):
            return None, signal
        message, _ = service.add_message(
            session, conversation, sender="bot", text=text, payload=payload or None
        )
        return message, signal

    # ------------------------------------------------------------------ late sentiment

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
                if scores is not None and conversation.mood:
                    folded = turn_step.fold_late_score(
                        service.load_handoff(conversation),
                        service.load_mood(conversation),
                        text=message.text,
                        entity_spans=entity_spans(message),
                        score=float(scores.score),
                        later_turns=int(later or 0),
                        policy=self.policy,
                    )
                    if folded is not None:
                        service.save_handoff(conversation, folded[0])
                        conversation.mood = folded[1].to_dict()
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


# A reply left after its question is taken off keeps at least this many words ("Sure." goes).
_KEPT_REPLY_WORDS = 4


def ends_with_question(text: str) -> bool:
    """A reply the customer is expected to answer (one question per turn is the rule)."""
    return text.rstrip().endswith("?")


def one_question_per_turn(
    effects: Effects, bot_said: list[tuple[Message, dict[str, Any]]]
) -> None:
    """The first question the bot asks in a turn is the one the customer answers: a form
    that rejects an answer asks again in its own words ("An order number has five digits,
    like 10482. Could you check it?"), or lists free times ("Which time would you like?"),
    and its usual question after that ("What time would suit you?") would be a second one.
    Later questions are kept for staff, as internal notes; a reply with buttons stays."""
    asked = False
    for message, view in bot_said:
        payload = message.payload or {}
        if asked and "?" in message.text and CUSTOM_KEY not in payload and not payload.get(
            "buttons"
        ):
            withhold(effects, message, view)
        asked = asked or ends_with_question(message.text)


def withhold(effects: Effects, message: Message, view: dict[str, Any]) -> None:
    """Take a question back from the customer; staff still see it, as an internal note."""
    effects.unsay(view)
    message.payload = {**(message.payload or {}), "internal": True, "kind": "withheld_question"}


def withhold_questions(effects: Effects, bot_said: list[tuple[Message, dict[str, Any]]]) -> None:
    """A handoff starts this turn, and the desk asks its own question (the offline form's
    name) or gives the queue position: the bot's question (a form's next ask) would be a
    second one nobody will act on. The customer gets one question per turn; staff still
    see the bot's question, as an internal note. A reply offering a person loses its
    buttons: the handoff makes the offer good."""
    for message, view in bot_said:
        payload = dict(message.payload or {})
        buttons = payload.get("buttons") or []
        if any(button.get("payload") == PERSON_PAYLOAD for button in buttons):
            # The bot offered a person (a form's second failure): the handoff makes it good.
            payload.pop("buttons")
            message.payload = payload or None
            view["buttons"] = []
        text = message.text.strip()
        if CUSTOM_KEY in payload or not ends_with_question(text):
            continue
        kept = " ".join(s.strip() for s in re.findall(r"[^.?!]*[.!](?:\s|$)", text)).strip()
        if not payload.get("buttons") and len(kept.split()) >= _KEPT_REPLY_WORDS:
            message.payload = {**payload, "withheld_question": text}
            message.text = view["text"] = kept  # the view is what gets published
        else:
            withhold(effects, message, view)
