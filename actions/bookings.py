"""Styling appointments: book, reschedule and cancel."""

from __future__ import annotations

import re
from datetime import date, time
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import REQUESTED_SLOT
from rasa_sdk.types import DomainDict

from actions.common import (
    TandemFormValidation,
    business_service,
    latest_text,
    profile,
    reset_slots,
    text_of,
    verified_customer_id,
)
from tandem.business.contact import parse_name
from tandem.business.service import (
    BusinessService,
    ServiceError,
    normalise_booking_ref,
    normalise_phone,
)

_TIME_RE = re.compile(
    r"\b(?P<hour>\d{1,2})(?:(?P<sep>[:.h])(?P<minute>\d{2}))?"
    r"\s*(?P<meridiem>a\.?m\.?|p\.?m\.?|h\b)?(?![\d/])",
    re.IGNORECASE,
)
_PHONE_IN_TEXT = re.compile(r"\+?\(?\d[\d\s().-]{5,}\d")
_CONTACT_WORDS = re.compile(
    r"\b(and )?(my )?(phone|number|mobile|cell|tel|e-?mail|mail)( number| address)?( is|:)?\b"
    r"|\band\b\s*$",
    re.I,
)
_EMAIL_IN_TEXT = re.compile(r"\S+@\S+")
# an afternoon guess for bare small hours: nobody books a styling session at 3 AM
LATEST_BARE_PM_HOUR = 7
# "saturday afternoon": the words people use for a part of the day, and its local hours
PARTS_OF_DAY: tuple[tuple[str, str, time, time], ...] = (
    (r"\b(lunch ?time|lunch|midday break)\b", "at lunchtime", time(11, 30), time(14, 0)),
    (r"\b(morning|before noon)\b", "in the morning", time(0, 0), time(12, 0)),
    (r"\b(afternoon|after lunch|arvo)\b", "in the afternoon", time(12, 0), time(17, 0)),
    (r"\b(evening|tonight|after work|night)\b", "in the evening", time(17, 0), time(23, 59)),
)
# at most this many times are read out one by one; more become "from … to …"
LISTED_TIMES = 5


def part_of_day(text: str) -> tuple[str, time, time] | None:
    """'saturday afternoon' -> ('in the afternoon', 12:00, 17:00); None if no part is named."""
    lowered = text.lower()
    for pattern, label, start, end in PARTS_OF_DAY:
        if re.search(pattern, lowered):
            return label, start, end
    return None


_HOUR_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}
_HOUR = r"(\d{1,2}|" + "|".join(_HOUR_WORDS) + r")"
_SPOKEN_TIMES: tuple[tuple[re.Pattern[str], int, int], ...] = (
    # (pattern, minutes, hour shift): "half past two" = 2:30, "quarter to four" = 3:45
    (re.compile(rf"\bhalf (?:past |after ){_HOUR}\b"), 30, 0),
    (re.compile(rf"\b(?:a )?quarter (?:past |after ){_HOUR}\b"), 15, 0),
    (re.compile(rf"\b(?:a )?quarter (?:to |before |til |till ){_HOUR}\b"), 45, -1),
    (re.compile(rf"\bhalf {_HOUR}\b"), 30, 0),  # British: "half 3" is 3:30
    (re.compile(rf"\b{_HOUR} ?(?:o'? ?clock|oclock)\b"), 0, 0),
    (re.compile(rf"\b{_HOUR} thirty\b"), 30, 0),
)


def _spoken_time(lowered: str) -> str:
    """'half past two' -> 'at 2:30', 'three o'clock' -> 'at 3:00' (then read like digits);
    a bare number word after "at" too ("at two")."""
    for pattern, minutes, shift in _SPOKEN_TIMES:
        def digits(match: re.Match[str], minutes: int = minutes, shift: int = shift) -> str:
            word = match.group(1)
            hour = _HOUR_WORDS.get(word) or int(word)
            return f"at {(hour + shift - 1) % 12 + 1}:{minutes:02d}"

        lowered = pattern.sub(digits, lowered)
    return re.sub(
        r"\b(at|around|about) (" + "|".join(_HOUR_WORDS) + r")\b",
        lambda m: f"{m.group(1)} {_HOUR_WORDS[m.group(2)]}",
        lowered,
    )


