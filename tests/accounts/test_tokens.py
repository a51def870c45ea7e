"""Tokens are random, prefixed, and stored only as their SHA-256."""

from __future__ import annotations

import hashlib

from runtime.tokens import RESET_PREFIX, new_id, new_token, token_hash


def test_new_token_is_prefixed_and_unique() -> None:
    """Each token carries its kind's prefix and 256 random bits."""

    tokens = {new_token(RESET_PREFIX) for _ in range(100)}

    assert len(tokens) == 100
    assert all(t.startswith("mxpr_") and len(t) == 5 + 43 for t in tokens)


def test_token_hash_is_the_sha256_hex() -> None:
    """The stored form is the SHA-256 hex of the token's UTF-8 bytes."""

    digest = token_hash("mxs_abc")

    assert digest == hashlib.sha256(b"mxs_abc").hexdigest()


def test_token_hash_accepts_any_text() -> None:
    """Non-ASCII and lone surrogates hash instead of raising."""

    assert len(token_hash("tökén\udcff")) == 64


def test_new_id_has_prefix_and_16_hex_digits() -> None:
    """Ids are a prefix and 8 random bytes in hex."""

    user_id = new_id("usr_")

    assert user_id.startswith("usr_")
    assert int(user_id[4:], 16) >= 0
    assert len(user_id) == 20
