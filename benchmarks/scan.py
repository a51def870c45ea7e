"""Full scan and decode rate through the log's own read path.

The log is first filled with ``count`` events in big appends. It is then
reopened (so the in-memory ring is empty and every page comes from LMDB)
and followed from position 0 to the head with ``EventLog.tail``: short read
transactions in worker threads, every envelope decoded into a
``RecordedEvent``. A projection rebuild reads the same way and also checks
each record against the hash chain (``checked``), which is measured too.
The same pages are also read with ``LmdbStorage.read_log`` straight from
this thread. The file is in the page cache by then, so this is the CPU
cost of reading, not the disk's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import trio

from benchmarks.support import fresh_data_dir, open_storage, sample_event
from eventlog import EventLog, LmdbStorage, NewEvent

WRITE_APPEND_EVENTS = 1000
WRITE_PRODUCERS = 4


@contextlib.contextmanager
def filled_log(count: int) -> Iterator[tuple[Path, float]]:
    """A data directory holding ``count`` events, and the write rate in events/s."""
    with fresh_data_dir() as path:
        with open_storage(path) as storage:
            started = time.perf_counter()
            trio.run(_fill, storage, count)
            rate = count / (time.perf_counter() - started)
        yield path, rate


def measure_scan(path: Path, page: int, *, checked: bool = False) -> tuple[int, float]:
    """Tail the whole log in batches of ``page``; return (events, events/s)."""
    with open_storage(path) as storage:
        return trio.run(_scan, storage, page, checked)


def measure_read_log(path: Path, page: int) -> tuple[int, float]:
    """Page through the storage's ``read_log`` in this thread, without trio.

    The same reads and decoding as a tail, minus the worker-thread hop per
    page and the event loop: the floor the tail is measured against.
    """
    with open_storage(path) as storage:
        head, _ = storage.head()
        seen = 0
        started = time.perf_counter()
        while seen < head:
            seen += len(storage.read_log(seen, page, head))
        elapsed = time.perf_counter() - started
    return seen, seen / elapsed


async def _fill(storage: LmdbStorage, count: int) -> None:
    log = EventLog(storage)
    template = sample_event()
    per_producer = -(-count // WRITE_PRODUCERS)
    async with trio.open_nursery() as nursery:
        await nursery.start(log.run)
        async with trio.open_nursery() as writers:
            for index in range(WRITE_PRODUCERS):
                quota = min(per_producer, count - index * per_producer)
                writers.start_soon(_write, log, index, quota, template)
        log.close()


async def _write(log: EventLog, index: int, quota: int, template: NewEvent) -> None:
    stream = f"job-scan-{index}"
    while quota > 0:
        size = min(WRITE_APPEND_EVENTS, quota)
        # Same payload bytes, a fresh id per event.
        events = [
            NewEvent(template.type, template.data, workspace=template.workspace)
            for _ in range(size)
        ]
        await log.append(stream, events)
        quota -= size


async def _scan(storage: LmdbStorage, page: int, checked: bool) -> tuple[int, float]:
    log = EventLog(storage)
    head = log.head
    seen = 0
    started = time.perf_counter()
    async for events in log.tail(0, batch_limit=page, checked=checked):
        seen += len(events)
        if events[-1].position >= head:
            break
    elapsed = time.perf_counter() - started
    assert seen == head
    return seen, seen / elapsed
