"""Answers to common shopper questions, from the optional sections of business.yml.

Promotions, gift cards, price match, size guide, account, invoices, refunds, restocks,
feedback and the newsletter are answered here. Requests only a person can act on (a
change to an order, a payment problem, wholesale, an accessibility barrier) are answered
and handed to the team with that reason. A missing section means "ask a person".
"""

from __future__ import annotations

import re
from abc import abstractmethod
from typing import ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import (
    business_service,
    entity_values,
    handoff_payload,
    latest_text,
    person_buttons,
    profile,
    text_of,
)
from tandem.business.profile import BusinessProfile

_CODE_WORDS = re.compile(r"\b(code|coupon|voucher|promo)", re.I)
_CODE_TROUBLE = re.compile(
    r"(not? work|doesn'?t work|isn'?t work|invalid|expired|won'?t|declined|error|not valid|"
    r"rejected|not accept|wrong)",
    re.I,
)
_CREDIT_WORDS = re.compile(r"\bcredit\b", re.I)
_UNSUBSCRIBE = re.compile(
    r"(unsub|opt ?out|stop (sending|e-?mail)|remove me|too many e-?mails)", re.I
)


def _join(*parts: str | None) -> str:
    return " ".join(part.strip() for part in parts if part and part.strip())


class TopicAnswer(Action):
    """One answer from business.yml; `handoff_reason` also hands over to a person."""

    handoff_reason: ClassVar[str | None] = None

    @abstractmethod
    def name(self) -> str:
        """action_<topic>; abstract so the action server skips this base."""

    @abstractmethod
    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        """The answer, or None when business.yml has no section for it."""

    def offers_person(self, tracker: Tracker) -> bool:
        """The answer may well end with a person doing it (a refused discount code): it
        comes with the button to ask for one."""
        return False

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        p = profile()
        text = self.answer(p, tracker)
        if self.handoff_reason:
            # No availability words: the gateway's desk decides that once, then says it.
            text = _join(text, p.say("handoff_reason_note"))
            dispatcher.utter_message(json_message=handoff_payload(self.handoff_reason, text))
        elif text is None:
            dispatcher.utter_message(text=p.say("topic_unknown"), buttons=person_buttons())
        elif self.offers_person(tracker):
            dispatcher.utter_message(text=text, buttons=person_buttons())
        else:
            dispatcher.utter_message(text=text)
        return []


class ActionRefundStatus(TopicAnswer):
    def name(self) -> str:
        return "action_refund_status"

    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        return _join(p.refunds.status, p.say("refund_check_order")) if p.refunds else None


class ActionInvoice(TopicAnswer):
    def name(self) -> str:
        return "action_invoice"

    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        return p.invoices.summary if p.invoices else None


class ActionAccountHelp(TopicAnswer):
    def name(self) -> str:
        return "action_account_help"

    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        a = p.account
        return _join(a.password, a.login, a.details) if a else None


class ActionPromotions(TopicAnswer):
    def name(self) -> str:
        return "action_promotions"

    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        promos = p.promotions
        if promos is None:
            return None
        with business_service() as service:
            today = service.today()
        running = promos.running(today)
        if running:
            lines = "\n".join(
                p.say(
                    "promotion_line",
                    name=promo.name,
                    details=promo.details,
                    ends=p.format_date(promo.ends, today),
                )
                for promo in running
            )
            sale = p.say("promotions_running", lines=lines)
        else:
            sale = _join(p.say("promotions_none"), promos.signup_offer)
        text = latest_text(tracker)
        if _CODE_WORDS.search(text):
            trouble = promos.code_not_working if _CODE_TROUBLE.search(text) else ""
            return _join(trouble or promos.codes, sale)
        return sale

    def offers_person(self, tracker: Tracker) -> bool:
        # A refused code the customer has already checked may need a person to apply it.
        text = latest_text(tracker)
        return bool(_CODE_WORDS.search(text) and _CODE_TROUBLE.search(text))


class ActionGiftCards(TopicAnswer):
    def name(self) -> str:
        return "action_gift_cards"

    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        g = p.gift_cards
        if g is None:
            return None
        if _CREDIT_WORDS.search(latest_text(tracker)) and g.store_credit:
            return _join(g.store_credit, g.balance)
        return _join(g.summary, g.balance)


class ActionPriceMatch(TopicAnswer):
    def name(self) -> str:
        return "action_price_match"

    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        return p.price_match.summary if p.price_match else None


class ActionSizeGuide(TopicAnswer):
    def name(self) -> str:
        return "action_size_guide"

    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        g = p.size_guide
        if g is None:
            return None
        link = p.say("size_guide_link", url=g.url) if g.url else ""
        return _join(g.summary, g.fit_advice, link)


class ActionFeedback(TopicAnswer):
    def name(self) -> str:
        return "action_feedback"

    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        return p.feedback.summary if p.feedback else None


class ActionNewsletter(TopicAnswer):
    def name(self) -> str:
        return "action_newsletter"

    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        n = p.newsletter
        if n is None:
            return None
        if _UNSUBSCRIBE.search(latest_text(tracker)):
            return n.unsubscribe
        offer = p.promotions.signup_offer if p.promotions else ""
        return _join(n.subscribe, offer)


class ActionRestock(TopicAnswer):
    """Which sizes of the named product are sold out or back, then the restock policy."""

    def name(self) -> str:
        return "action_restock"

    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        policy = p.restock.summary if p.restock else None
        queries = [*entity_values(tracker, "product"), text_of(tracker.get_slot("product"))]
        stock_note = ""
        with business_service() as service:
            product = next((m for q in queries if q and (m := service.find_product(q))), None)
            if product is not None:
                stock = service.availability(product)
                sold_out = [s.size for s in stock if s.stock == 0]
                in_stock = [s.size for s in stock if s.stock > 0]
                if sold_out:
                    stock_note = p.say(
                        "restock_sold_out", name=product.name, sizes=p.join(sold_out)
                    )
                if in_stock:
                    stock_note = _join(
                        stock_note,
                        p.say("restock_in_stock", name=product.name, sizes=p.join(in_stock)),
                    )
        if policy is None and not stock_note:
            return None
        return _join(stock_note, policy)


class ActionChangeOrder(TopicAnswer):
    handoff_reason = "change_order"

    def name(self) -> str:
        return "action_change_order"

    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        return p.order_changes.summary if p.order_changes else None


class ActionPaymentProblem(TopicAnswer):
    handoff_reason = "payment_problem"

    def name(self) -> str:
        return "action_payment_problem"

    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        return p.payment_problems.summary if p.payment_problems else None


class ActionWholesale(TopicAnswer):
    handoff_reason = "wholesale"

    def name(self) -> str:
        return "action_wholesale"

    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        return p.wholesale.summary if p.wholesale else None


class ActionAccessibility(TopicAnswer):
    handoff_reason = "accessibility"

    def name(self) -> str:
        return "action_accessibility"

    def answer(self, p: BusinessProfile, tracker: Tracker) -> str | None:
        return p.accessibility.summary if p.accessibility else None

