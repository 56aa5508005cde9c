"""Orders: status, returns and cancellations, each behind an order verification."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import REQUESTED_SLOT
from rasa_sdk.types import DomainDict

from actions.common import (
    RETRY_TAG,
    TandemFormValidation,
    business_service,
    identified_payload,
    identity_note,
    latest_text,
    person_buttons,
    profile,
    reset_slots,
    retry_tag,
    slot_before_this_message,
    text_of,
    verified_customer_id,
)
from tandem.abuse.service import OrderLookupLimit
from tandem.business.models import Order, OrderStatus, ReturnKind
from tandem.business.service import (
    BusinessService,
    ServiceError,
    find_named_order_number,
    find_order_number,
    normalise_email,
    normalise_order_number,
)
from tandem.config import get_settings

VERIFICATION_SLOTS = ("order_number", "order_email")
CLEARED: dict[str, Any] = {"order_number": None, "order_email": None}


@lru_cache(maxsize=1)
def order_lookups() -> OrderLookupLimit:
    """Failed order checks per client across conversations (Redis when REDIS_URL is set)."""
    return OrderLookupLimit(get_settings())


def client_of(tracker: Tracker) -> str:
    """The gateway's tag for the client (a keyed hash of its address), else the conversation.

    Without a tag (a channel other than the gateway) the conversation is the client, so the
    per-conversation limit of MAX_FAILURES still holds.
    """
    metadata = tracker.latest_message.get("metadata") or {}
    tag = metadata.get("client")
    return str(tag) if isinstance(tag, str) and tag else f"conversation:{tracker.sender_id}"


class OrderFormValidation(TandemFormValidation):
    """Order number and e-mail, checked together; verified customers skip the e-mail."""

    form_slots: ClassVar[tuple[str, ...]] = VERIFICATION_SLOTS

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        slots = list(self.form_slots)
        if verified_customer_id(tracker) is not None:
            slots.remove("order_email")
        return slots

    async def extract_order_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The order named in the request that starts the form ("pls cancel order 10043
        before it ships!! ordered the wrong sizes"): the entity extractor can miss it in a
        long message, and asking for a number the customer just gave loses what they said."""
        if tracker.get_slot("order_number") or tracker.get_slot(REQUESTED_SLOT):
            return {}
        number = find_named_order_number(latest_text(tracker))
        return {"order_number": number} if number else {}

    def validate_order_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        raw = text_of(value)
        number = normalise_order_number(raw) or find_order_number(raw)
        p = profile()
        if number is None:
            return self.retry(dispatcher, tracker, p.say("order_number_invalid"), "order_number")
        if self._same_number_for_the_email(tracker, number):
            # The same number again where the e-mail was asked (read off a receipt twice):
            # say what is still missing, and count it as a try at the e-mail.
            text = p.say("order_email_still_needed", number=number)
            return self.retry(dispatcher, tracker, text, "order_email")
        with business_service() as service:
            customer_id = verified_customer_id(tracker)
            if customer_id is not None:
                order = service.order_for_customer(number, customer_id)
                if order is None:
                    text = p.say("order_not_on_account", number=number)
                    return self.retry(dispatcher, tracker, text, "order_number")
                return {
                    "order_number": number,
                    **self.on_verified(order, service, dispatcher, tracker),
                }
            # Whether the number exists is not said: an unknown number and a wrong e-mail
            # get the same answer once the e-mail is in, so order numbers cannot be probed.
            email = tracker.get_slot("order_email")
            if email and "order_email" not in tracker.slots_to_validate():
                return self._check_pair(service, number, str(email), dispatcher, tracker)
        return {"order_number": number}

    def _same_number_for_the_email(self, tracker: Tracker, number: str) -> bool:
        if not self.is_requested(tracker, "order_email"):
            return False
        given = tracker.slots_to_validate().get("order_email")
        if given is not None and normalise_email(text_of(given)) is not None:
            return False  # the e-mail came with it
        return number == slot_before_this_message(tracker, "order_number")

    def validate_order_email(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        email = normalise_email(text_of(value))
        if email is None:
            corrected = find_order_number(text_of(value))
            if corrected and "order_number" not in tracker.slots_to_validate():
                # "no, 10483": a corrected order number, not a failed e-mail
                corrected_slots = self.validate_order_number(corrected, dispatcher, tracker, domain)
                return {**corrected_slots, "order_email": None}
            if corrected:
                return {"order_email": None}  # the order number is validated on its own
            return self.retry(dispatcher, tracker, profile().say("email_invalid"), "order_email")
        number = tracker.get_slot("order_number")
        if not number:
            return {"order_email": email}
        with business_service() as service:
            return self._check_pair(service, str(number), email, dispatcher, tracker)

    def _check_pair(
        self,
        service: BusinessService,
        number: str,
        email: str,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> dict[str, Any]:
        client = client_of(tracker)
        if order_lookups().exhausted(client):
            # This client failed too often, in this conversation or others: no more checks.
            return self._lock(dispatcher, tracker)
        order = service.verify_order(number, email)
        if order is not None:
            return {
                "order_number": order.number,
                "order_email": normalise_email(email),
                **self.on_verified(order, service, dispatcher, tracker),
            }
        # never say which of the two was wrong (or whether the order exists)
        limit = order_lookups()
        limit.failed(client)
        if limit.exhausted(client):
            return self._lock(dispatcher, tracker)
        p = profile()
        failed, locked = p.say("verification_failed"), p.say("verification_locked")
        if self.failed_twice(dispatcher, tracker, failed, "match", last_text=locked):
            return {**CLEARED, **self.stop_form(tracker)}
        return dict(CLEARED)

    def _lock(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        dispatcher.utter_message(
            text=profile().say("verification_locked"),
            buttons=person_buttons(),
            **{RETRY_TAG: retry_tag(self.form_name(), "match")},
        )
        return {**CLEARED, **self.stop_form(tracker)}

    def on_verified(
        self,
        order: Order,
        service: BusinessService,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> dict[str, Any]:
        """Form-specific checks once the order is known to be the customer's."""
        return {}


def _verified_order(service: BusinessService, tracker: Tracker) -> Order | None:
    number = tracker.get_slot("order_number")
    if not number:
        return None
    customer_id = verified_customer_id(tracker)
    if customer_id is not None:
        order = service.order_for_customer(str(number), customer_id)
        if order is not None:
            return order
    email = tracker.get_slot("order_email")
    return service.verify_order(str(number), str(email)) if email else None


def _identify(
    order: Order, tracker: Tracker, dispatcher: CollectingDispatcher, via: str
) -> list[EventType]:
    """Tell the gateway who the customer is, once, after a matching e-mail."""
    if verified_customer_id(tracker) == order.customer_id:
        return []
    dispatcher.utter_message(
        json_message=identified_payload(order.customer_id, via),
        **identity_note(tracker, order.customer_id),
    )
    return [SlotSet("verified_customer_id", float(order.customer_id))]


def describe_order(service: BusinessService, order: Order) -> str:
    p, today = service.profile, service.today()
    status = OrderStatus(order.status)
    values: dict[str, Any] = {"number": order.number}
    if order.delivered_at:
        values["delivered"] = p.format_date(order.delivered_at.astimezone(p.tz).date(), today)
    if order.cancelled_at:
        values["cancelled"] = p.format_date(order.cancelled_at.astimezone(p.tz).date(), today)
    sentences = [p.say(f"status_{status.value}", **values)]
    if status in (OrderStatus.SHIPPED, OrderStatus.OUT_FOR_DELIVERY) and order.carrier:
        sentences.append(
            p.say(
                "order_tracking",
                carrier=order.carrier,
                tracking_number=order.tracking_number or "-",
            )
        )
    if (
        status not in (OrderStatus.DELIVERED, OrderStatus.CANCELLED, OrderStatus.RETURNED)
        and order.expected_delivery
    ):
        sentences.append(
            p.say("order_expected", expected=p.format_date(order.expected_delivery, today))
        )
    sentences.append(
        p.say("order_items", items=service.describe_items(order), total=p.money(order.total))
    )
    return " ".join(sentences)


class ValidateOrderStatusForm(OrderFormValidation):
    start_intent = "order_status"
    def name(self) -> str:
        return "validate_order_status_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        if verified_customer_id(tracker) is not None:
            # a verified customer without a number gets their latest orders
            return ["order_number"] if tracker.get_slot("order_number") else []
        return list(VERIFICATION_SLOTS)


class ActionOrderStatus(Action):
    def name(self) -> str:
        return "action_order_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = reset_slots(*VERIFICATION_SLOTS)
        with business_service() as service:
            order = _verified_order(service, tracker)
            if order is not None:
                dispatcher.utter_message(text=describe_order(service, order))
                return _identify(order, tracker, dispatcher, "order_lookup") + events
            customer_id = verified_customer_id(tracker)
            if customer_id is None or tracker.get_slot("order_number"):
                return events  # the form stopped early and already explained why
            p, today = service.profile, service.today()
            orders = service.recent_orders(customer_id)
            if not orders:
                dispatcher.utter_message(text=p.say("no_orders"))
                return events
            lines = [
                p.say(
                    "recent_order_line",
                    number=o.number,
                    placed=p.format_date(o.placed_at.astimezone(p.tz).date(), today),
                    status=p.say(f"status_label_{o.status}"),
                    total=p.money(o.total),
                )
                for o in orders
            ]
            dispatcher.utter_message(text=p.say("recent_orders", lines="\n".join(lines)))
        return events


RETURN_WORDS = {
    ReturnKind.EXCHANGE: ("exchange", "swap", "different size", "another size", "replace",
                          "size up", "size down", "bigger size", "smaller size",
                          "larger size", "different colour", "different color"),
    ReturnKind.RETURN: ("return", "refund", "money back", "send back", "send it back"),
}
# Words that settle the kind in the request that starts the form: "return" alone does
# not (people say it of exchanges too), so the form still asks.
DECIDED_RETURN_WORDS = {
    ReturnKind.EXCHANGE: RETURN_WORDS[ReturnKind.EXCHANGE],
    ReturnKind.RETURN: ("refund", "money back"),
}


def parse_return_type(text: str) -> ReturnKind | None:
    lowered = text.lower()
    for kind, words in RETURN_WORDS.items():  # exchange first: "return for another size"
        if any(word in lowered for word in words):
            return kind
    return None


class ValidateReturnForm(OrderFormValidation):
    start_intent = "start_return"
    form_slots: ClassVar[tuple[str, ...]] = (*VERIFICATION_SLOTS, "return_type")

    def name(self) -> str:
        return "validate_return_form"

    async def extract_return_type(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """An exchange or a refund named in the request that starts the form ("can i swap
        my jeans for a size up"): asking "refund or exchange?" after it loses what the
        customer said."""
        if tracker.get_slot("return_type") or tracker.get_slot(REQUESTED_SLOT):
            return {}
        lowered = latest_text(tracker).lower()
        for kind, words in DECIDED_RETURN_WORDS.items():
            if any(word in lowered for word in words):
                return {"return_type": kind.value}
        return {}

    def on_verified(
        self,
        order: Order,
        service: BusinessService,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> dict[str, Any]:
        verdict = service.can_return(order)
        dispatcher.utter_message(text=verdict.message)
        return {} if verdict.allowed else self.stop_form(tracker)

    def validate_return_type(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        kind = parse_return_type(text_of(value))
        if kind is None:
            return self.retry(
                dispatcher, tracker, profile().say("return_type_invalid"), "return_type"
            )
        return {"return_type": kind.value}


class ActionStartReturn(Action):
    def name(self) -> str:
        return "action_start_return"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = reset_slots(*VERIFICATION_SLOTS, "return_type")
        kind = parse_return_type(text_of(tracker.get_slot("return_type")))
        with business_service() as service:
            order = _verified_order(service, tracker)
            if order is None or kind is None or not service.can_return(order).allowed:
                # Stopped early; the validator explained why (the kind may have come with
                # the opening request, "swap it for a size up", so it is no sign of that).
                return events
            p = service.profile
            service.create_return_request(order, kind)
            steps = (
                p.returns.exchange_steps if kind == ReturnKind.EXCHANGE else p.returns.return_steps
            )
            created = p.say("return_created", kind=p.say(f"kind_{kind.value}"), number=order.number)
            dispatcher.utter_message(text=f"{created} {p.say('return_next_steps', steps=steps)}")
            return _identify(order, tracker, dispatcher, "return_request") + events


class ValidateCancelOrderForm(OrderFormValidation):
    start_intent = "cancel_order"
    form_slots: ClassVar[tuple[str, ...]] = (*VERIFICATION_SLOTS, "cancel_confirmed")

    def name(self) -> str:
        return "validate_cancel_order_form"

    def on_verified(
        self,
        order: Order,
        service: BusinessService,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> dict[str, Any]:
        verdict = service.can_cancel(order)
        if not verdict.allowed:
            dispatcher.utter_message(text=verdict.message)
            return self.stop_form(tracker)
        p = service.profile
        dispatcher.utter_message(
            text=p.say(
                "cancel_possible",
                number=order.number,
                items=service.describe_items(order),
                total=p.money(order.total),
            )
        )
        return {}

    def validate_cancel_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if isinstance(value, bool):
            return {"cancel_confirmed": value}
        lowered = text_of(value).lower()
        if lowered in {"true", "yes", "y"}:
            return {"cancel_confirmed": True}
        if lowered in {"false", "no", "n"}:
            return {"cancel_confirmed": False}
        return {"cancel_confirmed": None}


class ActionCancelOrder(Action):
    def name(self) -> str:
        return "action_cancel_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = reset_slots(*VERIFICATION_SLOTS, "cancel_confirmed")
        confirmed = tracker.get_slot("cancel_confirmed")
        with business_service() as service:
            order = _verified_order(service, tracker)
            if order is None or confirmed is None:
                return events  # stopped early; the validator explained why
            p = service.profile
            identified = _identify(order, tracker, dispatcher, "order_cancellation")
            if not confirmed:
                dispatcher.utter_message(text=p.say("cancel_kept", number=order.number))
                return identified + events
            try:
                service.cancel_order(order)
            except ServiceError as refusal:
                dispatcher.utter_message(text=refusal.message)
                return identified + events
            dispatcher.utter_message(
                text=p.say(
                    "cancel_done",
                    number=order.number,
                    total=p.money(order.total),
                    refund_days=p.returns.refund_days,
                )
            )
            return identified + events
