"""Signed widget identities: genuine ones pass; forged, tampered, expired and malformed fail."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from handoff.identity import IdentityError, VerifiedIdentity, sign_identity, verify_identity

SECRET = "s3cret-shared-with-the-shop"
NOW = 1_767_225_600
EXPIRES = NOW + 3600


def test_a_genuine_identity_verifies() -> None:
    signature = sign_identity("12", SECRET, EXPIRES)
    assert verify_identity("12", EXPIRES, signature, SECRET, now=NOW) == VerifiedIdentity(
        "12", EXPIRES
    )
    # The widget hands values over as strings, and hex may arrive upper-cased.
    assert (
        verify_identity("12", str(EXPIRES), signature.upper(), SECRET, now=NOW).customer_id == "12"
    )


def test_the_documented_recipe_matches() -> None:
    """The one-liner in the module docstring is what an SMB's backend runs."""
    recipe = hmac.new(SECRET.encode(), f"cus_42:{EXPIRES}".encode(), hashlib.sha256).hexdigest()
    assert sign_identity("cus_42", SECRET, EXPIRES) == recipe
    assert verify_identity("cus_42", EXPIRES, recipe, SECRET, now=NOW).customer_id == "cus_42"


def test_forged_with_another_secret() -> None:
    forged = sign_identity("12", "guessed-secret", EXPIRES)
    with pytest.raises(IdentityError, match="forged identity"):
        verify_identity("12", EXPIRES, forged, SECRET, now=NOW)


def test_tampered_customer_id_or_expiry() -> None:
    signature = sign_identity("12", SECRET, EXPIRES)
    with pytest.raises(IdentityError, match="forged"):
        verify_identity("13", EXPIRES, signature, SECRET, now=NOW)
    with pytest.raises(IdentityError, match="forged"):
        verify_identity("12", EXPIRES + 86_000, signature, SECRET, now=NOW)  # stretched life
    with pytest.raises(IdentityError, match="forged"):
        verify_identity("12", EXPIRES, signature[:-1] + ("0" if signature[-1] != "0" else "1"),
                        SECRET, now=NOW)  # fmt: skip


def test_expired_beyond_the_clock_skew() -> None:
    signature = sign_identity("12", SECRET, NOW - 30)
    # 30 s late is within the default 60 s skew.
    assert verify_identity("12", NOW - 30, signature, SECRET, now=NOW).customer_id == "12"
    with pytest.raises(IdentityError, match=r"expired identity: it expired 30 s ago"):
        verify_identity("12", NOW - 30, signature, SECRET, now=NOW, clock_skew_seconds=0)
    late = sign_identity("12", SECRET, NOW - 600)
    with pytest.raises(IdentityError, match="expired"):
        verify_identity("12", NOW - 600, late, SECRET, now=NOW)


def test_lifetime_longer_than_allowed() -> None:
    far = NOW + 30 * 86_400
    signature = sign_identity("12", SECRET, far)
    with pytest.raises(IdentityError, match="lives too long"):
        verify_identity("12", far, signature, SECRET, now=NOW)
    assert (
        verify_identity(
            "12", far, signature, SECRET, now=NOW, max_lifetime_seconds=31 * 86_400
        ).expires_at
        == far
    )


@pytest.mark.parametrize(
    ("customer_id", "expires_at", "signature", "message"),
    [
        ("", EXPIRES, "a" * 64, "customer_id must be"),
        ("x" * 129, EXPIRES, "a" * 64, "customer_id must be"),
        ("12 OR 1=1", EXPIRES, "a" * 64, "characters outside"),
        ("12", "soon", "a" * 64, "not a Unix time"),
        ("12", "-5", "a" * 64, "not a Unix time"),
        ("12", True, "a" * 64, "Unix time"),
        ("12", EXPIRES, "", "64 hex characters"),
        ("12", EXPIRES, "z" * 64, "64 hex characters"),
        ("12", EXPIRES, "a" * 63, "64 hex characters"),
    ],
)
def test_malformed(customer_id: str, expires_at: object, signature: str, message: str) -> None:
    with pytest.raises(IdentityError, match=f"malformed identity: .*{message}"):
        verify_identity(customer_id, expires_at, signature, SECRET, now=NOW)  # type: ignore[arg-type]


def test_an_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="secret is empty"):
        sign_identity("12", "", EXPIRES)
    with pytest.raises(ValueError, match="secret is empty"):
        verify_identity("12", EXPIRES, "a" * 64, "", now=NOW)
