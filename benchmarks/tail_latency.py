"""Latency from a durable append to live subscribers tailing the log.

One producer appends ``events`` single-event appends back to back; each of
``subscribers`` tasks follows the log with ``EventLog.tail``. Two latencies
per event and subscriber, both ending when ``tail`` yields it:

- ``from_commit``: from the moment LMDB's commit returned in the writer's
  worker thread (recorded by a thin ``LmdbStorage`` subclass), so it holds
  the hand-off back to trio, the ring, the wake-up and the scheduling;
- ``from_append``: from just before ``append`` was called, so it also holds
  queueing and the durable flush itself.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import trio
import trio.testing

from benchmarks.support import Figure, fresh_data_dir, percentile, sample_event
from eventlog import EventLog, LmdbStorage
from eventlog.batch import AppendRequest, BatchPlan

WAIT_SECONDS = 60.0


class _TimedStorage(LmdbStorage):
    """Records when each position's commit returned."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.committed_at: dict[int, float] = {}

    def commit(
        self,
        requests: list[AppendRequest],
        checkpoints: Mapping[str, int],
        now_ns: int,
    ) -> BatchPlan:
        plan = super().commit(requests, checkpoints, now_ns)
        returned = time.perf_counter()
        for event in plan.events:
            self.committed_at[event.position] = returned
        return plan


def measure_tail_latency(subscribers: int, events: int) -> list[Figure]:
    """p50 and p99 in milliseconds, over every (event, subscriber) pair."""
    with fresh_data_dir() as path:
        storage = _TimedStorage(path)
        try:
            appended_at, received = trio.run(_run, storage, subscribers, events)
        finally:
            storage.close()

    assert len(received) == subscribers * events
    from_commit = sorted((t - storage.committed_at[p]) * 1000.0 for p, t in received)
    from_append = sorted((t - appended_at[p]) * 1000.0 for p, t in received)
    name = f"tail.subscribers_{subscribers}"
    return [
        Figure(f"{name}.from_commit.p50", percentile(from_commit, 0.50), "ms", False),
        Figure(f"{name}.from_commit.p99", percentile(from_commit, 0.99), "ms", False),
        Figure(f"{name}.from_append.p50", percentile(from_append, 0.50), "ms", False),
        Figure(f"{name}.from_append.p99", percentile(from_append, 0.99), "ms", False),
    ]


async def _run(
    storage: LmdbStorage, subscribers: int, events: int
) -> tuple[dict[int, float], list[tuple[int, float]]]:
    log = EventLog(storage)
    appended_at: dict[int, float] = {}
    received: list[tuple[int, float]] = []
    start = log.head
    last = start + events

    async with trio.open_nursery() as nursery:
        await nursery.start(log.run)
        with trio.fail_after(WAIT_SECONDS):
            async with trio.open_nursery() as tailers:
                for _ in range(subscribers):
                    tailers.start_soon(_subscribe, log, start, last, received)
                # Let every subscriber reach its wait before the first append.
                await trio.testing.wait_all_tasks_blocked()
                stream = "job-latency"
                for _ in range(events):
                    event = sample_event()
                    appended_at[log.head + 1] = time.perf_counter()
                    await log.append(stream, [event])
        log.close()
    return appended_at, received


async def _subscribe(
    log: EventLog, after: int, last: int, received: list[tuple[int, float]]
) -> None:
    async for events in log.tail(after):
        now = time.perf_counter()
        received.extend((event.position, now) for event in events)
        if events[-1].position >= last:
            return
