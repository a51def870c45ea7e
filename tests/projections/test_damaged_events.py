"""An event changed on disk stops the read model instead of entering it.

Read models fold what they read from storage only after checking it against
the hash chain: an event changed on disk, whether it still decodes (a letter
of a job id changed) or not, would otherwise be folded as if it had been
written so, or skipped, silently dropping an acknowledged job.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from eventlog import CorruptLogError, EventLog, LmdbStorage
from eventlog.vocabulary.jobs import JobStarted, job_stream
from projections.jobs import JobsProjection
from projections.runner import ProjectionRunner, fold_until
from runtime.listen import sole_error
from tests.eventlog.support import flip_byte, raw_get, running_log, u64
from tests.projections.recorded import job_event, requested


def message(log_dir: Path) -> str:
    """The error for the second event's changed bytes."""
    return (
        f"{log_dir}: the stored log is damaged (event 2: stored hash does not "
        "match the event's bytes); matrix-runtime verify names the first "
        "damaged position"
    )


@pytest.fixture(params=[0xFF, 0x20], ids=["not-utf8", "other-letter"])
def damaged_log(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """Three job events; one byte of the second's job id changed in place."""
    path = tmp_path / "log"

    async def write() -> None:
        async with running_log(LmdbStorage(path)) as event_log:
            for job_id in ("job_a", "job_b"):
                await event_log.append(
                    job_stream(job_id), [job_event(requested(job_id))]
                )
            await event_log.append(job_stream("job_a"), [job_event(JobStarted())])

    trio.run(write)
    record = raw_get(path, b"log", u64(2))
    assert record is not None
    flip_byte(path, 2, record.rindex(b"job_b") + 2, request.param)
    return path


def test_runner_stops_at_an_event_changed_on_disk(damaged_log: Path) -> None:
    """The rebuild raises at the changed event rather than folding past it."""

    async def rebuild() -> None:
        async with running_log(LmdbStorage(damaged_log)) as event_log:
            runner = ProjectionRunner(event_log, JobsProjection())
            async with trio.open_nursery() as nursery:
                await nursery.start(runner.run)

    with pytest.raises(BaseExceptionGroup) as caught:
        trio.run(rebuild)

    error = sole_error(caught.value, CorruptLogError)
    assert str(error) == message(damaged_log)


def test_fold_until_stops_at_an_event_changed_on_disk(damaged_log: Path) -> None:
    """Looking back in time over damage fails the same way."""

    async def look_back() -> None:
        storage = LmdbStorage(damaged_log, readonly=True)
        try:
            await fold_until(EventLog(storage), JobsProjection(), 3)
        finally:
            storage.close()

    with pytest.raises(CorruptLogError) as caught:
        trio.run(look_back)

    assert str(caught.value) == message(damaged_log)
