"""An in-process accounts stack on the in-memory log, with a hand-driven clock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from actors.account_services import AccountServices
from actors.accounts import AccountCommands
from eventlog import EventLog, MemoryStorage, RecordedEvent
from projections.accounts import AccountsState
from runtime.config import Settings
from runtime.mailer import Mail

FAST_HASHING: dict[str, Any] = {
    "argon2_time_cost": 1,
    "argon2_memory_kib": 8192,
    "argon2_parallelism": 1,
}


class Clock:
    """Wall-clock nanoseconds that move only when a test says so."""

    def __init__(self) -> None:
        # Starts at the real time: the log stamps events with it, and the read
        # model sweeps expired sessions by those stamps.
        self.now_ns = time.time_ns()

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now_ns += int(seconds * 10**9)


class MailOutbox:
    """Stands in for the mailer actor in the accounts commands: keeps mails."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []

    def submit(self, mail: Mail, *, workspace: str = "") -> bool:
        """Keep ``mail``."""
        self.mails.append(mail)
        return True

    def last(self, kind: str) -> Mail:
        """The last mail of ``kind``."""
        return [m for m in self.mails if m.kind == kind][-1]


@dataclass
class Stack:
    """The running services and what a test needs to look at them."""

    log: EventLog
    services: AccountServices
    clock: Clock
    outbox: MailOutbox

    @property
    def commands(self) -> AccountCommands:
        """The account commands."""
        return self.services.commands

    @property
    def state(self) -> AccountsState:
        """The accounts read model as it is now."""
        return self.services.runner.state

    async def events(self, stream: str | None = None) -> list[RecordedEvent]:
        """Every event in the log, or in ``stream``."""
        if stream is not None:
            return await self.log.read_stream(stream, 1, 10_000)
        return await self.log.read_all(0, 10_000)


@asynccontextmanager
async def running_stack(
    storage: MemoryStorage | None = None, **overrides: Any
) -> AsyncIterator[Stack]:
    """Accounts on a running in-memory log; ``overrides`` replace settings."""
    settings = Settings(
        **{**FAST_HASHING, "public_url": "http://test.invalid", **overrides}
    )
    log = EventLog(storage or MemoryStorage())
    clock = Clock()
    async with trio.open_nursery() as nursery:
        await nursery.start(log.run)
        services = AccountServices.build(log, None, settings)
        services.commands.clock = clock
        outbox = MailOutbox()
        services.commands.mailer = outbox
        await nursery.start(services.run)
        yield Stack(log, services, clock, outbox)
        nursery.cancel_scope.cancel()
