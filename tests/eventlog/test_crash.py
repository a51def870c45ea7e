"""Acknowledged appends survive SIGKILL at any moment, round after round."""

from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from eventlog import LmdbStorage, RecordedEvent, verify
from tests.eventlog.support import CRASH_WRITER, TIMEOUT, LineReader, child_command

ROUNDS = 20
MAX_ACKS_BEFORE_KILL = 300


@dataclass(frozen=True, slots=True)
class Acked:
    """One event the writer acknowledged before it died."""

    stream: str
    version: int
    event_id: str
    data: bytes


async def run_until_killed(path: Path, acks_before_kill: int) -> dict[int, Acked]:
    """Start the writer, kill it after that many acknowledgements, return them all."""
    process = await trio.lowlevel.open_process(
        child_command(CRASH_WRITER, path),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    lines = LineReader(process.stdout)
    acked: dict[int, Acked] = {}
    try:
        with trio.fail_after(TIMEOUT):
            assert await lines.readline() == "ready"
            while len(acked) < acks_before_kill:
                line = await lines.readline()
                assert line is not None, "the writer exited on its own"
                _add(acked, line)
    finally:
        process.kill()
        with trio.fail_after(TIMEOUT):
            await process.wait()
    # Lines already in the pipe were printed after their append returned:
    # they are acknowledged as much as the ones read before the kill.
    with trio.fail_after(TIMEOUT):
        while (line := await lines.readline()) is not None:
            _add(acked, line)
    return acked


def _add(acked: dict[int, Acked], line: str) -> None:
    position, stream, version, event_id, data = line.split(" ")
    acked[int(position)] = Acked(stream, int(version), event_id, bytes.fromhex(data))


@pytest.mark.slow
async def test_lmdb_log_keeps_every_acknowledged_event_across_kills(
    tmp_path: Path,
) -> None:
    """Kill the writer at random points; each time every acked event is intact."""
    path = tmp_path / "log"
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    everything: dict[int, Acked] = {}

    for round_number in range(ROUNDS):
        acked = await run_until_killed(path, rng.randint(0, MAX_ACKS_BEFORE_KILL))
        assert not acked.keys() & everything.keys(), "a position was acked twice"
        everything.update(acked)

        storage = LmdbStorage(path)
        try:
            report = verify(storage)
            stored = {
                e.position: Acked(e.stream, e.version, e.event_id, bytes(e.data))
                for e in _read_all(storage)
            }
        finally:
            storage.close()

        context = f"round {round_number}, seed {seed}"
        assert report.ok, f"{context}: {report.first_bad_position} {report.problem}"
        assert {p: stored.get(p) for p in everything} == everything, context
        assert report.head >= max(everything, default=0), context

    assert len(everything) > ROUNDS


def _read_all(storage: LmdbStorage) -> list[RecordedEvent]:
    head = storage.head()[0]
    return storage.read_log(0, head, head)
