"""Random secrets shown once, and the only form in which they are kept.

A token is handed to its owner exactly once; the log and every read model
hold only its SHA-256 hex, so reading the data directory never yields a
usable credential.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

SESSION_PREFIX: Final = "mxs_"
RESET_PREFIX: Final = "mxpr_"
VERIFY_PREFIX: Final = "mxev_"
TOKEN_BYTES: Final = 32


def new_token(prefix: str) -> str:
    """A fresh URL-safe token with 256 random bits after ``prefix``."""
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """The SHA-256 hex of ``token``: what is stored in place of the token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_id(prefix: str) -> str:
    """A random identifier such as ``usr_1f2e3d4c5b6a7988`` (8 random bytes)."""
    return prefix + secrets.token_hex(8)
