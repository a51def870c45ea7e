"""Password rules and argon2id hashing, off the event loop.

One rule everywhere: at least 8 and at most 1,024 characters. The upper
bound keeps a single request from buying unbounded hashing work. Hashing is
deliberately slow and memory-hungry, so it runs in worker threads behind a
small capacity limiter: a burst of logins queues instead of allocating
``memory_cost`` for every request at once.
"""

from __future__ import annotations

import secrets
from typing import Final

import argon2
import trio
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_CHARS: Final = 8
MAX_PASSWORD_CHARS: Final = 1024


class InvalidPasswordError(ValueError):
    """The password breaks the password rule; the message says which part."""


def check_password(password: object) -> str:
    """Return ``password`` if it satisfies the password rule.

    Raises:
        InvalidPasswordError: not a string, or outside 8 to 1,024 characters.
    """
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise InvalidPasswordError(
            f"password must be at least {MIN_PASSWORD_CHARS} characters"
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidPasswordError(
            f"password must be at most {MAX_PASSWORD_CHARS} characters"
        )
    return password


class PasswordHasher:
    """argon2id with configurable cost, run in threads, a few at a time."""

    def __init__(
        self,
        *,
        time_cost: int,
        memory_cost_kib: int,
        parallelism: int,
        concurrency: int = 2,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._limiter = trio.CapacityLimiter(concurrency)
        self._decoy: str | None = None

    async def hash(self, password: str) -> str:
        """The argon2id encoding of ``password`` with the current parameters."""
        return await trio.to_thread.run_sync(
            self._hasher.hash, password, limiter=self._limiter
        )

    async def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches the ``stored`` encoding.

        A malformed stored hash is a mismatch, never an error.
        """
        return await trio.to_thread.run_sync(
            self._verify_sync, stored, password, limiter=self._limiter
        )

    async def verify_decoy(self, password: str) -> None:
        """Spend the time of a real verification, for an unknown account.

        Without it a login for an address with no account answers faster
        than one with a wrong password, which tells which addresses exist.
        """
        if self._decoy is None:
            self._decoy = await self.hash(secrets.token_urlsafe(16))
        await self.verify(self._decoy, password)

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than the current."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    def _verify_sync(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
