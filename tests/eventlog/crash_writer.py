"""Append to a log from many producers, forever, until the process is killed.

Usage: ``crash_writer.py DIR``. Prints ``ready`` once the writer runs, then one
line per event ``POSITION STREAM VERSION EVENT_ID DATA_HEX``, only after the
append that holds the event was acknowledged. Every printed event must survive
a SIGKILL at any moment.
"""

from __future__ import annotations

import random
import sys
import uuid
from pathlib import Path

import msgspec
import trio

from eventlog import EventLog, ExpectedVersion, LmdbStorage, NewEvent

PRODUCERS = 8


async def main(directory: Path) -> None:
    """Run the producers until killed."""
    storage = LmdbStorage(directory)
    event_log = EventLog(storage)
    async with trio.open_nursery() as nursery:
        await nursery.start(event_log.run)
        print("ready", flush=True)
        for n in range(PRODUCERS):
            nursery.start_soon(produce, event_log, n)


async def produce(event_log: EventLog, producer: int) -> None:
    """Append batches to the producer's own stream, sometimes to a shared one."""
    stream = f"p{producer}"
    version = await event_log.stream_version(stream)
    rng = random.Random()
    for seq in range(sys.maxsize):
        shared = seq % 5 == 4
        batch = [_event(producer, seq, n) for n in range(rng.randint(1, 3))]
        if shared:
            result = await event_log.append("shared", batch, ExpectedVersion.ANY)
        else:
            result = await event_log.append(stream, batch, version)
            version = result.stream_version
        first = result.stream_version - len(batch) + 1
        lines = [
            f"{position} {'shared' if shared else stream} {first + i} "
            f"{new.event_id} {new.data.hex()}\n"
            for i, (position, new) in enumerate(
                zip(result.positions, batch, strict=True)
            )
        ]
        sys.stdout.write("".join(lines))
        sys.stdout.flush()


def _event(producer: int, seq: int, n: int) -> NewEvent:
    event_id = uuid.uuid4().hex
    data = msgspec.msgpack.encode({"producer": producer, "seq": seq, "n": n})
    return NewEvent(type="test.crash", data=data, event_id=event_id)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]))
