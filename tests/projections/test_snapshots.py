"""Snapshots: stored durably, restored after a restart, ignored when stale."""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import lmdb
import pytest
import trio

from eventlog import EventLog, LmdbStorage, MemoryStorage, NewEvent
from eventlog.vocabulary.jobs import JobFinished, JobStarted, JobStep, job_stream
from projections.errors import SnapshotStoreError
from projections.jobs import JobsProjection, JobsState
from projections.runner import ProjectionRunner, fold_until
from projections.snapshots import Snapshot, SnapshotStore
from tests.eventlog.support import running_log
from tests.projections.recorded import job_event, requested

PROJECTION = JobsProjection()


class JobsProjectionV2(JobsProjection):
    """The same fold under a newer format version."""

    version = 2


class RecordingStore(SnapshotStore):
    """A snapshot store that tells the test each position it saved."""

    def __init__(self, path: Path, *, fail: bool = False) -> None:
        super().__init__(path)
        self.saves: list[int] = []
        self.fail = fail
        self._changed = trio.Event()

    def save(self, name: str, snapshot: Snapshot) -> None:
        if not self.fail:
            super().save(name, snapshot)
        trio.from_thread.run_sync(self._record, snapshot.position)
        if self.fail:
            raise SnapshotStoreError("cannot save: disk full")

    async def wait_saved(self, position: int) -> None:
        with trio.fail_after(5):
            while not self.saves or self.saves[-1] < position:
                await self._changed.wait()

    def _record(self, position: int) -> None:
        self.saves.append(position)
        self._changed.set()
        self._changed = trio.Event()


def open_log(path: Path | None = None) -> AbstractAsyncContextManager[EventLog]:
    return running_log(MemoryStorage() if path is None else LmdbStorage(path))


async def append(log: EventLog, job_id: str, *events: NewEvent) -> int:
    result = await log.append(job_stream(job_id), list(events))
    return result.positions[-1]


async def append_job(log: EventLog, job_id: str) -> int:
    await append(log, job_id, job_event(requested(job_id)))
    await append(log, job_id, job_event(JobStarted()))
    return await append(log, job_id, job_event(JobStep(step="ready", status="ok")))


def ignored_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "projections.runner" and record.levelno == logging.WARNING
    ]


async def test_runner_resumes_from_its_snapshot_after_a_restart(tmp_path: Path) -> None:
    """After a restart the runner folds only the events after its snapshot."""
    async with open_log(tmp_path / "log") as log:
        store = SnapshotStore(tmp_path / "projections")
        first = ProjectionRunner(log, JobsProjection(), store)
        async with trio.open_nursery() as nursery:
            await nursery.start(first.run)
            await append_job(log, "job_a")
            head = await append(log, "job_b", job_event(requested("job_b")))
            await first.wait_for(head)
            nursery.cancel_scope.cancel()
        store.close()

    async with open_log(tmp_path / "log") as log:
        store = SnapshotStore(tmp_path / "projections")
        second = ProjectionRunner(log, JobsProjection(), store)
        async with trio.open_nursery() as nursery:
            await nursery.start(second.run)
            restored = (
                second.restored_from,
                second.applied,
                PROJECTION.encode(second.state),
            )
            await append(log, "job_a", job_event(JobFinished(status="cancelled")))
            head = await append(log, "job_b", job_event(JobStarted()))
            await second.wait_for(head)
            nursery.cancel_scope.cancel()
        rebuilt = await fold_until(log, JobsProjection(), head)
        store.close()

    assert (first.saved_position, first.applied) == (4, 4)
    assert restored == (4, 0, PROJECTION.encode(first.state))
    assert (second.applied, second.position, second.saved_position) == (2, 6, 6)
    assert second.state == rebuilt
    assert rebuilt.jobs["job_a"].status == "cancelled"


