"""A job whose events the log refuses ends alone, with one line, and nothing else."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest
import trio

from actors.job_actor import JobActor, JobContext
from eventlog import EventLog, MemoryStorage, StorageFullError
from eventlog.batch import AppendRequest, BatchPlan
from tests.actors.support import job_spec

JOB_ID = "job_0123456789abcdef02"
FULL = "the event log is full: its map size of 1048576 bytes is reached"


class FullStorage(MemoryStorage):
    """A log that has no room left for anything."""

    def commit(
        self,
        requests: list[AppendRequest],
        checkpoints: Mapping[str, int],
        now_ns: int,
    ) -> BatchPlan:
        raise StorageFullError(FULL)


async def test_job_whose_events_are_refused_ends_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its step and its end are refused; run() returns and logs two lines."""
    event_log = EventLog(FullStorage())
    spec = job_spec(JOB_ID)

    async def handler(ctx: JobContext) -> None:
        await ctx.step("validate", "ok")

    caplog.set_level(logging.ERROR, logger="actors.job_actor")
    async with trio.open_nursery() as nursery:
        await nursery.start(event_log.run)
        with trio.fail_after(10):
            await JobActor(spec, handler, event_log, trio.Semaphore(1)).run()
        event_log.close()

    job_lines = [r for r in caplog.records if r.name == "actors.job_actor"]
    assert [record.getMessage() for record in job_lines] == [
        f"job stopped: the event log refused its events job_id={JOB_ID}: {FULL}",
        f"terminal event not recorded job_id={JOB_ID}: {FULL}",
    ]
    assert all(record.exc_info is None for record in job_lines)
