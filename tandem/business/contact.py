"""What a customer types as their name or contact: read the same way wherever it is asked
(the offline contact form, the booking form)."""

from __future__ import annotations

import re

from tandem.business.service import normalise_email

_NAME_LEAD_IN = re.compile(
    r"^(?:(?:hi|hello|hey|sure|ok|okay|yes|good|great|fine|perfect)\b[\s,!.]*)?"
    r"(?:it'?s|it is|i'?m|i am|this is|my name is|my name'?s|name'?s|name is|name:|"
    r"call me)\s*",
    re.IGNORECASE,
)
# Letters (any script), then letters, spaces, hyphens and apostrophes.
_NAME = re.compile(r"[^\W\d_](?:[^\W\d_]|[ '’-])*")
_NAME_MAX_CHARS = 80
_NAME_MAX_WORDS = 5
# A message starting with one of these is a question or a request, not a name.
_NOT_NAME_START = frozenset(
    re.findall(
        r"\S+",
        """how what when where why who whom whose which can could do does did is are was were
    will would should shall may might have has had i we you my our your the a an this that
    there please tell show give send need want help track cancel return change book find
    check where's what's how's when's who's don't dont not no yes ok okay hi hello hey
    thanks thank sure yeah yep nope any anything something good great fine perfect nice
    cool lovely awesome alright right""",
    )
)
# Words that are never part of a name: things a shop is asked about, days and times
# (an answer to the bot's other questions), farewells, and the function words of a
# sentence ("So Is My Appointment Booked").
_NOT_NAME_WORDS = frozenset(
    re.findall(
        r"\S+",
        """order orders refund refunds return returns price prices cost costs much many hours
    open opening closed delivery shipping size sizes stock appointment booking booked blazer
    dress shirt jacket coat shoes item items help question person human agent staff manager
    monday tuesday wednesday thursday friday saturday sunday today tomorrow tonight morning
    afternoon evening night noon weekend week am pm bye goodbye thx thanks thank ty cheers
    lol ok okay is are was were am my your our their the a an this that it its so and or
    but not what when where how why booked confirmed please sorry""",
    )
)
_OPT_OUT = re.compile(
    r"^(?:(?:ok(?:ay)?|no|nope)?[\s,]*(?:thanks?|thx|ty|thank you|cheers)?[\s,!.]*"
    r"(?:bye|goodbye|bye bye|see ya|cya)|no,?\s*thanks?|no thank you|nope|no|cancel|stop|"
    r"skip|never ?mind|forget it|i'?d rather not|rather not|not now|leave it|"
    r"(?:ok(?:ay)?\s*)?(?:thanks?|thx|ty|thank you)(?: anyway)?)[\s.!]*$",
    re.IGNORECASE,
)
_EMAIL_TOKEN = re.compile(r"\S*@\S*")
_EMAIL_VALID = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
# Where an address is expected, only a clear question or request goes to the bot.
_QUESTION_START = frozenset(
    re.findall(
        r"\S+",
        """how what when where why who which can could do does did is are will would should
        may please tell show give send track cancel return change book find check where's
        what's how's when's who's""",
    )
)


def is_opt_out(text: str) -> bool:
    """The customer leaves the contact form: "no thanks", "cancel", "never mind"."""
    return bool(_OPT_OUT.match(text.strip().replace("’", "'")))


def looks_like_question(text: str) -> bool:
    words = re.findall(r"[\w']+", text.lower().replace("’", "'"))
    return "?" in text or (bool(words) and words[0] in _QUESTION_START)


def parse_name(text: str) -> str | None:
    """The customer's name from "Marcus Reed" or "it's Ana"; None for anything else.

    A name is letters, spaces, hyphens and apostrophes, at most 80 characters and five
    words; a question ("how much is the blazer"), a request or small talk is not one.
    """
    cleaned = text.strip().replace("’", "'").rstrip(".!")
    if "?" in cleaned:
        return None
    cleaned = _NAME_LEAD_IN.sub("", cleaned, count=1).strip()
    cleaned = re.sub(r"\s+", " ", cleaned)
    if not _NAME.fullmatch(cleaned):
        # "Amira Haddad, it is my wife name": the name is the first clause
        cleaned = re.split(r"\s*[,;.]\s*", cleaned, maxsplit=1)[0]
    if not cleaned or len(cleaned) > _NAME_MAX_CHARS or not _NAME.fullmatch(cleaned):
        return None
    words = cleaned.lower().split()
    if len(words) > _NAME_MAX_WORDS or sum(c.isalpha() for c in cleaned) < 2:
        return None
    if words[0] in _NOT_NAME_START or any(w.strip("'-") in _NOT_NAME_WORDS for w in words):
        return None
    return cleaned


def find_email(text: str) -> tuple[str | None, str | None]:
    """(a valid e-mail address, None), (None, what was typed as a broken one) or (None, None)."""
    token = _EMAIL_TOKEN.search(text)
    if token is None:
        return None, None
    candidate = token.group(0).strip("<>()[]\"',;:.!?")
    if _EMAIL_VALID.match(candidate):
        return normalise_email(candidate), None
    return None, candidate[:80]
