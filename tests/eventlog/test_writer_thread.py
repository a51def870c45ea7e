"""Commits run on one dedicated thread, and every caller hears how its append ended."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import pytest
import trio
import trio.testing

from eventlog import AppendResult, EventLog, EventLogError, LmdbStorage
from eventlog.batch import AppendRequest, BatchPlan
from eventlog.memory_storage import MemoryStorage
from eventlog.writer_thread import WriterThread
from tests.eventlog.support import event, running_log


async def test_writer_thread_returns_results_and_raises_errors() -> None:
    """A function's value comes back; its exception is raised in the caller."""
    writer = WriterThread("test writer")
    writer.start()
    try:
        value = await writer.run(lambda: 6 * 7)
        with pytest.raises(ZeroDivisionError):
            await writer.run(lambda: 1 // 0)
        name = await writer.run(lambda: threading.current_thread().name)
    finally:
        writer.stop()

    assert (value, name) == (42, "test writer")


async def test_writer_thread_cannot_be_cancelled_out_of_a_running_call() -> None:
    """A cancelled caller still waits for the call it handed over to finish."""
    writer = WriterThread("test writer")
    writer.start()
    release = threading.Event()
    finished: list[str] = []

    def slow() -> str:
        release.wait(10)
        finished.append("done")
        return "done"

    try:
        with trio.CancelScope() as scope:
            scope.cancel()
            trio.lowlevel.current_trio_token().run_sync_soon(release.set)
            result = await writer.run(slow)
    finally:
        writer.stop()

    assert (result, finished, scope.cancelled_caught) == ("done", ["done"], False)


async def test_writer_thread_refuses_work_when_not_started() -> None:
    """Handing work to a thread that is not running is an error, not a hang."""
    writer = WriterThread("idle writer")

    with pytest.raises(RuntimeError) as error:
        await writer.run(lambda: None)

    assert str(error.value) == "the writer thread is not running"


async def test_log_commits_every_batch_on_one_thread(tmp_path: Path) -> None:
    """All write transactions of a durable log run on the same named thread."""
    threads: set[str] = set()

    class Watched(LmdbStorage):
        def commit(
            self,
            requests: list[AppendRequest],
            checkpoints: Mapping[str, int],
            now_ns: int,
        ) -> BatchPlan:
            threads.add(threading.current_thread().name)
            return super().commit(requests, checkpoints, now_ns)

    storage = Watched(tmp_path / "log")
    async with running_log(storage) as event_log, trio.open_nursery() as nursery:
        for n in range(20):
            nursery.start_soon(event_log.append, f"s-{n}", [event(n)])

    assert threads == {"event log writer"}
    assert threading.current_thread().name not in threads


async def test_log_backend_bug_fails_waiting_appends_instead_of_leaving_them() -> None:
    """An unexpected error in a commit reaches every caller of that batch."""

    class Broken(MemoryStorage):
        def commit(
            self,
            requests: list[AppendRequest],
            checkpoints: Mapping[str, int],
            now_ns: int,
        ) -> BatchPlan:
            # Planning sets each request's result before the failure, as a
            # backend that breaks while writing would leave them.
            super().commit(requests, checkpoints, now_ns)
            raise RuntimeError("backend bug")

    event_log = EventLog(Broken())
    outcomes: list[str] = []

    async def append(n: int) -> None:
        try:
            result: AppendResult | str = await event_log.append("s", [event(n)])
        except EventLogError as error:
            result = str(error)
        outcomes.append(str(result))

    crash = pytest.RaisesGroup(
        pytest.RaisesExc(RuntimeError, match="^backend bug$"), flatten_subgroups=True
    )
    with crash:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(event_log.run)
            await trio.testing.wait_all_tasks_blocked()
            async with trio.open_nursery() as appenders:
                for n in range(3):
                    appenders.start_soon(append, n)

    assert outcomes == ["the event log stopped before this append was committed"] * 3
