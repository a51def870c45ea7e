"""The event log as the rest of the product sees it: append, read, tail.

One writer task owns the write path. Callers queue append requests; the
writer takes everything waiting (bounded by count and bytes), commits it as
one transaction in one worker thread, publishes the new events to an
in-memory ring, wakes tailers, and only then acknowledges each request.
There is no artificial delay: batches form while the previous commit flushes.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

import msgspec
import trio
from outcome import Error, Value
from trio.lowlevel import current_task, reschedule, wait_task_rescheduled

from eventlog.batch import AppendRequest
from eventlog.envelope import (
    AppendResult,
    Expected,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
)
from eventlog.errors import (
    EventLogError,
    InvalidAppendError,
    LogClosedError,
    LogReadOnlyError,
    damaged,
)
from eventlog.ring import EventRing
from eventlog.storage import Storage
from eventlog.writer_thread import WriterThread

MAX_BATCH_EVENTS: Final = 2048
MAX_BATCH_BYTES: Final = 4 << 20
MAX_PENDING_EVENTS: Final = 65536
# LMDB keys are at most 511 bytes and the stream index key is the name, a
# NUL and an 8-byte version: a longer name would fail its whole batch.
MAX_STREAM_NAME_BYTES: Final = 502
READ_PAGE: Final = 512
CATCH_UP_PAGE: Final = 4096
RING_SIZE: Final = 65536
READONLY_POLL_SECONDS: Final = 0.2

log = logging.getLogger(__name__)

_raw_decoder = msgspec.msgpack.Decoder(msgspec.Raw)

T = TypeVar("T")


@dataclass(slots=True, eq=False)
class _Batch:
    """Requests committed together.

    Each append's task parks on its own request and is woken with its
    outcome; ``done`` fires once the whole batch has one, for checkpoints.
    """

    requests: list[AppendRequest] = field(default_factory=list)
    checkpoints: dict[str, int] = field(default_factory=dict)
    events: int = 0
    size: int = 0
    done: trio.Event = field(default_factory=trio.Event)


class EventLog:
    """Append-only, hash-chained, durable log with catch-up subscriptions.

    Use :meth:`run` inside a nursery for as long as the log is open::

        async with trio.open_nursery() as nursery:
            await nursery.start(log.run)
            ...
    """

    def __init__(self, storage: Storage, *, ring_size: int = RING_SIZE) -> None:
        self.storage = storage
        self._head, self._head_hash = storage.head()
        self._ring = EventRing(ring_size)
        self._head_moved = trio.Event()
        self._queue: deque[_Batch] = deque()
        self._work = trio.Event()
        self._space = trio.Event()
        self._pending_events = 0
        self._running = False
        self._closed = False
        self._read_limiter = trio.CapacityLimiter(8)
        self._writer: WriterThread | None = None
        self.commit_error: EventLogError | None = None
        """Why the last commit failed, until one succeeds again."""

    @property
    def head(self) -> int:
        """The last committed and published position."""
        if self.storage.readonly:
            self._head, self._head_hash = self.storage.head()
        return self._head

    @property
    def is_running(self) -> bool:
        """True while the writer task accepts and commits appends."""
        return self._running and not self._closed

    @property
    def head_hash(self) -> bytes:
        """The chain hash of the event at :attr:`head`."""
        return self._head_hash

    # -- writing -------------------------------------------------------------

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: Expected = ExpectedVersion.ANY,
    ) -> AppendResult:
        """Append ``events`` to ``stream`` atomically and durably.

        Returns only after the events are committed to storage.

        Raises:
            InvalidAppendError: bad stream name, no events, or bad ids.
            WrongExpectedVersionError: the stream is not at the expected version.
            IdempotencyConflictError: an event id is stored with other content.
            StorageFullError: the log is full; nothing was written.
            LogClosedError: the log is closed or its writer is not running.
        """
        size = _check_append(stream, events, expected_version)
        if self.storage.readonly:
            raise LogReadOnlyError("the log was opened read-only")
        if type(events) is not tuple:
            events = tuple(events)

        while self._pending_events >= MAX_PENDING_EVENTS and not self._closed:
            # Back-pressure: producers wait here while the writer catches up.
            await self._space.wait()
        batch = self._enqueue(size, len(events))
        request = AppendRequest(stream, events, expected_version, current_task())
        batch.requests.append(request)
        # The writer wakes this task with the append's outcome. Cancelling
        # the wait does not cancel the append: the request is already queued
        # and will be committed; only the acknowledgement is dropped, exactly
        # as if the caller had crashed after sending it.
        outcome: AppendResult = await wait_task_rescheduled(request.abandon)
        return outcome

    async def save_checkpoint(self, name: str, position: int) -> None:
        """Durably record that reader ``name`` has processed up to ``position``."""
        if not name or position < 0:
            raise ValueError("a checkpoint needs a name and a position >= 0")
        if len(name.encode()) > MAX_STREAM_NAME_BYTES:
            raise ValueError(
                f"a checkpoint name has at most {MAX_STREAM_NAME_BYTES} bytes"
            )
        batch = self._enqueue(0, 0)
        batch.checkpoints[name] = position
        await batch.done.wait()

    def _enqueue(self, size: int, count: int) -> _Batch:
        if self._closed or not self._running:
            raise LogClosedError("the event log is not running")
        batch = self._queue[-1] if self._queue else None
        if batch is None or (
            batch.events
            and (
                batch.events + count > MAX_BATCH_EVENTS
                or batch.size + size > MAX_BATCH_BYTES
            )
        ):
            # The open batch is full: later requests form the next one, so
            # one huge batch never delays the acknowledgements of the rest.
            batch = _Batch()
            self._queue.append(batch)
        batch.events += count
        batch.size += size
        self._pending_events += count
        self._work.set()
        return batch

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The writer task. Returns after :meth:`close` once the queue is drained."""
        if self.storage.readonly:
            raise LogReadOnlyError("the log was opened read-only")
        writer = WriterThread("event log writer") if self.storage.blocking else None
        if writer is not None:
            writer.start()
        self._writer = writer
        self._running = True
        task_status.started()
        try:
            while True:
                while self._queue:
                    await self._commit(self._queue.popleft())
                if self._closed:
                    return
                await self._work.wait()
                self._work = trio.Event()
        finally:
            self._running = False
            if writer is not None:
                # Every commit handed to it was awaited, so it is idle: this
                # returns at once.
                writer.stop()
                self._writer = None
            closed = LogClosedError("the event log was closed")
            while self._queue:
                batch = self._queue.popleft()
                for request in batch.requests:
                    request.fail(closed)
                batch.done.set()
            # Tailers parked at the head would otherwise wait for an event
            # that can no longer come; woken, they see the log is closed.
            self._head_moved.set()
            self._head_moved = trio.Event()

    async def _commit(self, batch: _Batch) -> None:
        now_ns = time.time_ns()
        storage, requests, checkpoints = self.storage, batch.requests, batch.checkpoints
        # What every request of the batch fails with unless the commit
        # returns: even a bug in a backend must not leave a caller parked.
        failure: EventLogError | None = EventLogError(
            "the event log stopped before this append was committed"
        )
        try:
            if self._writer is not None:
                # Not abandoned on cancel: the commit finishes and its outcome
                # is known even while the writer is being cancelled.
                plan = await self._writer.run(
                    lambda: storage.commit(requests, checkpoints, now_ns)
                )
            else:
                plan = storage.commit(requests, checkpoints, now_ns)
        except EventLogError as exc:
            log.error("event log commit failed: %s", exc)
            failure = exc
            self.commit_error = exc
        else:
            failure = None
            self.commit_error = None
            if plan.events:
                self._ring.extend(plan.events)
                self._head, self._head_hash = plan.head, plan.head_hash
                self._head_moved.set()
                self._head_moved = trio.Event()
        finally:
            # Wake each waiting caller with its outcome; this runs once per
            # append, so it is written out here rather than as a method call.
            for request in requests:
                waiter = request.waiter
                if waiter is not None:
                    request.waiter = None
                    if failure is not None:
                        request.result, request.error = None, failure
                    error = request.error
                    reschedule(
                        waiter,
                        Value(request.result) if error is None else Error(error),
                    )
            self._pending_events -= batch.events
            self._space.set()
            self._space = trio.Event()
            batch.done.set()

    def close(self) -> None:
        """Stop accepting appends; the writer commits what is queued and exits."""
        self._closed = True
        self._work.set()
        self._space.set()

    # -- reading -------------------------------------------------------------

    async def read(self, position: int) -> RecordedEvent | None:
        """The event at ``position``, or ``None`` past the head."""
        if position < 1 or position > self.head:
            return None
        events = await self.read_all(after=position - 1, limit=1)
        return events[0] if events else None

    async def read_all(
        self, after: int = 0, limit: int = READ_PAGE, *, checked: bool = False
    ) -> list[RecordedEvent]:
        """Events after global position ``after``, oldest first, at most ``limit``.

        With ``checked``, events read from storage are checked against the
        hash chain on the way (events still in memory were just committed).

        Raises:
            ValueError: ``after`` is negative.
            CorruptLogError: ``checked``, and a stored event fails the check.
        """
        _check_after(after)
        head = self.head
        cached = self._ring.slice(after, min(head, after + limit))
        if cached is not None:
            return cached
        read = self.storage.read_log_checked if checked else self.storage.read_log
        return await self._run_read(read, after, limit, head)

    async def read_stream(
        self, stream: str, from_version: int = 1, limit: int = READ_PAGE
    ) -> list[RecordedEvent]:
        """Events of ``stream`` from version ``from_version`` on, at most ``limit``."""
        return await self._run_read(
            self.storage.read_stream, stream, from_version, limit
        )

    async def stream_version(self, stream: str) -> int:
        """The stream's current version (0 when it has no events)."""
        return await self._run_read(self.storage.stream_version, stream)

    async def checkpoint(self, name: str) -> int:
        """The last saved checkpoint ``name`` (0 when none)."""
        return await self._run_read(self.storage.checkpoint, name)

    async def tail(
        self, after: int = 0, *, batch_limit: int = READ_PAGE, checked: bool = False
    ) -> AsyncIterator[list[RecordedEvent]]:
        """Yield every event after ``after`` in order, forever, in batches.

        Catches up from storage, then follows the ring as events commit. Never
        yields an event past the committed head, never skips or repeats one.
        With ``checked``, what comes from storage is checked against the hash
        chain, as :meth:`read_all` does.

        Raises:
            ValueError: ``after`` is negative or ``batch_limit`` below 1.
            LogClosedError: the log was closed while waiting for new events.
            CorruptLogError: ``checked``, and a stored event fails the check.
        """
        _check_after(after)
        if batch_limit < 1:
            raise ValueError(f"batch_limit must be at least 1, not {batch_limit}")
        # One read serves several batches when far behind: each storage page
        # costs a thread hop and a read transaction, so catching up in big
        # pages is several times faster than in small ones.
        page = max(batch_limit, CATCH_UP_PAGE)
        cursor = after
        while True:
            head = self.head
            if cursor >= head:
                await self._wait_past(cursor)
                continue
            # Live tailers find their events in the ring. Every tailer wakes
            # on each commit, so this path stays as short as it can be.
            events = self._ring.slice(cursor, min(head, cursor + page))
            if events is None:
                events = await self.read_all(after=cursor, limit=page, checked=checked)
            if len(events) <= batch_limit:
                if events:
                    cursor = events[-1].position
                    yield events
                continue
            for start in range(0, len(events), batch_limit):
                batch = events[start : start + batch_limit]
                cursor = batch[-1].position
                yield batch

    async def wait_for_events(
        self, after: int, limit: int = READ_PAGE
    ) -> list[RecordedEvent]:
        """Wait until something is committed after ``after``, then read it.

        A plain coroutine rather than a generator, so a caller may put it
        under ``trio.move_on_after`` (an SSE keepalive, say) and call it
        again after a timeout without losing its place.
        """
        while True:
            await self._wait_past(after)
            events = await self.read_all(after=after, limit=limit)
            if events:
                return events

    async def _wait_past(self, position: int) -> None:
        if self.storage.readonly:
            # No writer in this process: poll the head another process moves.
            while self.head <= position:  # noqa: ASYNC110
                await trio.sleep(READONLY_POLL_SECONDS)
            return
        while self._head <= position:
            if self._closed and not self._running:
                raise LogClosedError("the event log was closed")
            await self._head_moved.wait()

    async def check_intact(self, positions: Sequence[int]) -> None:
        """Raise if a stored event at one of ``positions`` was changed on disk.

        One storage read for them all, for readers that did not read through
        the chain (a stream's events are not adjacent in it).

        Raises:
            CorruptLogError: the first such event whose bytes no longer
                match their hash.
        """
        altered = await self._run_read(self.storage.first_altered, positions)
        if altered is not None:
            raise damaged(
                getattr(self.storage, "path", None),
                f"event {altered}: stored hash does not match the event's bytes",
            )

    async def _run_read(self, fn: Callable[..., T], *args: object) -> T:
        if not self.storage.blocking:
            return fn(*args)
        return await trio.to_thread.run_sync(fn, *args, limiter=self._read_limiter)


