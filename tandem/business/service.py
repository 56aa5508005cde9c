"""Business rules over the shop's records: orders, returns, products and appointments.

No web or Rasa code: the custom actions and the gateway call these methods. Refusals a
customer should hear are raised as `ServiceError`, whose `message` is worded from
business.yml.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from rapidfuzz import fuzz, process, utils
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from tandem.business.models import (
    Booking,
    BookingStatus,
    Customer,
    Order,
    OrderStatus,
    Product,
    ReturnKind,
    ReturnRequest,
    ReturnStatus,
)
from tandem.business.profile import BusinessProfile
from tandem.db import utcnow

ORDER_NUMBER_RE = re.compile(r"^#?\s*(\d{5})$")
BOOKING_REF_RE = re.compile(r"^bk[\s\-_]?(\d{4,6})$", re.IGNORECASE)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
CANCELLABLE = frozenset({OrderStatus.PENDING, OrderStatus.PROCESSING})
OPEN_RETURN_STATUSES = frozenset({ReturnStatus.REQUESTED, ReturnStatus.APPROVED})

_SIZE_WORDS = {
    "extra small": "XS", "x small": "XS", "xsmall": "XS", "xs": "XS",
    "small": "S", "s": "S", "sm": "S",
    "medium": "M", "med": "M", "m": "M",
    "large": "L", "l": "L", "lg": "L",
    "extra large": "XL", "x large": "XL", "xlarge": "XL", "xl": "XL",
    "xxl": "XXL", "2xl": "XXL", "extra extra large": "XXL",
    "one size": "One Size", "onesize": "One Size", "os": "One Size",
}  # fmt: skip


class ServiceError(Exception):
    """A refusal with a customer-facing `message`; `code` names the reason for code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Verdict:
    """Whether something is allowed, and if not why (`code`) in the customer's words."""

    allowed: bool
    code: str
    message: str = ""


@dataclass(frozen=True)
class ProductMatch:
    product: Product
    score: float


@dataclass(frozen=True)
class SizeAvailability:
    size: str
    stock: int


# ---------------------------------------------------------------------- normalisers


def normalise_order_number(text: str | None) -> str | None:
    """'#10482' or ' 10482 ' -> '10482'; anything else -> None."""
    match = ORDER_NUMBER_RE.match((text or "").strip())
    return match.group(1) if match else None


def find_order_number(text: str | None) -> str | None:
    """The five-digit order number anywhere in a sentence."""
    match = re.search(r"(?<!\d)#?(\d{5})(?!\d)", text or "")
    return match.group(1) if match else None


_NAMED_ORDER_NUMBER = re.compile(
    r"(?:\border\s*(?:number|num|no\.?|nr\.?)?\s*(?:is\s*)?:?\s*#?|#\s*"
    # asked about by number: "whats the status of 10019", "can you check 10019"
    r"|\b(?:status of|check on|check|track|tracking on|where is|wheres|where's|"
    r"about|regarding)\s+(?:my\s+)?)(\d{5})(?!\d)",
    re.IGNORECASE,
)


def find_named_order_number(text: str | None) -> str | None:
    """A five-digit number the sentence names as an order ("cancel order 10043 before it
    ships", "order no. 10043", "#10043") or asks about ("whats the status of 10019"); a
    bare number in a request may be anything else (a postcode, part of a phone number)."""
    match = _NAMED_ORDER_NUMBER.search(text or "")
    return match.group(1) if match else None


def normalise_email(text: str | None) -> str | None:
    candidate = (text or "").strip().strip("<>.,;").lower()
    match = re.search(r"[^@\s<>,;]+@[^@\s<>,;]+\.[a-z]{2,}", candidate)
    if match and EMAIL_RE.match(match.group(0)):
        return match.group(0)
    return None


def normalise_booking_ref(text: str | None) -> str | None:
    """'bk2041', 'BK-2041', 'bk 2041' -> 'BK-2041' (also inside a sentence)."""
    match = re.search(r"\bbk[\s\-_]?(\d{4,6})\b", text or "", re.IGNORECASE)
    return f"BK-{match.group(1)}" if match else None


def normalise_phone(text: str | None) -> str | None:
    """Digits and a leading '+', when 7-15 digits; otherwise None."""
    raw = (text or "").strip()
    digits = re.sub(r"\D", "", raw)
    if not 7 <= len(digits) <= 15:
        return None
    return ("+" if raw.startswith("+") else "") + digits


