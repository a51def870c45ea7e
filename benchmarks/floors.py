"""What an acknowledged append costs at the least, before the log does anything.

With ``producers`` tasks that each append one event and wait for it, every
commit holds at most ``producers`` events and nothing overlaps it: the cycle
is one durable commit plus the CPU of every event in it. These figures
measure the parts of that cycle the log cannot shrink, on this machine:

- ``floor.trio_wake``: one producer task parked and woken again by trio,
  per task, with ``producers`` tasks woken together (no log involved).
- ``floor.writer_thread``: one round trip to the log's writer thread, which
  every commit makes once because LMDB write transactions run in a thread.
- ``floor.lmdb_commit``: a raw durable LMDB commit of ``producers`` records
  of the log's record size (both flushes, no other work).
- ``floor.cpu_budget``: the CPU an event may cost, at most, for
  ``producers`` producers to reach ``target`` events/s given that commit:
  ``(producers / target - commit) / producers``.
"""

from __future__ import annotations

import os
import struct
import time

import lmdb
import trio
import trio.lowlevel

from benchmarks.support import Figure, fresh_data_dir
from eventlog.writer_thread import WriterThread

WAKE_ROUNDS = 2000
THREAD_ROUNDS = 2000
COMMIT_ROUNDS = 300

_U64 = struct.Struct(">Q")


def measure_floors(producers: int, record_size: int, target: float) -> list[Figure]:
    """The floors for ``producers`` producers and the budget they leave."""
    wake = trio.run(_task_wake_seconds, producers)
    hop = trio.run(_thread_hop_seconds)
    commit = _commit_seconds(producers, record_size)
    budget = (producers / target - commit) / producers
    name = f"floor.producers_{producers}"
    return [
        Figure(f"{name}.trio_wake", wake * 1e6, "us/event", higher_is_better=False),
        Figure(f"{name}.writer_thread", hop * 1e6, "us/commit", higher_is_better=False),
        Figure(f"{name}.lmdb_commit", commit * 1e3, "ms", higher_is_better=False),
        Figure(f"{name}.cpu_budget_{target:.0f}", budget * 1e6, "us/event"),
    ]


async def _task_wake_seconds(producers: int) -> float:
    """Seconds of one park-and-wake of one task among ``producers``."""
    parked: list[trio.lowlevel.Task] = []
    all_parked = trio.Event()
    woken = 0

    async def producer() -> None:
        nonlocal all_parked, woken
        while True:
            parked.append(trio.lowlevel.current_task())
            if len(parked) == producers:
                all_parked.set()
            await trio.lowlevel.wait_task_rescheduled(
                lambda _: trio.lowlevel.Abort.SUCCEEDED
            )
            woken += 1

    async with trio.open_nursery() as nursery:
        for _ in range(producers):
            nursery.start_soon(producer)
        started = time.perf_counter()
        for _ in range(WAKE_ROUNDS):
            await all_parked.wait()
            all_parked = trio.Event()
            waking = parked[:]
            parked.clear()
            for task in waking:
                trio.lowlevel.reschedule(task)
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    return elapsed / woken


async def _thread_hop_seconds() -> float:
    writer = WriterThread("floor writer")
    writer.start()
    try:
        started = time.perf_counter()
        for _ in range(THREAD_ROUNDS):
            await writer.run(int)
        return (time.perf_counter() - started) / THREAD_ROUNDS
    finally:
        writer.stop()


def _commit_seconds(records: int, record_size: int) -> float:
    """Mean seconds of a raw durable commit of ``records`` records."""
    value = os.urandom(record_size)
    with fresh_data_dir() as path:
        env = lmdb.open(
            str(path), map_size=1 << 34, max_dbs=2, sync=True, metasync=True
        )
        try:
            log = env.open_db(b"log")
            meta = env.open_db(b"meta")
            position = 0
            started = time.perf_counter()
            for _ in range(COMMIT_ROUNDS):
                with env.begin(write=True) as txn:
                    txn.cursor(db=log).putmulti(
                        [
                            (_U64.pack(position + offset), value)
                            for offset in range(1, records + 1)
                        ],
                        append=True,
                    )
                    position += records
                    txn.put(b"head", _U64.pack(position), db=meta)
            elapsed = time.perf_counter() - started
        finally:
            env.close()
    return elapsed / COMMIT_ROUNDS
