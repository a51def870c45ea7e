"""Email validation and the normalised form accounts are compared in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.emails import (
    InvalidEmailError,
    clean_email,
    email_digest,
    normalise_email,
)


@pytest.mark.parametrize(
    "raw",
    ["", "plain", "a@b", "@b.c", "a@.c ", "a b@c.d", "a@b@c.d", None, 42, "a@b.c\x00"],
)
def test_clean_email_rejects_what_is_not_an_address(raw: object) -> None:
    """Anything not shaped like a@b.c is refused with the one message."""

    with pytest.raises(InvalidEmailError) as caught:
        clean_email(raw)

    assert str(caught.value) == "enter a valid email address"


def test_clean_email_rejects_addresses_over_254_characters() -> None:
    """An address longer than SMTP allows is refused."""
    raw = "a" * 243 + "@example.com"

    with pytest.raises(InvalidEmailError):
        clean_email(raw)

    assert clean_email(raw[1:]) == raw[1:]


def test_clean_email_trims_and_keeps_the_case() -> None:
    """The address is stored as entered, without surrounding blanks."""

    cleaned = clean_email("  Neo@Example.COM \n")

    assert cleaned == "Neo@Example.COM"


def test_normalise_email_folds_width_and_case() -> None:
    """Full-width letters and case differences are one address."""
    full_width = "\uff2eeo@Example.com"

    normalised = normalise_email(full_width)

    assert normalised == "neo@example.com"
    assert email_digest(full_width) == email_digest("NEO@example.COM")


def test_normalise_email_folds_sharp_s() -> None:
    """Case folding, not lowering: "ß" and "SS" compare equal."""

    assert normalise_email("STRASSE@x.de") == normalise_email("straße@x.de")


@given(st.text())
def test_normalise_email_is_idempotent(text: str) -> None:
    """Normalising twice changes nothing."""

    once = normalise_email(text)

    assert normalise_email(once) == once


@given(st.text(alphabet=st.characters(codec="ascii"), min_size=1))
def test_normalise_email_equals_lowercase_for_ascii(text: str) -> None:
    """For ASCII addresses normalising is trimming and lower-casing."""

    assert normalise_email(text) == text.strip().lower()