def parse_time(text: str) -> time | None:
    """'2pm', '14:30', '2.30 p.m.', 'at 3', 'noon', 'half past two', 'three o'clock' -> a
    time; None when none is said."""
    lowered = _spoken_time(text.lower())
    if re.search(r"\b(noon|midday)\b", lowered):
        return time(12, 0)
    # dates like 12/24 or "dec 24" must not be read as times
    lowered = re.sub(r"\b\d{1,2}/\d{1,2}(/\d{2,4})?\b", " ", lowered)
    lowered = re.sub(r"\b\d{4}-\d{2}-\d{2}\b", " ", lowered)
    lowered = re.sub(
        r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(st|nd|rd|th)?\b",
        " ",
        lowered,
    )
    lowered = re.sub(r"\b\d{1,2}(st|nd|rd|th)\b", " ", lowered)
    for match in _TIME_RE.finditer(lowered):
        hour, minute = int(match["hour"]), int(match["minute"] or 0)
        meridiem = match["meridiem"]
        if minute > 59:
            continue
        if "h" in (meridiem, match["sep"]):
            # "16h", "16h30": the 24-hour clock as written in much of Europe
            if hour > 23:
                continue
            return time(hour, minute)
        if meridiem:
            if not 1 <= hour <= 12:
                continue
            hour = hour % 12 + (12 if meridiem.startswith("p") else 0)
        elif 1 <= hour <= LATEST_BARE_PM_HOUR:
            hour += 12
        if hour > 23:
            continue
        # a bare number without context ("3 people") is only a time after "at"
        if not meridiem and not match["minute"]:
            before = lowered[: match.start()].rstrip()
            if (
                not before.endswith(("at", "around", "about", "for", "by", "after", "from"))
                and lowered.strip() != match.group(0).strip()
            ):
                continue
        return time(hour, minute)
    return None