def normalise_size(text: str | None) -> str | None:
    """'small' -> 'S', 'extra large' -> 'XL', 'size 8' -> '8', 'one size' -> 'One Size'."""
    cleaned = re.sub(r"\s+", " ", re.sub(r"[^a-z0-9. ]+", " ", (text or "").lower())).strip()
    if cleaned in _SIZE_WORDS:  # before dropping "size": "one size"
        return _SIZE_WORDS[cleaned]
    cleaned = re.sub(r"\b(size|sz|us|in)\b", " ", cleaned)
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    if not cleaned:
        return None
    if cleaned in _SIZE_WORDS:
        return _SIZE_WORDS[cleaned]
    if re.fullmatch(r"\d{1,2}(\.5)?", cleaned):
        return cleaned
    return None


# --------------------------------------------------------------------------- service


class BusinessService:
    """The shop's rules for one unit of work (a Session) and one business profile."""

    def __init__(
        self,
        session: Session,
        profile: BusinessProfile,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session = session
        self.profile = profile
        self.clock = clock

    # ------------------------------------------------------------------ time

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        return self.profile.local_now(self.now()).date()

    def _refuse(self, code: str, **values: Any) -> ServiceError:
        return ServiceError(code, self.profile.say(code, **values))

    # ------------------------------------------------------------------ customers

    def customer(self, customer_id: int) -> Customer | None:
        return self.session.get(Customer, customer_id)

    def customer_by_email(self, email: str) -> Customer | None:
        normalised = normalise_email(email)
        if normalised is None:
            return None
        return self.session.scalar(select(Customer).where(func.lower(Customer.email) == normalised))

    # ------------------------------------------------------------------ orders

    def find_order(self, number: str) -> Order | None:
        normalised = normalise_order_number(number)
        if normalised is None:
            return None
        return self.session.scalar(
            select(Order)
            .where(Order.number == normalised)
            .options(selectinload(Order.items), selectinload(Order.customer))
        )

    def verify_order(self, number: str, email: str) -> Order | None:
        """The order when the e-mail belongs to its customer (case-insensitive)."""
        order = self.find_order(number)
        normalised = normalise_email(email)
        if order is None or normalised is None:
            return None
        return order if order.customer.email.lower() == normalised else None

    def order_for_customer(self, number: str, customer_id: int) -> Order | None:
        order = self.find_order(number)
        return order if order is not None and order.customer_id == customer_id else None

    def recent_orders(self, customer_id: int, limit: int = 3) -> list[Order]:
        return list(
            self.session.scalars(
                select(Order)
                .where(Order.customer_id == customer_id)
                .order_by(Order.placed_at.desc(), Order.id.desc())
                .limit(limit)
                .options(selectinload(Order.items))
            )
        )

    def describe_items(self, order: Order) -> str:
        parts = []
        for item in order.items:
            label = item.product_name + (f" ({item.size})" if item.size else "")
            parts.append(f"{item.quantity} × {label}" if item.quantity > 1 else label)
        return self.profile.join(parts)

    def can_cancel(self, order: Order) -> Verdict:
        status = OrderStatus(order.status)
        if status in CANCELLABLE:
            return Verdict(True, "cancel_possible")
        code = {
            OrderStatus.SHIPPED: "cancel_shipped",
            OrderStatus.OUT_FOR_DELIVERY: "cancel_shipped",
            OrderStatus.DELIVERED: "cancel_delivered",
            OrderStatus.CANCELLED: "cancel_already_cancelled",
            OrderStatus.RETURNED: "cancel_returned",
        }[status]
        message = self.profile.say(
            code, number=order.number, window_days=self.profile.returns.window_days
        )
        return Verdict(False, code, message)

    def cancel_order(self, order: Order) -> Order:
        """Cancel an order that has not shipped; raises ServiceError otherwise."""
        verdict = self.can_cancel(order)
        if not verdict.allowed:
            raise ServiceError(verdict.code, verdict.message)
        order.status = OrderStatus.CANCELLED.value
        order.cancelled_at = self.now()
        self.session.flush()
        return order

    def return_deadline(self, order: Order) -> date | None:
        if order.delivered_at is None:
            return None
        delivered = order.delivered_at.astimezone(self.profile.tz).date()
        return delivered + timedelta(days=self.profile.returns.window_days)

    def can_return(self, order: Order) -> Verdict:
        """Delivered orders within the return window, without an open request."""
        status = OrderStatus(order.status)
        values: dict[str, Any] = {
            "number": order.number,
            "status": self.profile.say(f"status_label_{status.value}"),
            "window_days": self.profile.returns.window_days,
        }
        if status in CANCELLABLE:
            return Verdict(
                False, "return_not_shipped", self.profile.say("return_not_shipped", **values)
            )
        if status in (OrderStatus.SHIPPED, OrderStatus.OUT_FOR_DELIVERY):
            return Verdict(
                False, "return_not_delivered", self.profile.say("return_not_delivered", **values)
            )
        if status == OrderStatus.CANCELLED:
            return Verdict(
                False,
                "return_cancelled_order",
                self.profile.say("return_cancelled_order", **values),
            )
        if status == OrderStatus.RETURNED:
            return Verdict(
                False,
                "return_already_returned",
                self.profile.say("return_already_returned", **values),
            )
        deadline = self.return_deadline(order)
        assert deadline is not None and order.delivered_at is not None  # delivered orders
        if self.today() > deadline:
            delivered = self.profile.format_date(
                order.delivered_at.astimezone(self.profile.tz).date(), self.today()
            )
            return Verdict(
                False,
                "return_window_passed",
                self.profile.say("return_window_passed", delivered=delivered, **values),
            )
        open_request = next(
            (r for r in order.return_requests if ReturnStatus(r.status) in OPEN_RETURN_STATUSES),
            None,
        )
        if open_request is not None:
            kind = self.profile.say(f"kind_{open_request.kind}")
            return Verdict(
                False,
                "return_already_requested",
                self.profile.say("return_already_requested", kind=kind, number=order.number),
            )
        return Verdict(
            True,
            "return_eligible",
            self.profile.say(
                "return_eligible",
                number=order.number,
                last_day=self.profile.format_date(deadline, self.today()),
            ),
        )

    def create_return_request(
        self, order: Order, kind: ReturnKind | str, reason: str | None = None
    ) -> ReturnRequest:
        verdict = self.can_return(order)
        if not verdict.allowed:
            raise ServiceError(verdict.code, verdict.message)
        request = ReturnRequest(
            kind=ReturnKind(kind).value,
            status=ReturnStatus.REQUESTED.value,
            reason=reason,
            created_at=self.now(),
        )
        order.return_requests.append(request)
        self.session.flush()
        return request

    # ------------------------------------------------------------------ products

    def find_products(self, query: str, limit: int = 3, cutoff: float = 60) -> list[ProductMatch]:
        """Catalogue products whose names resemble `query`, best first."""
        products = list(
            self.session.scalars(
                select(Product)
                .where(Product.active.is_(True))
                .options(selectinload(Product.variants))
            )
        )
        if not query.strip() or not products:
            return []
        choices = {product.id: product.name for product in products}
        by_id = {product.id: product for product in products}
        # WRatio copes with partial names ("linen shirt") and small typos ("peacot")
        results = process.extract(
            query,
            choices,
            scorer=fuzz.WRatio,
            processor=utils.default_process,
            limit=limit,
            score_cutoff=cutoff,
        )
        return [ProductMatch(by_id[key], score) for _name, score, key in results]

    def find_product(self, query: str) -> Product | None:
        matches = self.find_products(query, limit=1)
        return matches[0].product if matches else None

    def categories(self) -> list[str]:
        return sorted(set(self.session.scalars(select(Product.category))))

    def category_named(self, text: str) -> str | None:
        """The category a word names: "dresses", "dress" and "Dresses" -> "Dresses"."""
        words = set(re.findall(r"[a-z]+", text.lower()))
        for category in self.categories():
            name = category.lower()
            if {name, name.removesuffix("s"), name.removesuffix("es")} & words:
                return category
        return None

    def search_products(
        self,
        category: str | None = None,
        min_price: Decimal | None = None,
        max_price: Decimal | None = None,
    ) -> list[Product]:
        """Every active product of a category within a price range, cheapest first."""
        query = (
            select(Product)
            .where(Product.active.is_(True))
            .options(selectinload(Product.variants))
            .order_by(Product.price, Product.name)
        )
        if category is not None:
            query = query.where(Product.category == category)
        if min_price is not None:
            query = query.where(Product.price >= min_price)
        if max_price is not None:
            query = query.where(Product.price <= max_price)
        return list(self.session.scalars(query))

    def availability(self, product: Product) -> list[SizeAvailability]:
        return [SizeAvailability(v.size, v.stock) for v in product.variants]

    def stock_for_size(self, product: Product, size: str) -> SizeAvailability | None:
        """Stock of one size (normalised: 'small' -> 'S'); None when not made in it."""
        wanted = normalise_size(size) or size.strip()
        variant = next((v for v in product.variants if v.size.lower() == wanted.lower()), None)
        return SizeAvailability(variant.size, variant.stock) if variant else None

    # ------------------------------------------------------------------ appointments

    @property
    def _duration(self) -> timedelta:
        return timedelta(minutes=self.profile.appointments.duration_minutes)

    def candidate_starts(self, day: date) -> list[datetime]:
        """Every start time on the grid that fits inside the opening hours of `day`."""
        interval = self.profile.opening_interval(day)
        if interval is None:
            return []
        opens, closes = interval
        step = timedelta(minutes=self.profile.appointments.slot_interval_minutes)
        starts, moment = [], opens
        while moment + self._duration <= closes:
            starts.append(moment)
            moment += step
        return starts

    def _overlapping(self, start: datetime, exclude_ref: str | None = None) -> int:
        end = start + self._duration
        # bookings can't be longer than a day, so look a day around the slot
        query = select(Booking).where(
            Booking.status == BookingStatus.BOOKED.value,
            Booking.starts_at < end,
            Booking.starts_at > start - timedelta(days=1),
        )
        if exclude_ref:
            query = query.where(Booking.ref != exclude_ref)
        return sum(
            1
            for booking in self.session.scalars(query)
            if booking.starts_at + timedelta(minutes=booking.duration_minutes) > start
        )

    def earliest_bookable(self) -> datetime:
        return self.now() + timedelta(hours=self.profile.appointments.min_notice_hours)

    def last_bookable_day(self) -> date:
        return self.today() + timedelta(days=self.profile.appointments.horizon_days)

    def free_slots(self, day: date, exclude_ref: str | None = None) -> list[datetime]:
        """Start times on `day` (local, aware) with a stylist free and enough notice."""
        if day < self.today() or day > self.last_bookable_day():
            return []
        earliest = self.earliest_bookable()
        capacity = self.profile.appointments.stylists
        return [
            start
            for start in self.candidate_starts(day)
            if start >= earliest and self._overlapping(start, exclude_ref) < capacity
        ]

    def day_meant(self, text: str, at: time | None = None) -> date | None:
        """The day a customer means for a booking (`BusinessProfile.resolve_day`), except
        that today's weekday named today ("thursday at 2pm" on a Thursday evening) means
        next week's when the time asked has passed, or no time is left to book today
        (the notice included): nobody books a time that has gone, and "today" is what
        they would have said."""
        today = self.today()
        day = self.profile.resolve_day(text, today)
        if day != today or not self.profile.names_only_a_weekday(text, today):
            return day
        passed = at is not None and datetime.combine(day, at, self.profile.tz) <= self.now()
        return day + timedelta(days=7) if passed or not self.free_slots(day) else day

    def check_day(self, day: date) -> None:
        """Raise ServiceError unless `day` can take a booking at all."""
        today = self.today()
        label = self.profile.format_date(day, today)
        if day < today:
            raise self._refuse("booking_date_past", day=label)
        if not self.profile.hours_on(day).is_open:
            raise self._refuse("booking_date_closed", day=label)
        if day > self.last_bookable_day():
            raise self._refuse(
                "booking_date_too_far",
                horizon_days=self.profile.appointments.horizon_days,
                last_day=self.profile.format_date(self.last_bookable_day(), today),
            )
        if not self.free_slots(day):
            next_day = self.next_free_day(day)
            raise self._refuse(
                "booking_date_full",
                day=label,
                next_day=self.profile.format_date(next_day, today) if next_day else "-",
            )

    def next_free_day(self, after: date) -> date | None:
        day = after + timedelta(days=1)
        while day <= self.last_bookable_day():
            if self.free_slots(day):
                return day
            day += timedelta(days=1)
        return None

    def nearest_free_slots(
        self, wanted: datetime, count: int = 3, exclude_ref: str | None = None
    ) -> list[datetime]:
        slots = self.free_slots(wanted.astimezone(self.profile.tz).date(), exclude_ref)
        return sorted(slots, key=lambda s: (abs(s - wanted), s))[:count]

    def format_slots(self, slots: list[datetime]) -> str:
        if not slots:
            return self.profile.say("booking_no_alternatives")
        ordered = sorted(slots)
        return self.profile.join(
            [self.profile.format_time(s.astimezone(self.profile.tz).time()) for s in ordered], "or"
        )

    def check_slot(self, day: date, at: time, exclude_ref: str | None = None) -> datetime:
        """The aware start moment if `at` on `day` is bookable; ServiceError otherwise."""
        self.check_day(day)
        profile, today = self.profile, self.today()
        wanted = datetime.combine(day, at, profile.tz)
        label = profile.format_date(day, today)
        starts = self.candidate_starts(day)
        nearest = self.format_slots(self.nearest_free_slots(wanted, exclude_ref=exclude_ref))
        if not starts or wanted < starts[0] or wanted > starts[-1]:
            hours = profile.hours_on(day).hours
            assert hours is not None  # check_day refused closed days
            raise self._refuse(
                "booking_time_outside_hours",
                day=label,
                opens=profile.format_time(hours.opens),
                closes=profile.format_time(hours.closes),
                last_start=profile.format_time(starts[-1].time()) if starts else "-",
                appointment_name=profile.appointments.name,
            )
        if wanted not in starts:
            raise self._refuse(
                "booking_time_off_grid",
                interval=profile.appointments.slot_interval_minutes,
                alternatives=nearest,
            )
        if wanted < self.earliest_bookable():
            raise self._refuse(
                "booking_time_too_soon",
                min_notice_hours=profile.appointments.min_notice_hours,
                alternatives=nearest,
            )
        if self._overlapping(wanted, exclude_ref) >= profile.appointments.stylists:
            raise self._refuse(
                "booking_time_taken",
                time=profile.format_time(at),
                day=label,
                alternatives=nearest,
            )
        return wanted

    def new_booking_ref(self) -> str:
        """An unused, unguessable-enough reference like BK-2041."""
        for digits in (4, 4, 4, 5, 5, 6):
            ref = f"BK-{secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1)}"
            if self.session.scalar(select(Booking.id).where(Booking.ref == ref)) is None:
                return ref
        raise RuntimeError("could not find a free booking reference")

    def book(
        self,
        day: date,
        at: time,
        customer_name: str,
        phone: str,
        customer_id: int | None = None,
    ) -> Booking:
        starts_at = self.check_slot(day, at)
        now = self.now()
        booking = Booking(
            ref=self.new_booking_ref(),
            customer_name=customer_name.strip(),
            phone=normalise_phone(phone) or phone.strip(),
            customer_id=customer_id,
            starts_at=starts_at,
            duration_minutes=self.profile.appointments.duration_minutes,
            status=BookingStatus.BOOKED.value,
            created_at=now,
            updated_at=now,
        )
        self.session.add(booking)
        self.session.flush()
        return booking

    def find_booking(self, ref: str) -> Booking | None:
        normalised = normalise_booking_ref(ref)
        if normalised is None:
            return None
        return self.session.scalar(select(Booking).where(Booking.ref == normalised))

    def upcoming_booking(self, ref: str) -> Booking:
        """The booking if it exists, is not cancelled and has not started yet."""
        normalised = normalise_booking_ref(ref)
        if normalised is None:
            raise self._refuse("booking_ref_invalid")
        booking = self.find_booking(normalised)
        if booking is None:
            raise self._refuse("booking_not_found", ref=normalised)
        if booking.status == BookingStatus.CANCELLED.value:
            raise self._refuse("booking_already_cancelled", ref=booking.ref)
        if booking.starts_at <= self.now():
            raise self._refuse("booking_in_past", ref=booking.ref, when=self.describe_when(booking))
        return booking

    def describe_when(self, booking: Booking) -> str:
        return self.profile.format_moment(booking.starts_at, self.today())

    def reschedule(self, ref: str, day: date, at: time) -> Booking:
        booking = self.upcoming_booking(ref)
        if booking.starts_at == datetime.combine(day, at, self.profile.tz):
            raise self._refuse("booking_same_time", ref=booking.ref)
        booking.starts_at = self.check_slot(day, at, exclude_ref=booking.ref)
        booking.updated_at = self.now()
        self.session.flush()
        return booking

    def cancel_booking(self, ref: str) -> Booking:
        booking = self.upcoming_booking(ref)
        booking.status = BookingStatus.CANCELLED.value
        booking.updated_at = self.now()
        self.session.flush()
        return booking
