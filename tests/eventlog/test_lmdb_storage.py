"""LMDB backend specifics: the data directory, the writer lock, reopening, polling."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import lmdb
import pytest
import trio
import trio.testing

from eventlog import (
    AppendResult,
    CorruptLogError,
    DataDirectoryError,
    DataDirectoryLockedError,
    EventLog,
    ExpectedVersion,
    ForeignDataDirectoryError,
    LmdbStorage,
    LogReadOnlyError,
    RecordedEvent,
    verify,
)
from tests.eventlog.support import (
    LOG_PROCESS,
    TIMEOUT,
    LineReader,
    child_command,
    collect_tail,
    event,
    flatten,
    numbered,
    positions,
    read_everything,
    running_log,
)


def test_lmdb_storage_path_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    """A data directory that is a regular file is refused in both modes."""
    path = tmp_path / "log"
    path.write_text("not a directory")

    with pytest.raises(DataDirectoryError) as writing:
        LmdbStorage(path)
    with pytest.raises(DataDirectoryError) as reading:
        LmdbStorage(path, readonly=True)

    assert str(writing.value) == f"{path} is not a directory"
    assert str(reading.value) == f"{path} is not a directory"


@pytest.mark.parametrize("readonly", [False, True])
def test_lmdb_storage_garbage_data_file_is_corrupt(
    tmp_path: Path, readonly: bool
) -> None:
    """A data.mdb full of garbage is reported as a corrupt log, not a crash."""
    path = tmp_path / "log"
    path.mkdir()
    (path / "data.mdb").write_bytes(b"\xde\xad\xbe\xef" * 16384)

    with pytest.raises(CorruptLogError) as caught:
        LmdbStorage(path, readonly=readonly)

    assert str(caught.value) == (
        f"{path}: data.mdb is not a readable LMDB file "
        "(MDB_INVALID: File is not an LMDB file)"
    )
    assert sorted(os.listdir(path)) == ["data.mdb"]


def test_lmdb_storage_environment_with_other_tables_is_foreign(
    tmp_path: Path,
) -> None:
    """An LMDB environment some other program made is left alone."""
    path = tmp_path / "log"
    env = lmdb.open(str(path), max_dbs=4)
    users = env.open_db(b"users")
    with env.begin(write=True) as txn:
        txn.put(b"alice", b"admin", db=users)
    env.close()

    with pytest.raises(ForeignDataDirectoryError) as writing:
        LmdbStorage(path)
    with pytest.raises(ForeignDataDirectoryError) as reading:
        LmdbStorage(path, readonly=True)

    message = f"{path} holds an LMDB environment that is not a Matrix Runtime log"
    assert str(writing.value) == str(reading.value) == message
    assert sorted(os.listdir(path)) == ["data.mdb", "lock.mdb"]


def test_lmdb_storage_environment_with_plain_keys_is_foreign(tmp_path: Path) -> None:
    """Plain keys in the main database also mark the environment as foreign."""
    path = tmp_path / "log"
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        txn.put(b"config", b"{}")
    env.close()

    with pytest.raises(ForeignDataDirectoryError) as caught:
        LmdbStorage(path)

    assert str(caught.value) == (
        f"{path} holds an LMDB environment that is not a Matrix Runtime log"
    )


def test_lmdb_storage_log_of_another_format_is_foreign(tmp_path: Path) -> None:
    """The same tables with another format stamp are not opened."""
    path = tmp_path / "log"
    LmdbStorage(path).close()
    env = lmdb.open(str(path), max_dbs=8)
    meta = env.open_db(b"meta", create=False)
    with env.begin(write=True, db=meta) as txn:
        txn.put(b"format", b"other-log/9")
    env.close()

    with pytest.raises(ForeignDataDirectoryError) as caught:
        LmdbStorage(path)

    assert str(caught.value) == (
        f"{path} holds data of format 'other-log/9', expected 'matrix-runtime-log/1'"
    )


@pytest.mark.parametrize("create", [True, False])
def test_lmdb_storage_readonly_without_log_is_rejected(
    tmp_path: Path, create: bool
) -> None:
    """Read-only opening never creates a log; an empty or missing path fails."""
    path = tmp_path / "log"
    if create:
        path.mkdir()

    with pytest.raises(DataDirectoryError) as caught:
        LmdbStorage(path, readonly=True)

    assert str(caught.value) == f"{path} holds no event log"
    assert path.exists() == create
    assert not (path / "data.mdb").exists()


async def test_lmdb_storage_writer_lock_names_other_process(tmp_path: Path) -> None:
    """A second writer process is refused with the holder's pid."""
    path = tmp_path / "log"
    process = await trio.lowlevel.open_process(
        child_command(LOG_PROCESS, "hold", path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        with trio.fail_after(TIMEOUT):
            ready = await LineReader(process.stdout).readline()

        with pytest.raises(DataDirectoryLockedError) as caught:
            LmdbStorage(path)
        reader = LmdbStorage(path, readonly=True)
        reader.close()
    finally:
        await process.stdin.aclose()
        with trio.fail_after(TIMEOUT):
            code = await process.wait()

    assert ready == "ready"
    assert str(caught.value) == (
        f"{path} is already open for writing by another process (pid {process.pid})"
    )
    assert code == 0
    LmdbStorage(path).close()


def test_lmdb_storage_writer_lock_held_in_this_process(tmp_path: Path) -> None:
    """Two writers in one process are refused too, before LMDB is touched."""
    path = tmp_path / "log"
    first = LmdbStorage(path)
    try:
        with pytest.raises(DataDirectoryLockedError) as caught:
            LmdbStorage(path)
    finally:
        first.close()

    assert str(caught.value) == (
        f"{path} is already open for writing by another process (pid {os.getpid()})"
    )


async def test_lmdb_storage_reopened_log_keeps_state_and_chain(
    tmp_path: Path,
) -> None:
    """Head, hash, versions, checkpoints and ids survive a restart."""
    path = tmp_path / "log"
    first_batch = numbered(3)
    async with running_log(LmdbStorage(path)) as event_log:
        await event_log.append("s", first_batch)
        await event_log.append("t", numbered(2))
        await event_log.save_checkpoint("reader", 4)
        head_hash = event_log.head_hash

    async with running_log(LmdbStorage(path)) as event_log:
        reopened = (event_log.head, event_log.head_hash)
        retry = await event_log.append("s", first_batch, ExpectedVersion.NO_STREAM)
        more = await event_log.append("s", [event()], 3)
        checkpoint = await event_log.checkpoint("reader")
        stored = await read_everything(event_log)
        report = verify(event_log.storage)

    assert reopened == (5, head_hash)
    assert (retry, more) == (AppendResult((1, 2, 3), 3), AppendResult((6,), 4))
    assert checkpoint == 4
    assert positions(stored) == [1, 2, 3, 4, 5, 6]
    assert stored[5].prev_hash == head_hash
    assert (report.ok, report.events) == (True, 6)


@pytest.mark.parametrize("ring_size", [1, 4, 65536])
async def test_lmdb_storage_reopened_log_reads_history_next_to_new_events(
    tmp_path: Path, ring_size: int
) -> None:
    """After a restart the ring holds only new events; older reads go to disk."""
    path = tmp_path / "log"
    async with running_log(LmdbStorage(path)) as event_log:
        await event_log.append("s", numbered(5))

    async with running_log(LmdbStorage(path), ring_size=ring_size) as event_log:
        await event_log.append("s", numbered(2))
        middle = await event_log.read_all(after=2, limit=10)
        last_two = await event_log.read_all(after=5, limit=10)
        tailed = await collect_tail(event_log, 3, 7, batch_limit=3)
        read_one = await event_log.read(4)

    assert positions(middle) == [3, 4, 5, 6, 7]
    assert positions(last_two) == [6, 7]
    assert positions(flatten(tailed)) == [4, 5, 6, 7]
    assert read_one is not None and read_one.position == 4


async def test_lmdb_storage_readonly_log_polls_events_of_writer_process(
    tmp_path: Path,
) -> None:
    """A read-only handle follows appends another process makes."""
    path = tmp_path / "log"
    async with running_log(LmdbStorage(path)) as event_log:
        await event_log.append("s", [event()])
    storage = LmdbStorage(path, readonly=True)
    reader = EventLog(storage)
    seen: list[RecordedEvent] = []

    async def follow() -> None:
        seen.extend(flatten(await collect_tail(reader, 1, 4)))

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            await trio.testing.wait_all_tasks_blocked()
            result = await trio.run_process(
                child_command(LOG_PROCESS, "append", path, "polled", 3),
                capture_stdout=True,
            )
    finally:
        storage.close()

    written = [line.split() for line in result.stdout.decode().splitlines()]
    assert [(e.position, e.stream, e.event_id) for e in seen] == [
        (int(position), "polled", event_id) for position, event_id in written
    ]
    assert positions(seen) == [2, 3, 4]


async def test_lmdb_storage_readonly_log_refuses_to_write(tmp_path: Path) -> None:
    """A read-only handle neither appends nor runs a writer."""
    path = tmp_path / "log"
    LmdbStorage(path).close()
    storage = LmdbStorage(path, readonly=True)
    reader = EventLog(storage)

    try:
        with pytest.raises(LogReadOnlyError) as appending:
            await reader.append("s", [event()])
        with pytest.raises(LogReadOnlyError) as running:
            await reader.run()
    finally:
        storage.close()

    assert str(appending.value) == "the log was opened read-only"
    assert str(running.value) == "the log was opened read-only"
