"""``job.started`` rides along with a job's first facts, in the same append."""

from __future__ import annotations

from collections.abc import Mapping

import trio

from actors.errors import JobFailedError
from actors.job_actor import Handler, JobActor, JobContext
from eventlog import EventLog, MemoryStorage
from eventlog.batch import AppendRequest, BatchPlan
from tests.actors.support import job_spec

JOB_ID = "job_0123456789abcdef01"


class AppendsStorage(MemoryStorage):
    """Remembers the event types of each append, in commit order."""

    def __init__(self) -> None:
        super().__init__()
        self.appends: list[list[str]] = []

    def commit(
        self,
        requests: list[AppendRequest],
        checkpoints: Mapping[str, int],
        now_ns: int,
    ) -> BatchPlan:
        self.appends += [[event.type for event in r.events] for r in requests]
        return super().commit(requests, checkpoints, now_ns)


async def run_job(handler: Handler) -> list[list[str]]:
    """Run one job with ``handler`` to its end; the appends it made."""
    storage = AppendsStorage()
    event_log = EventLog(storage)
    spec = job_spec(JOB_ID)
    async with trio.open_nursery() as nursery:
        await nursery.start(event_log.run)
        with trio.fail_after(10):
            await JobActor(spec, handler, event_log, trio.Semaphore(1)).run()
        event_log.close()
    return storage.appends


async def test_job_actor_appends_started_with_the_first_step() -> None:
    """The first step and job.started are one append; later facts are not."""

    async def handler(ctx: JobContext) -> None:
        await ctx.step("validate", "ok")
        await ctx.step("work", "running")

    appends = await run_job(handler)

    assert appends == [
        ["job.started", "job.step"],
        ["job.step"],
        ["job.step", "job.finished"],
    ]


async def test_job_actor_records_started_for_a_job_without_steps() -> None:
    """A handler that records nothing still leaves job.started, before its end."""

    async def handler(ctx: JobContext) -> None:
        return None

    appends = await run_job(handler)

    assert appends == [["job.started", "job.step", "job.finished"]]


async def test_job_actor_records_started_for_a_job_failing_at_once() -> None:
    """A handler failing before its first step: started, error step, finished."""

    async def handler(ctx: JobContext) -> None:
        raise JobFailedError("invalid payload: nope")

    appends = await run_job(handler)

    assert appends == [["job.started", "job.step", "job.finished"]]