async def test_runner_saves_a_snapshot_every_n_events(tmp_path: Path) -> None:
    """snapshot_every events after the last snapshot trigger the next one."""
    store = RecordingStore(tmp_path / "projections")
    async with open_log() as log:
        runner = ProjectionRunner(
            log, JobsProjection(), store, snapshot_every=3, snapshot_interval=3600
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(runner.run)
            await append(log, "job_a", job_event(requested("job_a")))
            await append(log, "job_a", job_event(JobStarted()))
            await runner.wait_for(2)
            before = list(store.saves)
            await append(log, "job_a", job_event(JobStep(step="x", status="ok")))
            await store.wait_saved(3)
            stored = await trio.to_thread.run_sync(store.load, "jobs")
            nursery.cancel_scope.cancel()
    store.close()

    assert before == []
    assert stored is not None
    assert (stored.position, stored.version) == (3, 1)
    assert PROJECTION.decode(stored.state) == runner.state


async def test_runner_saves_an_idle_snapshot_after_the_interval(tmp_path: Path) -> None:
    """A few events and then silence are saved once the interval passes."""
    store = RecordingStore(tmp_path / "projections")
    async with open_log() as log:
        runner = ProjectionRunner(
            log, JobsProjection(), store, snapshot_every=1000, snapshot_interval=0.05
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(runner.run)
            await append(log, "job_a", job_event(requested("job_a")))
            await store.wait_saved(1)
            nursery.cancel_scope.cancel()
    store.close()

    assert store.saves == [1]


async def test_runner_keeps_folding_when_a_snapshot_fails(tmp_path: Path) -> None:
    """A failing snapshot write is retried after the interval or at exit only."""
    store = RecordingStore(tmp_path / "projections", fail=True)
    async with open_log() as log:
        runner = ProjectionRunner(
            log, JobsProjection(), store, snapshot_every=1, snapshot_interval=3600
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(runner.run)
            await append(log, "job_a", job_event(requested("job_a")))
            await store.wait_saved(1)
            position = await append(log, "job_a", job_event(JobStarted()))
            await runner.wait_for(position)
            status = runner.state.jobs["job_a"].status
            nursery.cancel_scope.cancel()
    store.close()

    assert (status, runner.saved_position) == ("running", 0)
    assert store.saves == [1, 2]


async def test_runner_rebuilds_when_the_snapshot_version_differs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A snapshot of another format version is ignored and replaced."""
    store = SnapshotStore(tmp_path / "projections")
    async with open_log() as log:
        head = await append_job(log, "job_a")
        old = ProjectionRunner(log, JobsProjection(), store)
        async with trio.open_nursery() as nursery:
            await nursery.start(old.run)
            await old.save_snapshot()
            newer = ProjectionRunner(log, JobsProjectionV2(), store)
            await nursery.start(newer.run)
            nursery.cancel_scope.cancel()
    stored = store.load("jobs")
    store.close()

    assert (newer.restored_from, newer.applied, newer.position) == (0, head, head)
    assert newer.state == old.state
    assert stored is not None
    assert (stored.version, stored.position) == (2, head)
    assert ignored_reasons(caplog) == [
        "projection snapshot ignored name=jobs position=3 "
        "reason=format version 1, expected 2"
    ]


async def test_runner_rebuilds_when_the_snapshot_is_past_the_head(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A checkpoint beyond the log's head belongs to another log; it is ignored."""
    store = SnapshotStore(tmp_path / "projections")
    phantom = PROJECTION.encode(JobsState(jobs={}))
    store.save("jobs", Snapshot(position=50, event_id="e", version=1, state=phantom))
    async with open_log() as log:
        head = await append_job(log, "job_a")
        runner = ProjectionRunner(log, JobsProjection(), store)
        async with trio.open_nursery() as nursery:
            await nursery.start(runner.run)
            nursery.cancel_scope.cancel()
    store.close()

    assert (runner.restored_from, runner.applied) == (0, head)
    assert list(runner.state.jobs) == ["job_a"]
    assert ignored_reasons(caplog) == [
        "projection snapshot ignored name=jobs position=50 "
        "reason=checkpoint is past the log head 3"
    ]


async def test_runner_rebuilds_when_the_log_holds_another_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A checkpoint whose event id differs from the log's is ignored."""
    store = SnapshotStore(tmp_path / "projections")
    empty = PROJECTION.encode(JobsState())
    other_id = "0" * 32
    store.save("jobs", Snapshot(position=2, event_id=other_id, version=1, state=empty))
    async with open_log() as log:
        head = await append_job(log, "job_a")
        runner = ProjectionRunner(log, JobsProjection(), store)
        async with trio.open_nursery() as nursery:
            await nursery.start(runner.run)
            nursery.cancel_scope.cancel()
    store.close()

    assert (runner.restored_from, runner.applied) == (0, head)
    assert runner.state.jobs["job_a"].ready is True
    assert ignored_reasons(caplog) == [
        "projection snapshot ignored name=jobs position=2 "
        "reason=the log holds another event at the checkpoint"
    ]


async def test_runner_rebuilds_when_the_state_does_not_decode(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A snapshot whose state bytes are not a state of this version is ignored."""
    store = SnapshotStore(tmp_path / "projections")
    async with open_log() as log:
        head = await append_job(log, "job_a")
        event = await log.read(head)
        assert event is not None
        snapshot = Snapshot(
            position=head, event_id=event.event_id, version=1, state=b"\x93"
        )
        store.save("jobs", snapshot)
        runner = ProjectionRunner(log, JobsProjection(), store)
        async with trio.open_nursery() as nursery:
            await nursery.start(runner.run)
            nursery.cancel_scope.cancel()
    store.close()

    assert (runner.restored_from, runner.applied) == (0, head)
    assert ignored_reasons(caplog) == [
        "projection snapshot ignored name=jobs position=3 "
        "reason=state does not decode: Expected `object`, got `array`"
    ]


class UnreadableStore(SnapshotStore):
    """A snapshot store whose environment fails every read."""

    def load(self, name: str) -> Snapshot | None:
        raise SnapshotStoreError(f"cannot read the snapshot of projection {name!r}")


async def test_runner_rebuilds_when_snapshots_cannot_be_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A snapshot store that fails to read makes the runner fold from position 1."""
    store = UnreadableStore(tmp_path / "projections")
    async with open_log() as log:
        head = await append_job(log, "job_a")
        runner = ProjectionRunner(log, JobsProjection(), store)
        async with trio.open_nursery() as nursery:
            await nursery.start(runner.run)
            nursery.cancel_scope.cancel()
    store.close()

    assert (runner.restored_from, runner.applied, runner.saved_position) == (
        0,
        head,
        head,
    )
    assert ignored_reasons(caplog) == [
        "projection snapshot unavailable name=jobs error=cannot read the "
        "snapshot of projection 'jobs'"
    ]


def test_snapshot_store_keeps_snapshots_across_reopen(tmp_path: Path) -> None:
    """Saved snapshots survive closing and reopening; delete removes one."""
    snapshot = Snapshot(position=7, event_id="abc", version=3, state=b"state")
    store = SnapshotStore(tmp_path / "projections")
    store.save("jobs", snapshot)
    store.save("accounts", Snapshot(position=1, event_id="d", version=1, state=b""))
    store.close()

    reopened = SnapshotStore(tmp_path / "projections")
    loaded = reopened.load("jobs")
    deleted = reopened.delete("accounts")
    missing = reopened.load("accounts")
    deleted_again = reopened.delete("accounts")
    reopened.close()

    assert (loaded, deleted, missing, deleted_again) == (snapshot, True, None, False)


def test_snapshot_store_treats_an_unreadable_record_as_absent(tmp_path: Path) -> None:
    """A record that is not a snapshot loads as None, so the runner rebuilds."""
    path = tmp_path / "projections"
    SnapshotStore(path).close()
    env = lmdb.open(str(path), max_dbs=1)
    with env.begin(write=True, db=env.open_db(b"snapshots")) as txn:
        txn.put(b"jobs", b"not msgpack \xc1")
    env.close()
    store = SnapshotStore(path)

    loaded = store.load("jobs")
    store.close()

    assert loaded is None


def test_snapshot_store_on_a_file_is_a_clear_error(tmp_path: Path) -> None:
    """A path that is a file cannot hold snapshots; the error says it is safe."""
    path = tmp_path / "projections"
    path.write_text("x")

    with pytest.raises(SnapshotStoreError) as raised:
        SnapshotStore(path)

    assert str(raised.value) == (
        f"cannot open the projection snapshots in {path}: [Errno 17] File exists: "
        f"'{path}'; the directory holds only derived data and may be deleted"
    )
