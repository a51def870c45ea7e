"""A live fold, a rebuild from position 1 and a snapshot restore always agree."""

from __future__ import annotations

import tempfile
from pathlib import Path

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlog import EventLog, MemoryStorage
from projections.jobs import JobsProjection
from projections.runner import ProjectionRunner, fold_until
from projections.snapshots import SnapshotStore
from tests.eventlog.support import running_log
from tests.strategies import JobAppend, job_appends

PROJECTION = JobsProjection()


async def append_all(log: EventLog, appends: list[JobAppend]) -> None:
    for append in appends:
        await log.append(append.stream, append.events)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(appends=job_appends(), split=st.integers(min_value=0, max_value=20))
async def test_jobs_live_fold_equals_rebuild_and_snapshot_restore(
    appends: list[JobAppend], split: int
) -> None:
    """Following the appends, rebuilding, and restoring mid-way give one state."""
    first, rest = appends[:split], appends[split:]

    with tempfile.TemporaryDirectory() as directory:
        store = SnapshotStore(Path(directory) / "projections")
        async with running_log(MemoryStorage()) as log:
            live = ProjectionRunner(
                log, JobsProjection(), store, snapshot_interval=3600
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(live.run)
                await append_all(log, first)
                await live.wait_for(log.head)
                middle = await live.save_snapshot()
                await append_all(log, rest)
                await live.wait_for(log.head)

                rebuilt = ProjectionRunner(log, JobsProjection())
                await nursery.start(rebuilt.run)
                restored = ProjectionRunner(log, JobsProjection(), store)
                await nursery.start(restored.run)
                folded = await fold_until(log, JobsProjection(), log.head)
                head = log.head
                nursery.cancel_scope.cancel()
        store.close()

    assert live.position == rebuilt.position == restored.position == head
    assert rebuilt.state == live.state
    assert folded == live.state
    assert restored.state == live.state
    assert PROJECTION.encode(restored.state) == PROJECTION.encode(live.state)
    assert restored.restored_from == middle
    assert restored.applied + restored.skipped == head - middle
    assert rebuilt.skipped == live.skipped
