"""The index tables trail the log up to a mark; reads never notice the gap."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from eventlog import AppendResult, LmdbStorage, verify
from eventlog.envelope import parse_event_id
from tests.eventlog.support import (
    LOG_PROCESS,
    child_command,
    event,
    numbered,
    positions,
    raw_environment,
    raw_get,
    running_log,
    u64,
)


def vanish(path: Path, stream: str, count: int, index_batch: int) -> list[str]:
    """Append ``count`` events in a process that exits without closing the log.

    Returns the acknowledged event ids in position order.
    """
    result = subprocess.run(
        child_command(LOG_PROCESS, "vanish", path, stream, count, index_batch),
        capture_output=True,
        check=True,
        timeout=60,
    )
    return [line.split()[1] for line in result.stdout.decode().splitlines()]


def stored_stream_keys(path: Path) -> list[bytes]:
    """The keys the ``streams`` table holds, read past the log."""
    with raw_environment(path) as env:
        table = env.open_db(b"streams", create=False)
        with env.begin(db=table) as txn:
            return [bytes(key) for key in txn.cursor().iternext(values=False)]


def test_index_mark_trails_the_head_by_less_than_a_batch(tmp_path: Path) -> None:
    """With a batch of 3, seven commits write the tables once, through position 4."""
    path = tmp_path / "log"

    vanish(path, "s", 7, 3)

    assert raw_get(path, b"meta", b"head") == u64(7)
    assert raw_get(path, b"meta", b"indexed") == u64(4)
    assert stored_stream_keys(path) == [b"s\x00" + u64(v) for v in range(1, 5)]


def test_index_mark_entries_above_it_are_read_from_the_records(
    tmp_path: Path,
) -> None:
    """A read-only handle finds events above the mark by stream, version and id."""
    path = tmp_path / "log"
    ids = vanish(path, "s", 5, 100)
    storage = LmdbStorage(path, readonly=True)

    try:
        stream = storage.read_stream("s", 2, 10)
        version = storage.stream_version("s")
        found = [storage.position_of(parse_event_id(i)) for i in ids]
        at_three = storage.indexed_position("s", 3)
        report = verify(storage)
    finally:
        storage.close()

    assert raw_get(path, b"meta", b"indexed") == u64(0)
    assert stored_stream_keys(path) == []
    assert positions(stream) == [2, 3, 4, 5]
    assert [e.event_id for e in stream] == ids[1:]
    assert (version, found, at_three) == (5, [1, 2, 3, 4, 5], 3)
    assert (report.ok, report.events) == (True, 5)


async def test_index_mark_writer_reopened_after_a_crash_carries_on(
    tmp_path: Path,
) -> None:
    """Versions, retries and reads above the mark survive the writer dying."""
    path = tmp_path / "log"
    ids = vanish(path, "s", 5, 3)

    async with running_log(LmdbStorage(path, index_batch=3)) as event_log:
        wrong = await event_log.stream_version("s")
        more = await event_log.append("s", [event()], 5)
        stream = await event_log.read_stream("s", 1, 100)
        report = verify(event_log.storage)

    assert wrong == 5
    assert more == AppendResult((6,), 6)
    assert [e.event_id for e in stream[:5]] == ids
    assert positions(stream) == [1, 2, 3, 4, 5, 6]
    assert (report.ok, report.events) == (True, 6)
    assert raw_get(path, b"meta", b"indexed") == u64(6)
    assert stored_stream_keys(path) == [b"s\x00" + u64(v) for v in range(1, 7)]


async def test_index_mark_retry_of_an_event_above_it_is_recognised(
    tmp_path: Path,
) -> None:
    """An append retried after a restart returns its original positions."""
    path = tmp_path / "log"
    first = numbered(2)
    async with running_log(LmdbStorage(path, index_batch=100)) as event_log:
        original = await event_log.append("s", first)
        await event_log.append("t", numbered(1))

    async with running_log(LmdbStorage(path, index_batch=100)) as event_log:
        retried = await event_log.append("s", first)

    assert original == retried == AppendResult((1, 2), 2)


async def test_index_mark_reaches_the_head_on_close(tmp_path: Path) -> None:
    """Closing the log writes every pending entry to the tables."""
    path = tmp_path / "log"
    async with running_log(LmdbStorage(path)) as event_log:
        await event_log.append("s", numbered(3))
        await event_log.append("t", numbered(2))

    assert raw_get(path, b"meta", b"indexed") == u64(5)
    assert raw_get(path, b"heads", b"s") == u64(3)
    assert raw_get(path, b"heads", b"t") == u64(2)
    assert stored_stream_keys(path) == [
        *(b"s\x00" + u64(v) for v in (1, 2, 3)),
        *(b"t\x00" + u64(v) for v in (1, 2)),
    ]


def test_index_mark_log_written_before_it_existed_counts_as_indexed(
    tmp_path: Path,
) -> None:
    """A log whose meta has no mark had every commit indexed: the mark is its head."""
    path = tmp_path / "log"
    subprocess.run(
        child_command(LOG_PROCESS, "append", path, "s", 3), check=True, timeout=60
    )
    with raw_environment(path) as env:
        meta = env.open_db(b"meta", create=False)
        with env.begin(write=True, db=meta) as txn:
            assert txn.delete(b"indexed")

    storage = LmdbStorage(path)
    try:
        report = verify(storage)
    finally:
        storage.close()

    assert raw_get(path, b"meta", b"indexed") == u64(3)
    assert (report.ok, report.events) == (True, 3)


def test_index_mark_batch_below_one_is_refused(tmp_path: Path) -> None:
    """An index batch must hold at least one event."""
    with pytest.raises(ValueError) as raised:
        LmdbStorage(tmp_path / "log", index_batch=0)

    assert str(raised.value) == "index_batch must be at least 1, not 0"


async def test_index_mark_readonly_handle_sees_later_commits(tmp_path: Path) -> None:
    """A read-only handle takes in what the writer committed since it last looked."""
    path = tmp_path / "log"
    vanish(path, "s", 2, 100)
    reader = LmdbStorage(path, readonly=True)
    try:
        before = reader.stream_version("s")
        vanish(path, "s", 3, 100)
        after = reader.read_stream("s", 1, 10)
    finally:
        reader.close()

    assert before == 2
    assert positions(after) == [1, 2, 3, 4, 5]


async def test_index_mark_read_stream_spans_tables_and_pending(
    tmp_path: Path,
) -> None:
    """One read returns versions from the tables and from above the mark, in order."""
    path = tmp_path / "log"
    async with running_log(LmdbStorage(path, index_batch=4)) as event_log:
        for _ in range(6):
            await event_log.append("s", [event()])
        await event_log.append("t", [event()])
        whole = await event_log.read_stream("s", 1, 100)
        middle = await event_log.read_stream("s", 4, 2)
        tail = await event_log.read_stream("s", 6, 100)

    assert positions(whole) == [1, 2, 3, 4, 5, 6]
    assert [e.version for e in middle] == [4, 5]
    assert positions(tail) == [6]
