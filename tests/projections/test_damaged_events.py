"""An event changed on disk stops the read model instead of vanishing from it.

A projection skips a valid event it cannot apply. An event whose stored
bytes no longer match their hash is damage: folding past it would silently
drop an acknowledged job, so the runner and ``fold_until`` raise instead.
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

MESSAGE = (
    "the stored event at position 2 no longer matches its hash: it was changed "
    "after it was written; matrix-runtime verify names the first damaged position"
)


@pytest.fixture
def damaged_log(tmp_path: Path) -> Path:
    """Three job events whose second's job id has a byte that is not UTF-8."""
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
    flip_byte(path, 2, record.rindex(b"job_b") + 2)
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
    assert str(error) == MESSAGE


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

    assert str(caught.value) == MESSAGE
