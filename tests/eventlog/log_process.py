"""A separate process that uses a log directory, driven by the LMDB tests.

Usage::

    log_process.py hold DIR                 open DIR for writing, print "ready",
                                            keep it open until stdin closes
    log_process.py append DIR STREAM COUNT  append COUNT events one by one,
                                            printing "POSITION EVENT_ID" each
    log_process.py fill DIR FSIZE_LIMIT     append from many producers until
                                            the log is full, under RLIMIT_FSIZE
    log_process.py vanish DIR STREAM COUNT INDEX_BATCH
                                            like append, with that index batch,
                                            then exit without closing the log

Every line is printed only after the append it reports was acknowledged.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import uuid
from pathlib import Path

import msgspec
import trio

from eventlog import EventLog, EventLogError, LmdbStorage, NewEvent

FILL_PRODUCERS = 8
FILL_BATCH = 4
PAD = "p" * 3000


def fill_payload(event_id: str) -> bytes:
    """The payload of a ``fill`` event, which a test can recompute from its id."""
    return msgspec.msgpack.encode({"id": event_id, "pad": PAD})


def main(argv: list[str]) -> int:
    """Run one command; the exit code is 0 unless the command itself failed."""
    command, directory = argv[0], Path(argv[1])
    if command == "hold":
        storage = LmdbStorage(directory)
        print("ready", flush=True)
        sys.stdin.read()
        storage.close()
        return 0
    if command == "append":
        trio.run(_append, directory, argv[2], int(argv[3]))
        return 0
    if command == "vanish":
        storage = LmdbStorage(directory, index_batch=int(argv[4]))
        trio.run(_append_to, storage, argv[2], int(argv[3]))
        # As if the process died here: the log is never closed, so index
        # entries not yet written to the tables exist only in the records.
        os._exit(0)
    if command == "fill":
        # Past the limit the kernel would kill us with SIGXFSZ; ignored, the
        # write fails with EFBIG instead, as a full disk fails with ENOSPC.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        storage = LmdbStorage(directory)
        limit = int(argv[2])
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        trio.run(_fill, storage)
        storage.close()
        return 0
    print(f"unknown command {command!r}", file=sys.stderr)
    return 2


async def _append(directory: Path, stream: str, count: int) -> None:
    storage = LmdbStorage(directory)
    try:
        await _append_to(storage, stream, count)
    finally:
        storage.close()


async def _append_to(storage: LmdbStorage, stream: str, count: int) -> None:
    event_log = EventLog(storage)
    async with trio.open_nursery() as nursery:
        await nursery.start(event_log.run)
        for n in range(count):
            new = NewEvent(type="test.noted", data=msgspec.msgpack.encode({"n": n}))
            result = await event_log.append(stream, [new])
            print(result.positions[0], new.event_id, flush=True)
        event_log.close()


async def _fill(storage: LmdbStorage) -> None:
    event_log = EventLog(storage)
    errors: list[EventLogError] = []

    async def produce(stream: str) -> None:
        while not errors:
            ids = [uuid.uuid4().hex for _ in range(FILL_BATCH)]
            batch = [
                NewEvent(type="test.filled", data=fill_payload(i), event_id=i)
                for i in ids
            ]
            try:
                result = await event_log.append(stream, batch)
            except EventLogError as exc:
                errors.append(exc)
                return
            for position, event_id in zip(result.positions, ids, strict=True):
                print("ack", position, event_id, flush=True)

    async with trio.open_nursery() as nursery:
        await nursery.start(event_log.run)
        async with trio.open_nursery() as producers:
            for n in range(FILL_PRODUCERS):
                producers.start_soon(produce, f"fill-{n}")
        print("error", type(errors[0]).__name__, errors[0], flush=True)
        head = event_log.head
        last = await event_log.read(head)
        readable = last is not None and last.position == head
        print("head", head, "readable" if readable else "unreadable", flush=True)
        event_log.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
