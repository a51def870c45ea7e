"""Durable append throughput through ``EventLog`` on ``LmdbStorage``.

``producers`` trio tasks each append one event per ``append`` call, in a
loop, to their own stream, until the time is up. An event counts once its
``append`` returned, that is once the group commit holding it was flushed.
The writer's average batch size (events per LMDB write transaction) is
reported too, so the raw LMDB baseline can write the same batches, and so is
the process's CPU time (user and system, every thread) per event, which a
busy machine distorts less than the rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import trio

from benchmarks.support import (
    Figure,
    commits_so_far,
    fresh_data_dir,
    open_storage,
    sample_event,
)
from eventlog import EventLog, LmdbStorage, NewEvent


@dataclass(frozen=True, slots=True)
class AppendRun:
    """What one timed append run achieved."""

    producers: int
    events: int
    seconds: float
    commits: int
    record_size: int
    cpu_seconds: float

    @property
    def rate(self) -> float:
        """Acknowledged events per second."""
        return self.events / self.seconds

    @property
    def batch_size(self) -> float:
        """Average events per write transaction."""
        return self.events / max(self.commits, 1)

    def figures(self) -> list[Figure]:
        """The figures this run reports."""
        name = f"append.durable.producers_{self.producers}"
        return [
            Figure(name, self.rate, "events/s"),
            Figure(f"{name}.batch", self.batch_size, "events/commit"),
            Figure(
                f"{name}.cpu",
                self.cpu_seconds / self.events * 1e6,
                "us/event",
                higher_is_better=False,
            ),
        ]


def measure_appends(producers: int, seconds: float) -> AppendRun:
    """Run ``producers`` appenders for about ``seconds`` on a fresh log."""
    with fresh_data_dir() as path, open_storage(path) as storage:
        return trio.run(_run, storage, producers, seconds)


async def _run(storage: LmdbStorage, producers: int, seconds: float) -> AppendRun:
    log = EventLog(storage)
    acked = [0] * producers
    async with trio.open_nursery() as nursery:
        await nursery.start(log.run)
        txn_before = commits_so_far(storage)
        started = time.perf_counter()
        cpu_before = time.process_time()
        deadline = started + seconds
        async with trio.open_nursery() as workers:
            for index in range(producers):
                workers.start_soon(_produce, log, index, deadline, acked)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        commits = commits_so_far(storage) - txn_before
        log.close()

    record_size = len(next(storage.iter_records())[1])
    return AppendRun(producers, sum(acked), elapsed, commits, record_size, cpu)


async def _produce(
    log: EventLog, index: int, deadline: float, acked: list[int]
) -> None:
    stream = f"job-bench-{index:04d}"
    # The payload is encoded once: what is measured is the log, not the
    # producer's own msgpack encoding. Every event still gets a fresh id.
    template = sample_event()
    kind, data, actor, workspace = (
        template.type,
        template.data,
        template.actor,
        template.workspace,
    )
    count = 0
    while time.perf_counter() < deadline:
        await log.append(
            stream, [NewEvent(kind, data, actor=actor, workspace=workspace)]
        )
        count += 1
    acked[index] = count