def _check_append(stream: str, events: Sequence[NewEvent], expected: Expected) -> int:
    """Refuse a malformed append; return the size of its payloads in bytes."""
    if not isinstance(stream, str) or not stream:
        raise InvalidAppendError("a stream name must be a non-empty string")
    if "\x00" in stream or len(stream.encode()) > MAX_STREAM_NAME_BYTES:
        raise InvalidAppendError(
            f"stream name must have no NUL and at most {MAX_STREAM_NAME_BYTES} bytes"
        )
    if not events:
        raise InvalidAppendError("an append needs at least one event")
    if not isinstance(expected, ExpectedVersion) and (
        not isinstance(expected, int) or isinstance(expected, bool) or expected < 0
    ):
        raise InvalidAppendError(
            "expected version must be ANY, NO_STREAM or a version >= 0, "
            f"not {expected!r}"
        )
    size = 0
    for event in events:
        if not event.type:
            raise InvalidAppendError("every event needs a type")
        try:
            # The envelope embeds ``data`` verbatim: anything but exactly one
            # msgpack value would make the stored record undecodable.
            _raw_decoder.decode(event.data)
        except (msgspec.DecodeError, TypeError):
            raise InvalidAppendError(
                f"event {event.event_id} data is not one msgpack value"
            ) from None
        size += len(event.data)
    return size


def _check_after(after: int) -> None:
    if after < 0:
        raise ValueError(f"after must be a position >= 0, not {after}")
