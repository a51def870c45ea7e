"""The password rule and argon2id hashing."""

from __future__ import annotations

import pytest

from runtime.passwords import InvalidPasswordError, PasswordHasher, check_password


def _hasher(time_cost: int = 1) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost_kib=8192, parallelism=1)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("1234567", "password must be at least 8 characters"),
        ("", "password must be at least 8 characters"),
        (None, "password must be at least 8 characters"),
        ("x" * 1025, "password must be at most 1024 characters"),
    ],
)
def test_check_password_refuses_outside_the_rule(
    password: object, message: str
) -> None:
    """Under 8 or over 1,024 characters is refused with a precise message."""

    with pytest.raises(InvalidPasswordError) as caught:
        check_password(password)

    assert str(caught.value) == message


def test_check_password_counts_characters_not_bytes() -> None:
    """Eight non-ASCII characters are enough, though they are more bytes."""
    password = "ééééééé"

    with pytest.raises(InvalidPasswordError):
        check_password(password)

    assert check_password(password + "é") == "éééééééé"
    assert check_password("x" * 1024) == "x" * 1024


async def test_password_hasher_verifies_only_the_right_password() -> None:
    """The encoding is argon2id and only the original password matches."""
    hasher = _hasher()

    stored = await hasher.hash("correct horse")

    assert stored.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert await hasher.verify(stored, "correct horse") is True
    assert await hasher.verify(stored, "correct horsE") is False


async def test_password_hasher_treats_a_malformed_hash_as_a_mismatch() -> None:
    """A damaged stored hash never raises; it simply does not match."""
    hasher = _hasher()

    result = await hasher.verify("pbkdf2$120000$00$00", "whatever1")

    assert result is False
    assert hasher.needs_rehash("pbkdf2$120000$00$00") is True


async def test_password_hasher_wants_a_rehash_when_parameters_change() -> None:
    """A hash made with other parameters is flagged for an upgrade."""
    stored = await _hasher(time_cost=1).hash("correct horse")

    needs = _hasher(time_cost=2).needs_rehash(stored)

    assert needs is True
    assert _hasher(time_cost=1).needs_rehash(stored) is False


async def test_password_hasher_decoy_does_not_raise() -> None:
    """The decoy check for unknown accounts runs a real verification."""
    hasher = _hasher()

    await hasher.verify_decoy("anything at all")
    await hasher.verify_decoy("")

    assert hasher.needs_rehash(await hasher.hash("abcdefgh")) is False
