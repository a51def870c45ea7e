"""Email addresses: validation with clear errors, and the comparison form.

Two addresses are the same account when their normalised forms are equal:
Unicode NFKC, then case folding. ``ALICE@Example.com`` written with a
full-width A (U+FF21) and ``alice@example.com`` are one address.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Final

MAX_EMAIL_CHARS: Final = 254
INVALID_EMAIL: Final = "enter a valid email address"

_SHAPE: Final = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")


class InvalidEmailError(ValueError):
    """The text is not an address mail can be sent to."""


_HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def clean_email(raw: object) -> str:
    """The trimmed address, checked for shape.

    Raises:
        InvalidEmailError: ``raw`` is not a string shaped like ``a@b.c``
            (as entered and once normalised), is longer than 254
            characters, or holds control or invisible characters.
    """
    if not isinstance(raw, str):
        raise InvalidEmailError(INVALID_EMAIL)
    email = raw.strip()
    if (
        len(email) > MAX_EMAIL_CHARS
        or not _SHAPE.fullmatch(email)
        or not _SHAPE.fullmatch(normalise_email(email))
        # Controls, and invisible format characters (a zero-width space, a
        # right-to-left override), which would make a second account whose
        # address looks exactly like the first.
        or any(unicodedata.category(ch) in _HIDDEN_CATEGORIES for ch in email)
    ):
        raise InvalidEmailError(INVALID_EMAIL)
    return email


def normalise_email(email: str) -> str:
    """The form addresses are compared in: trimmed, NFKC, case-folded.

    Case folding can undo NFKC for a few characters, so the result is
    normalised once more, and trimmed last because NFKC can produce blanks
    (U+00AF becomes a space and a combining macron). That makes the function
    idempotent.
    """
    folded = unicodedata.normalize("NFKC", email).casefold()
    return unicodedata.normalize("NFKC", folded).strip()


def email_digest(email: str) -> str:
    """SHA-256 hex of the normalised address, used to name its claim stream."""
    return hashlib.sha256(normalise_email(email).encode("utf-8")).hexdigest()
