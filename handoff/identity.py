"""Verified customer identity for the widget (the Intercom / Chatwoot recipe).

Tandem never routes on what a visitor merely claims. When the SMB's website knows who is
logged in, its own backend signs the customer id with a secret shared with Tandem
(the IDENTITY_SECRET setting), and the page passes the three values to the widget:

    <script src="https://HOST/widget.js" data-customer-id="12"
            data-expires-at="1767225600" data-signature="HEX..."></script>

The signature is HMAC-SHA256, hex encoded, over the exact string
``f"{customer_id}:{expires_at}"``, where expires_at is a Unix time in whole seconds.
Compute it on the server, never in the browser (the secret must stay secret):

Python (``import hashlib, hmac``)::

    hmac.new(SECRET.encode(), f"{id}:{expires_at}".encode(), hashlib.sha256).hexdigest()

Node::

    require("crypto").createHmac("sha256", SECRET).update(`${id}:${expiresAt}`).digest("hex")

Choose expires_at a few hours ahead (at most `max_lifetime_seconds`, one day by default):
a copied snippet then stops working on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

DEFAULT_MAX_LIFETIME_SECONDS = 24 * 3600
DEFAULT_CLOCK_SKEW_SECONDS = 60
MAX_CUSTOMER_ID_LENGTH = 128

_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_CUSTOMER_ID = re.compile(r"[A-Za-z0-9_.@:+\-]+")


class IdentityError(ValueError):
    """A signed identity that must not be trusted; the message says why."""


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    customer_id: str
    expires_at: int


def _require_secret(secret: str) -> bytes:
    if not secret:
        # A configuration error, not a forged identity: fail loudly.
        raise ValueError("the identity secret is empty; set IDENTITY_SECRET")
    return secret.encode("utf-8")


def _message(customer_id: str, expires_at: int) -> bytes:
    return f"{customer_id}:{expires_at}".encode()


def sign_identity(customer_id: str, secret: str, expires_at: int) -> str:
    """The hex HMAC-SHA256 an SMB's backend puts beside the customer id (for tests and docs)."""
    key = _require_secret(secret)
    return hmac.new(key, _message(str(customer_id), int(expires_at)), hashlib.sha256).hexdigest()


def _parse_expiry(expires_at: int | str) -> int:
    if isinstance(expires_at, bool):
        raise IdentityError("malformed identity: expires_at must be a Unix time in seconds")
    if isinstance(expires_at, int):
        return expires_at
    text = str(expires_at).strip()
    if not text.isdigit() or len(text) > 12:
        raise IdentityError(
            f"malformed identity: expires_at {expires_at!r} is not a Unix time in whole seconds"
        )
    return int(text)


def verify_identity(
    customer_id: str,
    expires_at: int | str,
    signature: str,
    secret: str,
    now: float | None = None,
    *,
    max_lifetime_seconds: int = DEFAULT_MAX_LIFETIME_SECONDS,
    clock_skew_seconds: int = DEFAULT_CLOCK_SKEW_SECONDS,
) -> VerifiedIdentity:
    """Check a signed identity from the widget; raise IdentityError unless it is genuine."""
    key = _require_secret(secret)
    customer_id = str(customer_id or "")
    if not customer_id or len(customer_id) > MAX_CUSTOMER_ID_LENGTH:
        raise IdentityError(
            f"malformed identity: customer_id must be 1-{MAX_CUSTOMER_ID_LENGTH} characters"
        )
    if not _CUSTOMER_ID.fullmatch(customer_id):
        raise IdentityError(
            "malformed identity: customer_id has characters outside [A-Za-z0-9_.@:+-]"
        )
    expiry = _parse_expiry(expires_at)
    signature = str(signature or "").strip().lower()
    if not _HEX_SIGNATURE.fullmatch(signature):
        raise IdentityError("malformed identity: signature must be 64 hex characters (HMAC-SHA256)")

    expected = hmac.new(key, _message(customer_id, expiry), hashlib.sha256).hexdigest()
    # Constant time, so the signature cannot be guessed byte by byte from response times.
    if not hmac.compare_digest(expected, signature):
        raise IdentityError("forged identity: the signature does not match this customer id")

    current = time.time() if now is None else now
    if current > expiry + clock_skew_seconds:
        raise IdentityError(
            f"expired identity: it expired {int(current - expiry)} s ago; sign a fresh one"
        )
    if expiry - current > max_lifetime_seconds + clock_skew_seconds:
        raise IdentityError(
            f"identity lives too long: expires_at is {int(expiry - current)} s ahead, "
            f"at most {max_lifetime_seconds} s is accepted"
        )
    return VerifiedIdentity(customer_id=customer_id, expires_at=expiry)


# ----------------------------------------------------------- gateway → actions

# A separate message format from the widget's "id:expiry", so that neither signature can
# ever be replayed as the other.
_CONVERSATION_CONTEXT = b"tandem-conversation-identity\x00"
IDENTITY_SIGNATURE_KEY = "identity_signature"


def _conversation_message(conversation_id: str, customer_id: int | str) -> bytes:
    return _CONVERSATION_CONTEXT + f"{conversation_id}\x00{customer_id}".encode()


def sign_conversation_identity(secret: str, conversation_id: str, customer_id: int | str) -> str:
    """HMAC-SHA256 (hex) binding one customer to one conversation.

    The gateway signs it for every message of a verified conversation; the actions (and
    our own order look-up, after a matching e-mail) trust a customer id only with it.
    """
    key = _require_secret(secret)
    return hmac.new(
        key, _conversation_message(str(conversation_id), customer_id), hashlib.sha256
    ).hexdigest()


def verify_conversation_identity(
    secret: str, conversation_id: str, customer_id: object, signature: object
) -> int | None:
    """The customer id when `signature` signs it for this conversation, else None."""
    if isinstance(customer_id, bool) or not isinstance(signature, str):
        return None
    if isinstance(customer_id, float) and customer_id.is_integer():
        customer_id = int(customer_id)  # Rasa keeps numeric slots as floats
    if not isinstance(customer_id, int) or not conversation_id:
        return None
    expected = sign_conversation_identity(secret, conversation_id, customer_id)
    # Constant time, so a signature cannot be found byte by byte from response times.
    return customer_id if hmac.compare_digest(expected, signature.strip().lower()) else None


def rasa_identity_metadata(
    secret: str, conversation_id: str, customer_id: int | None, verified: bool
) -> dict[str, object]:
    """The metadata the gateway sends to Rasa with each customer message.

    A verified customer id travels with its signature; an unverified one is only a hint
    (the actions never act on it).
    """
    metadata: dict[str, object] = {
        "conversation_id": conversation_id,
        "customer_id": customer_id,
        "verified": bool(verified and customer_id is not None),
    }
    if verified and customer_id is not None:
        metadata[IDENTITY_SIGNATURE_KEY] = sign_conversation_identity(
            secret, conversation_id, customer_id
        )
    return metadata