class BookingSlotsValidation(TandemFormValidation):
    """Date and time checks shared by booking and rescheduling."""

    def _exclude_ref(self, tracker: Tracker) -> str | None:
        return None

    async def extract_appointment_date(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A day named in the request that starts the form ("book a stylist sat 11am"), or
        in that request said again while the form asks for the day ("is possible the
        friday?"): taken (and checked like an answer) instead of asking "What day?" again."""
        if tracker.get_slot("appointment_date"):
            return {}
        if tracker.get_slot(REQUESTED_SLOT):
            return self.take_misread_answer(tracker, "appointment_date")
        text = latest_text(tracker)
        return {"appointment_date": text} if self.reads_answer("appointment_date", text) else {}

    async def extract_appointment_time(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self.take_misread_answer(tracker, "appointment_time")

    def reads_answer(self, slot: str, text: str) -> bool:
        if slot == "appointment_date":
            with business_service() as service:
                return service.profile.resolve_day(text, service.today()) is not None
        if slot == "appointment_time":
            return parse_time(text) is not None or part_of_day(text) is not None
        return False

    def validate_appointment_date(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = text_of(value)
        with business_service() as service:
            p = service.profile
            said_time = parse_time(text)
            day = service.day_meant(text, said_time)
            if day is None and said_time is not None:
                # "3 o'clock maybe" when asked for the day: an answer, just to the next
                # question; kept for when the day comes, not a failed try.
                dispatcher.utter_message(
                    text=p.say("booking_time_before_day", time=p.format_time(said_time))
                )
                return {"appointment_date": None, "appointment_time": said_time.strftime("%H:%M")}
            if day is None:
                return self.retry(
                    dispatcher, tracker, p.say("booking_date_unparsed"), "appointment_date"
                )
            try:
                service.check_day(day)
            except ServiceError as refusal:
                return self.refuse(dispatcher, tracker, refusal.message, "appointment_date")
            result: dict[str, Any] = {"appointment_date": day.isoformat()}
            # "saturday at 2pm" answers both questions at once
            earlier_time = tracker.get_slot("appointment_time")
            if (
                said_time is None
                and earlier_time
                and "appointment_time" not in tracker.slots_to_validate()
            ):
                said_time = time.fromisoformat(str(earlier_time))
            if said_time is not None:
                try:
                    service.check_slot(day, said_time, self._exclude_ref(tracker))
                    result["appointment_time"] = said_time.strftime("%H:%M")
                    return result
                except ServiceError as refusal:
                    dispatcher.utter_message(text=refusal.message)
                    result["appointment_time"] = None
                    return result
            self._tell_free_times(service, day, tracker, dispatcher, part_of_day(text))
            return result

    def _tell_free_times(
        self,
        service: BusinessService,
        day: date,
        tracker: Tracker,
        dispatcher: CollectingDispatcher,
        part: tuple[str, time, time] | None = None,
    ) -> None:
        p = service.profile
        slots = service.free_slots(day, self._exclude_ref(tracker))
        if slots and part is not None:
            label, start, end = part
            local = [s.astimezone(p.tz).time() for s in slots]
            within = [t for t in local if start <= t < end]
            day_label = p.format_date(day, service.today())
            if not within:
                dispatcher.utter_message(
                    text=p.say(
                        "booking_part_full",
                        day=day_label,
                        part=label,
                        first=p.format_time(local[0]),
                        last=p.format_time(local[-1]),
                    )
                )
                return
            times = (
                p.join(p.format_time(t) for t in within)
                if len(within) <= LISTED_TIMES
                else f"{p.format_time(within[0])} to {p.format_time(within[-1])}"
            )
            dispatcher.utter_message(
                text=p.say("booking_free_times_part", day=day_label, part=label, times=times)
            )
            return
        if slots:
            dispatcher.utter_message(
                text=p.say(
                    "booking_free_times",
                    day=p.format_date(day, service.today()),
                    first=p.format_time(slots[0].astimezone(p.tz).time()),
                    last=p.format_time(slots[-1].astimezone(p.tz).time()),
                )
            )

    def validate_appointment_time(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        p = profile()
        text = text_of(value)
        said = parse_time(text)
        day_text = tracker.get_slot("appointment_date")
        part = part_of_day(text)
        if said is None and part is not None and day_text and self.is_requested(
            tracker, "appointment_time"
        ):
            # "in the afternoon" is an answer, just not a time yet: narrow it, not a retry
            with business_service() as service:
                self._tell_free_times(
                    service, date.fromisoformat(str(day_text)), tracker, dispatcher, part
                )
            return {"appointment_time": None}
        if said is None:
            return self.retry(
                dispatcher, tracker, p.say("booking_time_unparsed"), "appointment_time"
            )
        if not day_text:
            return {"appointment_time": said.strftime("%H:%M")}  # checked once a day is chosen
        with business_service() as service:
            try:
                service.check_slot(
                    date.fromisoformat(str(day_text)), said, self._exclude_ref(tracker)
                )
            except ServiceError as refusal:
                return self.refuse(dispatcher, tracker, refusal.message, "appointment_time")
        return {"appointment_time": said.strftime("%H:%M")}


class ValidateBookingForm(BookingSlotsValidation):
    start_intent = "book_appointment"
    form_slots: ClassVar[tuple[str, ...]] = (
        "appointment_date",
        "appointment_time",
        "customer_name",
        "customer_phone",
    )

    def name(self) -> str:
        return "validate_booking_form"

    def reads_answer(self, slot: str, text: str) -> bool:
        if slot == "customer_name":
            return read_name_and_phone(text)[0] is not None
        if slot == "customer_phone":
            return normalise_phone(text) is not None
        return super().reads_answer(slot, text)

    async def extract_customer_name(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self.take_misread_answer(tracker, "customer_name")

    async def extract_customer_phone(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self.take_misread_answer(tracker, "customer_phone")

    def validate_customer_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        name, phone = read_name_and_phone(text_of(value))
        if name is None:
            return self.retry(
                dispatcher, tracker, profile().say("booking_name_invalid"), "customer_name"
            )
        if name.islower():
            name = name.title()
        return {"customer_name": name} | ({"customer_phone": phone} if phone else {})

    def validate_customer_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        phone = normalise_phone(text_of(value))
        if phone is None:
            return self.retry(
                dispatcher, tracker, profile().say("booking_phone_invalid"), "customer_phone"
            )
        return {"customer_phone": phone}


def read_name_and_phone(text: str) -> tuple[str | None, str | None]:
    """The name, and a phone number given with it ("Jane Doe, 312 555 0199"); an e-mail
    given with it is passed over ("Carlos Ruiz, my mail carlos@example.com")."""
    phone_match = _PHONE_IN_TEXT.search(text)
    phone = normalise_phone(phone_match.group(0)) if phone_match else None
    if phone is not None and phone_match is not None:
        text = text[: phone_match.start()] + text[phone_match.end() :]
    text = _CONTACT_WORDS.sub(" ", _EMAIL_IN_TEXT.sub(" ", text))
    # The offline form's reading of a name: never "yes that good" or a question.
    return parse_name(re.sub(r"\s+", " ", text).strip(" .,!;-")), phone


def _slot_moment(tracker: Tracker) -> tuple[date, time] | None:
    day, at = tracker.get_slot("appointment_date"), tracker.get_slot("appointment_time")
    if not day or not at:
        return None
    try:
        return date.fromisoformat(str(day)), time.fromisoformat(str(at))
    except ValueError:
        return None


class ActionBookAppointment(Action):
    def name(self) -> str:
        return "action_book_appointment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = reset_slots(*ValidateBookingForm.form_slots)
        moment = _slot_moment(tracker)
        name, phone = tracker.get_slot("customer_name"), tracker.get_slot("customer_phone")
        if moment is None or not name or not phone:
            return events
        with business_service() as service:
            p = service.profile
            try:
                booking = service.book(
                    moment[0], moment[1], str(name), str(phone), verified_customer_id(tracker)
                )
            except ServiceError as refusal:  # taken between the question and now
                dispatcher.utter_message(text=refusal.message)
                return events
            dispatcher.utter_message(
                text=p.say(
                    "booking_confirmed",
                    appointment_name=p.appointments.name,
                    when=service.describe_when(booking),
                    duration=booking.duration_minutes,
                    ref=booking.ref,
                    appointment_note=p.appointments.note,
                ).strip()
            )
        return events


class BookingRefValidation(BookingSlotsValidation):
    announce_booking: ClassVar[bool] = False

    def _exclude_ref(self, tracker: Tracker) -> str | None:
        ref = tracker.get_slot("booking_ref")
        return str(ref) if ref else None

    def validate_booking_ref(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        ref = normalise_booking_ref(text_of(value))
        with business_service() as service:
            p = service.profile
            if ref is None:
                return self.retry(dispatcher, tracker, p.say("booking_ref_invalid"), "booking_ref")
            try:
                booking = service.upcoming_booking(ref)
            except ServiceError as refusal:
                return self.retry(dispatcher, tracker, refusal.message, "booking_ref")
            if self.announce_booking:
                dispatcher.utter_message(
                    text=p.say(
                        "booking_current", ref=booking.ref, when=service.describe_when(booking)
                    )
                )
        return {"booking_ref": ref}


class ValidateRescheduleForm(BookingRefValidation):
    start_intent = "reschedule_appointment"
    form_slots: ClassVar[tuple[str, ...]] = ("booking_ref", "appointment_date", "appointment_time")
    announce_booking = True

    def name(self) -> str:
        return "validate_reschedule_form"


class ActionRescheduleAppointment(Action):
    def name(self) -> str:
        return "action_reschedule_appointment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = reset_slots(*ValidateRescheduleForm.form_slots)
        ref, moment = tracker.get_slot("booking_ref"), _slot_moment(tracker)
        if not ref or moment is None:
            return events
        with business_service() as service:
            try:
                booking = service.reschedule(str(ref), moment[0], moment[1])
            except ServiceError as refusal:
                dispatcher.utter_message(text=refusal.message)
                return events
            dispatcher.utter_message(
                text=service.profile.say(
                    "booking_rescheduled", ref=booking.ref, when=service.describe_when(booking)
                )
            )
        return events


class ValidateCancelBookingForm(BookingRefValidation):
    start_intent = "cancel_appointment"
    form_slots: ClassVar[tuple[str, ...]] = ("booking_ref",)

    def name(self) -> str:
        return "validate_cancel_booking_form"


class ActionCancelAppointment(Action):
    def name(self) -> str:
        return "action_cancel_appointment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = reset_slots("booking_ref")
        ref = tracker.get_slot("booking_ref")
        if not ref:
            return events
        with business_service() as service:
            try:
                booking = service.cancel_booking(str(ref))
            except ServiceError as refusal:
                dispatcher.utter_message(text=refusal.message)
                return events
            dispatcher.utter_message(
                text=service.profile.say(
                    "booking_cancelled", ref=booking.ref, when=service.describe_when(booking)
                )
            )
        return events
