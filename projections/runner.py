"""Keeping a projection current: restore, catch up, tail, snapshot, wait.

A :class:`ProjectionRunner` is the only writer of its projection's state.
It restores the last valid snapshot, folds the log from there, then follows
the log's tail for as long as it runs. Readers use :attr:`~ProjectionRunner.state`
directly, and :meth:`~ProjectionRunner.wait_for` to read their own writes.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Final, Generic

import trio

from eventlog import EventLog, RecordedEvent
from projections.base import Projection, S, apply_event
from projections.errors import (
    PositionOutOfRangeError,
    ProjectionLagError,
    SnapshotStoreError,
)
from projections.snapshots import Snapshot, SnapshotStore

SNAPSHOT_EVERY: Final = 10_000
SNAPSHOT_INTERVAL: Final = 5.0
SAVE_ON_EXIT_TIMEOUT: Final = 10.0
TAIL_PAGE: Final = 1024

log = logging.getLogger(__name__)


class ProjectionRunner(Generic[S]):
    """Folds the log into one projection's state and keeps it current.

    Run it in a nursery; it is caught up when ``start`` returns::

        runner = ProjectionRunner(event_log, JobsProjection(), snapshots)
        await nursery.start(runner.run)

    Attributes:
        applied: Events folded by this runner since it started (a restored
            snapshot's events are not counted).
        skipped: Events whose ``apply`` raised; logged and left out.
        restored_from: The snapshot position the runner resumed from, 0 when
            it folded from position 1.
    """

    def __init__(
        self,
        log: EventLog,
        projection: Projection[S],
        snapshots: SnapshotStore | None = None,
        snapshot_every: int = SNAPSHOT_EVERY,
        snapshot_interval: float = SNAPSHOT_INTERVAL,
    ) -> None:
        """Prepare a runner; nothing is read until :meth:`run`.

        Args:
            log: The event log to fold.
            projection: The read model.
            snapshots: Where to keep snapshots; None folds from position 1 on
                every start.
            snapshot_every: Save a snapshot after this many new events.
            snapshot_interval: Save a snapshot after this many seconds when
                any event arrived since the last one.
        """
        if snapshot_every < 1 or snapshot_interval <= 0:
            raise ValueError("snapshot_every and snapshot_interval must be positive")
        self._log = log
        self._projection = projection
        self._snapshots = snapshots
        self._snapshot_every = snapshot_every
        self._snapshot_interval = snapshot_interval
        self._state = projection.initial()
        self._position = 0
        self._last_event_id = ""
        self._saved_position = 0
        self._advanced = trio.Event()
        self._snapshot_due = trio.Event()
        self._save_lock = trio.Lock()
        self._stopped = False
        self.applied = 0
        self.skipped = 0
        self.restored_from = 0

    @property
    def name(self) -> str:
        """The projection's name."""
        return self._projection.name

    @property
    def state(self) -> S:
        """The current state; it changes in place as events arrive."""
        return self._state

    @property
    def position(self) -> int:
        """The last log position folded into :attr:`state`."""
        return self._position

    @property
    def saved_position(self) -> int:
        """The position of the last snapshot saved or restored (0 when none)."""
        return self._saved_position

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Restore, catch up to the head as it is now, then follow the log forever.

        ``task_status.started()`` is called once the state covers every event
        committed before this call. On exit (cancellation included) the state
        is saved as a snapshot.

        Raises:
            eventlog.LogClosedError: the log was closed while the runner was
                waiting for new events.
        """
        self._stopped = False
        try:
            await self._restore()
            async with trio.open_nursery() as nursery:
                if self._snapshots is not None:
                    nursery.start_soon(self._save_periodically)
                await self._follow(task_status)
        finally:
            self._stopped = True
            self._wake_waiters()
            if self._snapshots is not None:
                # Shielded so a cancelled runner still records how far it got
                # and the next start skips that replay; bounded so a stuck disk
                # cannot hold up shutdown for good.
                with trio.move_on_after(SAVE_ON_EXIT_TIMEOUT, shield=True):
                    await self._try_save()

    # The bound is part of read-your-writes itself: a handler must answer
    # "not yet" instead of waiting on a stalled projection for ever.
    async def wait_for(
        self,
        position: int,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        """Return once the state includes the event at ``position``.

        A command handler appends, then waits for the position it got before
        it answers, so the next read sees its write.

        Raises:
            ProjectionLagError: ``timeout`` seconds passed first, or the
                runner stopped before reaching ``position``.
        """
        if position <= self._position:
            return
        with trio.move_on_after(timeout):
            while position > self._position:
                if self._stopped:
                    raise ProjectionLagError(
                        f"projection {self.name!r} stopped at position "
                        f"{self._position}, before reaching {position}",
                        name=self.name,
                        wanted=position,
                        reached=self._position,
                    )
                # One event per batch wakes every waiter; each re-checks its
                # own position, so there is no polling and no per-waiter state.
                await self._advanced.wait()
            return
        raise ProjectionLagError(
            f"projection {self.name!r} did not reach position {position} within "
            f"{timeout:g} s (it is at {self._position})",
            name=self.name,
            wanted=position,
            reached=self._position,
        )

    async def save_snapshot(self) -> int:
        """Save the current state as a snapshot now, unless it is already saved.

        Returns:
            The position the stored snapshot is at.

        Raises:
            projections.SnapshotStoreError: the snapshot could not be written.
        """
        store = self._snapshots
        if store is None:
            raise RuntimeError("this runner has no snapshot store")
        async with self._save_lock:
            if self._position == self._saved_position:
                return self._saved_position
            # Encoded here, on the trio thread, between two batches: the state
            # and the position captured belong together. Only the write runs in
            # a thread, while the runner keeps folding.
            with _gc_paused():
                data = self._projection.encode(self._state)
            snapshot = Snapshot(
                position=self._position,
                event_id=self._last_event_id,
                version=self._projection.version,
                state=data,
            )
            await trio.to_thread.run_sync(store.save, self.name, snapshot)
            self._saved_position = snapshot.position
            log.debug(
                "projection snapshot saved name=%s position=%s bytes=%s",
                self.name,
                snapshot.position,
                len(snapshot.state),
            )
            return snapshot.position

    # -- private helpers ----------------------------------------------------

    async def _restore(self) -> None:
        store = self._snapshots
        if store is None:
            return
        try:
            snapshot = await trio.to_thread.run_sync(store.load, self.name)
        except SnapshotStoreError as exc:
            # Snapshots only save time: without one the log still gives the
            # exact state, so fold it all rather than refuse to start.
            log.warning(
                "projection snapshot unavailable name=%s error=%s", self.name, exc
            )
            return
        if snapshot is None:
            return
        state = await self._check_snapshot(snapshot)
        if state is None:
            return

        self._state = state
        self._position = snapshot.position
        self._last_event_id = snapshot.event_id
        self._saved_position = snapshot.position
        self.restored_from = snapshot.position
        log.info(
            "projection restored name=%s position=%s", self.name, snapshot.position
        )

    async def _check_snapshot(self, snapshot: Snapshot) -> S | None:
        """The snapshot's state if it belongs to this log and build, else None."""
        reason = ""
        head = self._log.head
        if snapshot.version != self._projection.version:
            reason = (
                f"format version {snapshot.version}, "
                f"expected {self._projection.version}"
            )
        elif snapshot.position > head:
            reason = f"checkpoint is past the log head {head}"
        elif snapshot.position > 0:
            # Positions alone cannot tell a restored backup or a new data
            # directory from the log the snapshot was taken of; the event id
            # at the checkpoint can.
            event = await self._log.read(snapshot.position)
            if event is None or event.event_id != snapshot.event_id:
                reason = "the log holds another event at the checkpoint"
        if not reason:
            try:
                with _gc_paused():
                    return self._projection.decode(snapshot.state)
            except Exception as exc:
                reason = f"state does not decode: {exc}"
        log.warning(
            "projection snapshot ignored name=%s position=%s reason=%s",
            self.name,
            snapshot.position,
            reason,
        )
        return None

    async def _follow(self, task_status: trio.TaskStatus[None]) -> None:
        target = self._log.head
        caught_up = self._position >= target
        if caught_up:
            task_status.started()
        # The tail holds no resources, so leaving it on cancellation needs no
        # explicit close: trio finalizes the abandoned generator.
        # Checked against the chain: an event changed on disk would otherwise
        # be folded as if it had been written so, or skipped without a word.
        async for events in self._log.tail(
            after=self._position, batch_limit=TAIL_PAGE, checked=True
        ):
            self._apply_batch(events)
            if not caught_up and self._position >= target:
                caught_up = True
                log.info(
                    "projection caught up name=%s position=%s applied=%s",
                    self.name,
                    self._position,
                    self.applied,
                )
                task_status.started()
            # While catching up from memory the tail never blocks; this keeps
            # the runner cancellable and fair to other tasks.
            await trio.lowlevel.checkpoint()

    def _apply_batch(self, events: Sequence[RecordedEvent]) -> None:
        projection = self._projection
        state = self._state
        for event in events:
            state, ok = apply_event(projection, state, event)
            if ok:
                self.applied += 1
            else:
                self.skipped += 1
        self._state = state
        self._position = events[-1].position
        self._last_event_id = events[-1].event_id
        self._wake_waiters()
        if self._position - self._saved_position >= self._snapshot_every:
            self._snapshot_due.set()

    def _wake_waiters(self) -> None:
        self._advanced.set()
        self._advanced = trio.Event()

    async def _save_periodically(self) -> None:
        while True:
            with trio.move_on_after(self._snapshot_interval):
                await self._snapshot_due.wait()
            self._snapshot_due = trio.Event()
            if not await self._try_save():
                # Every batch past snapshot_every asks again; a store that keeps
                # failing is retried once per interval, not once per batch.
                await trio.sleep(self._snapshot_interval)

    async def _try_save(self) -> bool:
        try:
            await self.save_snapshot()
        except SnapshotStoreError as exc:
            # A missing snapshot only costs replay time on the next start;
            # the read model itself stays correct, so keep serving it.
            log.warning("projection snapshot failed name=%s error=%s", self.name, exc)
            return False
        return True


async def fold_until(log: EventLog, projection: Projection[S], position: int) -> S:
    """The state right after the event at ``position``, folded from position 1.

    This answers "what did it look like at event N". Position 0 gives the
    initial state.

    Raises:
        PositionOutOfRangeError: ``position`` is negative or past the head.
    """
    head = log.head
    if position < 0 or position > head:
        raise PositionOutOfRangeError(
            f"position {position} is outside the log (1 to {head})"
        )
    state = projection.initial()
    cursor = 0
    while cursor < position:
        events = await log.read_all(
            after=cursor, limit=min(TAIL_PAGE, position - cursor), checked=True
        )
        if not events:
            raise PositionOutOfRangeError(
                f"the log has no event after position {cursor}"
            )
        for event in events:
            state, _ = apply_event(projection, state, event)
        cursor = events[-1].position
        await trio.lowlevel.checkpoint()
    return state


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off for one synchronous step.

    Decoding a snapshot allocates a container per payload, result and tool;
    each allocation burst triggers collections that rescan the whole heap,
    which measured about two to three times the decode itself. The step has
    no await inside, so nothing else runs while the collector is held.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
