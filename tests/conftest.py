"""Fixtures shared across the suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from eventlog import EventLog, LmdbStorage, MemoryStorage
from eventlog.storage import Storage
from tests.eventlog.support import running_log

# -- the event log ------------------------------------------------------------

BACKENDS = ("memory", "lmdb", "lmdb-index-batch-2")


@pytest.fixture(params=BACKENDS)
def log_backend(request: pytest.FixtureRequest) -> str:
    """The name of the log backend under test; every contract test runs on each."""
    name: str = request.param
    return name


@pytest.fixture
def make_log_storage(log_backend: str, tmp_path: Path) -> Callable[[], Storage]:
    """Open the backend's storage; for LMDB, the same directory every call."""

    def make() -> Storage:
        if log_backend == "memory":
            return MemoryStorage()
        if log_backend == "lmdb-index-batch-2":
            # Index entries reach the tables every few events, so reads and
            # checks see both halves of the index and the moment they meet.
            return LmdbStorage(tmp_path / "log", index_batch=2)
        return LmdbStorage(tmp_path / "log")

    return make


@pytest.fixture
async def event_log(make_log_storage: Callable[[], Storage]) -> AsyncIterator[EventLog]:
    """A running log on a fresh storage of the backend under test."""
    async with running_log(make_log_storage()) as opened:
        yield opened
