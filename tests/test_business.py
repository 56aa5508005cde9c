"""The business profile (business.yml), hours and day parsing, and the service rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from conftest_business import (
    BUSINESS_FILE,
    DEMO_DATA,
    NOW,
    business_engine,
    profile,
    service,
    session,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tandem.business.models import Booking, Customer, Order, OrderStatus
from tandem.business.profile import BusinessFileError, BusinessProfile
from tandem.business.seed import seed_demo
from tandem.business.service import (
    BusinessService,
    ServiceError,
    normalise_booking_ref,
    normalise_email,
    normalise_phone,
    normalise_size,
)

__all__ = ["business_engine", "profile", "service", "session"]  # fixtures used below
TODAY = date(2026, 11, 18)  # a Wednesday


def write_profile(tmp_path: Path, change: dict) -> Path:
    data = yaml.safe_load(BUSINESS_FILE.read_text())
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        target = data
        for key in parents:
            target = target[key]
        target[last] = value
    path = tmp_path / "business.yml"
    path.write_text(yaml.safe_dump(data))
    return path


# ------------------------------------------------------------------------- profile


def test_demo_business_file_is_valid(profile: BusinessProfile) -> None:
    assert profile.business.name == "Marigold & Moss"
    assert profile.business.timezone == "America/Chicago"
    assert profile.hours.monday is None
    years = {d.year for h in profile.holidays for d in h.dates}
    assert {2026, 2027} <= years


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"hours.tuesday": "25:00-19:00"}, "hours.tuesday", "invalid time"),
        ({"hours.friday": "18:00-09:00"}, "hours.friday", "closing time must be after"),
        ({"business.timezone": "Mars/Olympus"}, "business.timezone", "unknown time zone"),
        ({"returns.window_days": 0}, "returns.window_days", "greater than 0"),
        ({"appointments.stylists": "two"}, "appointments.stylists", "integer"),
        ({"contact.emial": "x@y.z"}, "contact.emial", "unknown field"),
        ({"messages.greeting": "Hi {customer}"}, "messages", "unknown placeholder"),
        ({"messages.no_such": "Hi"}, "messages", "unknown message 'no_such'"),
    ],
)
def test_invalid_profile_names_file_and_field(
    tmp_path: Path, change: dict, field: str, reason: str
) -> None:
    path = write_profile(tmp_path, change)
    with pytest.raises(BusinessFileError) as caught:
        BusinessProfile.load(path)
    message = str(caught.value)
    assert str(path) in message
    assert field in message
    assert reason in message


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(BusinessFileError, match="file not found"):
        BusinessProfile.load(tmp_path / "nope.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("business: [unclosed")
    with pytest.raises(BusinessFileError, match="not valid YAML"):
        BusinessProfile.load(broken)


def test_duplicate_holiday_alias_is_rejected(tmp_path: Path) -> None:
    data = yaml.safe_load(BUSINESS_FILE.read_text())
    data["holidays"][0]["aliases"].append("xmas")
    path = tmp_path / "business.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(BusinessFileError, match="'xmas' is used by both"):
        BusinessProfile.load(path)


# --------------------------------------------------------------------------- hours


def test_hours_weekdays_holidays_and_closed_day(profile: BusinessProfile) -> None:
    assert profile.hours_on(date(2026, 11, 23)).is_open is False  # Monday
    sunday = profile.hours_on(date(2026, 11, 22)).hours
    assert sunday is not None and (sunday.opens, sunday.closes) == (time(11), time(17))
    thanksgiving = profile.hours_on(date(2026, 11, 26))
    assert (thanksgiving.holiday, thanksgiving.is_open) == ("Thanksgiving", False)
    eve = profile.hours_on(date(2027, 12, 24))
    assert eve.holiday == "Christmas Eve" and eve.hours is not None
    assert eve.hours.closes == time(15)
    assert not profile.hours_on(date(2026, 12, 25)).is_open
    assert not profile.hours_on(date(2027, 1, 1)).is_open


def test_is_open_uses_business_timezone(profile: BusinessProfile) -> None:
    # 15:00 UTC is 9 AM in Chicago (closed); 16:30 UTC is 10:30 AM (open)
    assert not profile.is_open_now(NOW)
    assert profile.is_open_now(NOW + timedelta(hours=1, minutes=30))
    # Tuesday 19:30 local is after closing, although it is Wednesday in UTC
    assert not profile.is_open_at(datetime(2026, 11, 18, 1, 30, tzinfo=UTC))


def test_next_opening_skips_closed_days(profile: BusinessProfile) -> None:
    assert profile.next_opening(NOW) == datetime(2026, 11, 18, 10, tzinfo=profile.tz)
    # Wednesday 25 Nov after closing -> Thanksgiving closed -> Black Friday 8 AM
    evening = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    assert profile.next_opening(evening) == datetime(2026, 11, 27, 8, tzinfo=profile.tz)
    # Sunday evening -> Monday closed -> Tuesday 10 AM
    sunday_night = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    assert profile.next_opening(sunday_night) == datetime(2026, 11, 24, 10, tzinfo=profile.tz)


@pytest.mark.parametrize(
    ("moment", "phrase"),
    [
        (datetime(2026, 11, 24, 15, 0, tzinfo=UTC), "today at 10 AM"),  # Tue 9 AM, before opening
        (datetime(2026, 11, 24, 16, 3, tzinfo=UTC), "tomorrow at 10 AM"),  # Tue 10:03, open
        (datetime(2026, 11, 25, 2, 0, tzinfo=UTC), "tomorrow at 10 AM"),  # Tue 8 PM, closed
        (datetime(2026, 11, 23, 0, 0, tzinfo=UTC), "on Tuesday at 10 AM"),  # Sun 6 PM; Mon shut
        (datetime(2026, 11, 26, 3, 0, tzinfo=UTC), "on Friday at 8 AM"),  # Thanksgiving eve
        (datetime(2026, 12, 31, 23, 0, tzinfo=UTC), "on Saturday at 10 AM"),  # New Year's Day
    ],
)
def test_reopening_phrase(profile: BusinessProfile, moment: datetime, phrase: str) -> None:
    assert profile.reopening(moment) == phrase


def test_reopening_words_are_data(profile: BusinessProfile) -> None:
    french = profile.model_copy(
        update={
            "messages": {
                **profile.messages,
                "reopening_today": "aujourd'hui à {time}",
                "reopening_weekday": "{weekday} à {time}",
            }
        }
    )
    assert french.reopening(datetime(2026, 11, 24, 15, 0, tzinfo=UTC)) == "aujourd'hui à 10 AM"
    assert french.reopening(datetime(2026, 11, 23, 0, 0, tzinfo=UTC)) == "Tuesday à 10 AM"
    assert profile.messages["reopening_tomorrow"] == "tomorrow at {time}"  # in business.yml


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("are you open today?", date(2026, 11, 18)),
        ("tonight", date(2026, 11, 18)),
        ("tomorrow", date(2026, 11, 19)),
        ("open on sunday?", date(2026, 11, 22)),
        ("on sat", date(2026, 11, 21)),
        ("this saturday", date(2026, 11, 21)),
        ("next monday", date(2026, 11, 23)),
        ("wednesday", date(2026, 11, 18)),
        ("next wednesday", date(2026, 11, 25)),
        ("xmas", date(2026, 12, 25)),
        ("are you open on christmas eve?", date(2026, 12, 24)),
        ("new years", date(2027, 1, 1)),
        ("New Year's Day", date(2027, 1, 1)),
        ("thanksgiving", date(2026, 11, 26)),
        ("july 4th", date(2027, 7, 4)),
        ("dec 24", date(2026, 12, 24)),
        ("12/24", date(2026, 12, 24)),
        ("24 december", date(2026, 12, 24)),
        ("nov 18", date(2026, 11, 18)),
        ("jan 3rd", date(2027, 1, 3)),
        ("in 3 days", date(2026, 11, 21)),
        # as strangers wrote them when asked for the day (TODAY is Wednesday 18 November)
        ("the 12", date(2026, 12, 12)),
        ("on the 20 please", date(2026, 11, 20)),
        ("next week thursday", date(2026, 11, 26)),
        ("thursday next week", date(2026, 11, 26)),
        ("the 12 people", None),
        ("hello there", None),
    ],
)
def test_resolve_day(profile: BusinessProfile, text: str, expected: date | None) -> None:
    assert profile.resolve_day(text, TODAY) == expected


# -------------------------------------------------------------------------- seeding


def test_seed_is_idempotent_and_force_reseeds(session, profile: BusinessProfile) -> None:  # type: ignore[no-untyped-def]
    assert session.scalar(select(func.count()).select_from(Order)) == 60
    assert seed_demo(session, DEMO_DATA, profile=profile, now=NOW).skipped
    assert session.scalar(select(func.count()).select_from(Customer)) == 30
    report = seed_demo(session, DEMO_DATA, profile=profile, now=NOW, force=True)
    assert report.counts == {"products": 20, "customers": 30, "orders": 60, "bookings": 13}
    assert session.scalar(select(func.count()).select_from(Order)) == 60


def test_seed_covers_every_status_and_large_orders(session) -> None:  # type: ignore[no-untyped-def]
    statuses = set(session.scalars(select(Order.status)))
    assert statuses == {s.value for s in OrderStatus}
    assert session.scalar(select(func.count()).where(Order.total >= 500)) >= 3
    assert session.scalar(select(func.count()).where(Customer.tier == "vip")) >= 3
    # seeded bookings land on open days whatever the seeding date
    tz = BusinessProfile.load(BUSINESS_FILE).tz
    for booking in session.scalars(select(Booking)):
        local = booking.starts_at.astimezone(tz)
        assert BusinessProfile.load(BUSINESS_FILE).hours_on(local.date()).is_open


# -------------------------------------------------------------------------- service


def test_normalisers() -> None:
    assert normalise_email("  Olivia.Bennett@Example.COM ") == "olivia.bennett@example.com"
    assert normalise_email("not an email") is None
    assert normalise_booking_ref("bk2041") == "BK-2041"
    assert normalise_phone("(312) 555 0199") == "3125550199"
    assert normalise_phone("+1 312 555 0199") == "+13125550199"
    assert normalise_phone("12345") is None
    assert [normalise_size(s) for s in ("small", "extra large", "size 8", "M", "one size")] == [
        "S", "XL", "8", "M", "One Size",
    ]  # fmt: skip


def test_verify_order_is_case_insensitive(service: BusinessService) -> None:
    assert service.verify_order("#10001", "OLIVIA.Bennett@example.com") is not None
    assert service.verify_order("10001", "marcus.reyes@example.com") is None
    assert service.verify_order("99999", "olivia.bennett@example.com") is None


def test_recent_orders_newest_first(service: BusinessService) -> None:
    olivia = service.customer_by_email("olivia.bennett@example.com")
    assert olivia is not None
    orders = service.recent_orders(olivia.id)
    assert orders and orders == sorted(orders, key=lambda o: o.placed_at, reverse=True)


def test_cancel_rules(service: BusinessService) -> None:
    pending = service.find_order("10001")
    shipped = service.find_order("10003")
    delivered = service.find_order("10005")
    assert pending and shipped and delivered
    assert service.can_cancel(pending).allowed
    assert not service.can_cancel(shipped).allowed
    verdict = service.can_cancel(delivered)
    assert verdict.code == "cancel_delivered" and "return" in verdict.message
    with pytest.raises(ServiceError) as refused:
        service.cancel_order(shipped)
    assert "already shipped" in refused.value.message
    service.cancel_order(pending)
    assert pending.status == "cancelled" and pending.cancelled_at == NOW


def test_return_window(service: BusinessService) -> None:
    recent, last_day, too_late = (service.find_order(n) for n in ("10005", "10006", "10009"))
    assert recent and last_day and too_late
    assert service.can_return(recent).allowed
    assert service.can_return(last_day).allowed  # delivered exactly 30 days ago
    verdict = service.can_return(too_late)
    assert verdict.code == "return_window_passed" and "30 days" in verdict.message
    request = service.create_return_request(recent, "exchange")
    assert request.kind == "exchange" and request.status == "requested"
    assert service.can_return(recent).code == "return_already_requested"
    assert service.can_return(service.find_order("10001")).code == "return_not_shipped"


def test_fuzzy_product_lookup_and_sizes(service: BusinessService) -> None:
    shirt = service.find_product("linen shirt")
    assert shirt is not None and shirt.name == "Linen Button-Down Shirt"
    coat = service.find_product("wool peacot")
    assert coat is not None and coat.name == "Wool Blend Peacoat"
    assert service.find_product("garden hose") is None
    sold_out = service.stock_for_size(shirt, "extra small")
    assert sold_out is not None and sold_out.size == "XS" and sold_out.stock == 0
    assert service.stock_for_size(shirt, "size 14") is None


def test_free_slots_respect_hours_notice_and_capacity(service: BusinessService) -> None:
    profile = service.profile
    # today: 12 hours' notice from 9 AM leaves 9 PM onwards: nothing on a 10-7 day
    assert service.free_slots(TODAY) == []
    tuesday = date(2026, 11, 24)
    slots = service.free_slots(tuesday)
    assert slots[0] == datetime(2026, 11, 24, 10, tzinfo=profile.tz)
    assert slots[-1] == datetime(2026, 11, 24, 18, tzinfo=profile.tz)  # 60 min before 7 PM
    assert service.free_slots(date(2026, 11, 23)) == []  # Monday: closed
    # two stylists: a third booking at the same time is refused, with alternatives
    service.book(tuesday, time(14), "Ann Example", "312 555 0100")
    service.book(tuesday, time(14), "Bo Example", "312 555 0101")
    assert datetime(2026, 11, 24, 14, tzinfo=profile.tz) not in service.free_slots(tuesday)
    # 13:30 overlaps both 60-minute bookings too
    assert datetime(2026, 11, 24, 13, 30, tzinfo=profile.tz) not in service.free_slots(tuesday)
    with pytest.raises(ServiceError) as taken:
        service.check_slot(tuesday, time(14))
    assert taken.value.code == "booking_time_taken"
    assert "1 PM" in taken.value.message and "3 PM" in taken.value.message


def test_todays_weekday_named_after_its_times_have_gone_means_next_week(
    session: Session, profile: BusinessProfile
) -> None:
    """"thursday at 2pm" typed on a Thursday is next Thursday once 2 PM has passed or
    nothing is left to book that day (12 hours' notice in the demo); today before that."""
    thursday = date(2026, 11, 19)

    def on_thursday_at(hour: int) -> BusinessService:
        moment = datetime.combine(thursday, time(hour), profile.tz).astimezone(UTC)
        return BusinessService(session, profile, clock=lambda: moment)
    evening, morning = on_thursday_at(17), on_thursday_at(9)
    next_week = thursday + timedelta(days=7)
    assert evening.day_meant("thursday at 2pm", time(14)) == next_week
    # 7 PM is still to come, but inside the booking notice: nothing is left today.
    assert evening.day_meant("thursday at 7pm", time(19)) == next_week
    early = on_thursday_at(1)  # 1 AM: the notice still leaves the afternoon
    assert early.day_meant("thursday at 2pm", time(14)) == thursday
    assert morning.day_meant("thursday at 2pm", time(14)) == next_week
    # Today said as today stays today (and is refused as past by the slot check).
    assert evening.day_meant("today at 2pm", time(14)) == thursday
    # No time said: next week once nothing is left to book today.
    late = on_thursday_at(20)
    assert late.day_meant("thursday") == next_week
    assert late.day_meant("friday") == thursday + timedelta(days=1)


def test_booking_validation_errors(service: BusinessService) -> None:
    cases = {
        date(2026, 11, 17): "booking_date_past",
        date(2026, 11, 23): "booking_date_closed",
        date(2026, 11, 26): "booking_date_closed",  # Thanksgiving
        TODAY + timedelta(days=90): "booking_date_too_far",
    }
    for day, code in cases.items():
        with pytest.raises(ServiceError) as refused:
            service.check_day(day)
        assert refused.value.code == code
    with pytest.raises(ServiceError) as refused:
        service.check_slot(date(2026, 11, 22), time(16, 30))  # Sunday closes at 5 PM
    assert refused.value.code == "booking_time_outside_hours"
    assert "4 PM" in refused.value.message
    with pytest.raises(ServiceError) as refused:
        service.check_slot(date(2026, 11, 20), time(14, 15))
    assert refused.value.code == "booking_time_off_grid"


def test_book_reschedule_and_cancel(service: BusinessService) -> None:
    booking = service.book(date(2026, 11, 20), time(15), "Jane Doe", "+1 312 555 0199")
    assert booking.ref.startswith("BK-") and booking.phone == "+13125550199"
    assert booking.starts_at == datetime(2026, 11, 20, 21, tzinfo=UTC)
    moved = service.reschedule(booking.ref.lower().replace("-", ""), date(2026, 11, 21), time(11))
    assert moved.starts_at == datetime(2026, 11, 21, 11, tzinfo=service.profile.tz)
    cancelled = service.cancel_booking(booking.ref)
    assert cancelled.status == "cancelled"
    with pytest.raises(ServiceError) as refused:
        service.cancel_booking(booking.ref)
    assert refused.value.code == "booking_already_cancelled"
    with pytest.raises(ServiceError) as refused:
        service.upcoming_booking("BK-0001")
    assert refused.value.code == "booking_not_found"
    past = service.upcoming_booking  # seeded BK-2052 was three days ago
    with pytest.raises(ServiceError) as refused:
        past("BK-2052")
    assert refused.value.code == "booking_in_past"


def test_money_is_exact(service: BusinessService) -> None:
    order = service.find_order("10001")
    assert order is not None
    subtotal = sum((i.unit_price * i.quantity for i in order.items), Decimal("0"))
    assert order.total == subtotal + order.shipping_cost
