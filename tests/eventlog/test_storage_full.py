"""A full map or a full disk is a clear error that loses nothing acknowledged."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio

from eventlog import (
    AppendResult,
    EventLog,
    EventLogError,
    LmdbStorage,
    NewEvent,
    StorageFullError,
    verify,
)
from tests.eventlog.log_process import fill_payload
from tests.eventlog.support import (
    LOG_PROCESS,
    TIMEOUT,
    child_command,
    payload,
    read_everything,
    running_log,
)

MAP_SIZE = 1 << 20
BIG = "x" * 16384


async def fill(event_log: EventLog) -> tuple[dict[int, NewEvent], list[EventLogError]]:
    """Append from several producers until every one of them has failed."""
    acknowledged: dict[int, NewEvent] = {}
    errors: list[EventLogError] = []

    async def produce(stream: str) -> None:
        while not errors:
            batch = [big_event() for _ in range(3)]
            try:
                result: AppendResult = await event_log.append(stream, batch)
            except EventLogError as exc:
                errors.append(exc)
                return
            acknowledged.update(zip(result.positions, batch, strict=True))

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            for n in range(6):
                nursery.start_soon(produce, f"big-{n}")
    return acknowledged, errors


def big_event() -> NewEvent:
    """An event whose payload names its own id, so its content can be checked."""
    event_id = uuid.uuid4().hex
    return NewEvent(
        type="test.big", data=payload({"id": event_id, "pad": BIG}), event_id=event_id
    )


async def assert_all_there(
    event_log: EventLog, acknowledged: dict[int, NewEvent]
) -> None:
    """Exactly the acknowledged events are stored, each with its content."""
    stored = await read_everything(event_log)
    assert {e.position: (e.event_id, bytes(e.data)) for e in stored} == {
        p: (e.event_id, e.data) for p, e in acknowledged.items()
    }
    report = verify(event_log.storage)
    assert (report.ok, report.events) == (True, len(acknowledged)), report.problem


async def test_lmdb_full_map_is_reported_and_loses_nothing(tmp_path: Path) -> None:
    """Filling a 1 MiB map fails appends clearly; the log stays whole and readable."""
    path = tmp_path / "log"
    async with running_log(LmdbStorage(path, map_size=MAP_SIZE)) as event_log:
        acknowledged, errors = await fill(event_log)
        head, head_hash = event_log.head, event_log.head_hash
        await assert_all_there(event_log, acknowledged)
        last = await event_log.read(head)

    assert {type(e) for e in errors} == {StorageFullError}
    assert str(errors[0]) == (
        "the event log is full: its map size of 1048576 bytes is reached; "
        "raise MATRIX_RUNTIME_MAP_SIZE"
    )
    assert head == len(acknowledged) > 0
    assert last is not None and last.event_id == acknowledged[head].event_id

    async with running_log(LmdbStorage(path, map_size=4 * MAP_SIZE)) as event_log:
        reopened = (event_log.head, event_log.head_hash)
        more = await event_log.append("after", [big_event()])
        report = verify(event_log.storage)

    assert reopened == (head, head_hash)
    assert more == AppendResult((head + 1,), 1)
    assert (report.ok, report.events) == (True, head + 1)


@contextmanager
def small_disk(mount_point: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``mount_point``; skips when mounting is not allowed."""
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.mark.slow
async def test_lmdb_full_disk_is_reported_and_loses_nothing(tmp_path: Path) -> None:
    """On a 1 MiB filesystem the log fails with ENOSPC and keeps what it acked."""
    with small_disk(tmp_path / "disk", "1m") as disk:
        async with running_log(LmdbStorage(disk / "log")) as event_log:
            acknowledged, errors = await fill(event_log)
            head = event_log.head
            await assert_all_there(event_log, acknowledged)

        storage = LmdbStorage(disk / "log")
        report = verify(storage)
        storage.close()

    assert {type(e) for e in errors} == {StorageFullError}
    assert str(errors[0]) == (
        "the event log cannot grow: No space left on device; free disk space"
    )
    assert head == len(acknowledged) > 0
    assert (report.ok, report.head) == (True, head)


@pytest.mark.slow
@pytest.mark.parametrize(
    "limit",
    [MAP_SIZE, MAP_SIZE + 1000],
    ids=["write-at-limit", "write-across-limit"],
)
async def test_lmdb_file_size_limit_is_reported_and_loses_nothing(
    tmp_path: Path, limit: int
) -> None:
    """A writer under RLIMIT_FSIZE gets StorageFullError and keeps what it acked."""
    path = tmp_path / "log"

    with trio.fail_after(TIMEOUT * 3):
        done = await trio.run_process(
            child_command(LOG_PROCESS, "fill", path, limit),
            capture_stdout=True,
            capture_stderr=True,
        )
    lines = [line.split(" ", 2) for line in done.stdout.decode().splitlines()]
    acked = {int(p): event_id for kind, p, event_id in lines if kind == "ack"}
    storage = LmdbStorage(path)
    try:
        stored = {p: storage.read_log(p - 1, 1, p)[0] for p in acked}
        report = verify(storage)
    finally:
        storage.close()

    assert lines[-2:] == [
        [
            "error",
            "StorageFullError",
            "the event log cannot grow: File too large; free disk space",
        ],
        ["head", str(len(acked)), "readable"],
    ]
    assert sorted(acked) == list(range(1, len(acked) + 1))
    assert all(
        (e.event_id, bytes(e.data)) == (acked[p], fill_payload(acked[p]))
        for p, e in stored.items()
    )
    assert (report.ok, report.head) == (True, len(acked))
    assert (path / "data.mdb").stat().st_size <= limit
