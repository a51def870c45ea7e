"""``verify`` names the first damaged position of an LMDB log edited behind its back."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from eventlog import CorruptLogError, LmdbStorage, VerifyReport, verify
from eventlog.chain import HASH_SIZE, open_record
from eventlog.envelope import parse_event_id
from tests.eventlog.support import (
    event,
    flip_byte,
    payload,
    raw_delete,
    raw_get,
    raw_put,
    running_log,
    u64,
)

HISTORY = [("s", 2), ("t", 1), ("s", 1), ("t", 1)]
"""Streams and batch sizes appended: s@1,2 t@3 s@4 t@5."""


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """A closed log of five events whose payloads are ``"payload-<position>"``."""
    path = tmp_path / "log"
    trio.run(write_history, path)
    return path


async def write_history(path: Path) -> None:
    """Append :data:`HISTORY` to a new log at ``path``."""
    async with running_log(LmdbStorage(path)) as event_log:
        position = 0
        for stream, count in HISTORY:
            batch = []
            for _ in range(count):
                position += 1
                batch.append(event(f"payload-{position}"))
            await event_log.append(stream, batch)


def check(path: Path) -> VerifyReport:
    """Verify the log at ``path`` through a read-only handle, as the CLI does."""
    storage = LmdbStorage(path, readonly=True)
    try:
        return verify(storage)
    finally:
        storage.close()


def record(path: Path, position: int) -> bytes:
    """The stored record at ``position``."""
    value = raw_get(path, b"log", u64(position))
    assert value is not None
    return value


def test_verify_untouched_log_is_ok(log_dir: Path) -> None:
    """The log as written verifies, and its head hash is the last record's hash."""
    report = check(log_dir)

    assert report == VerifyReport(
        head=5, head_hash=record(log_dir, 5)[:HASH_SIZE], events=5
    )
    assert report.ok


def test_verify_names_event_whose_payload_changed(log_dir: Path) -> None:
    """One flipped payload byte breaks that event's own hash."""
    offset = record(log_dir, 3).index(payload("payload-3")) + 5

    flip_byte(log_dir, 3, offset)
    report = check(log_dir)

    assert (report.first_bad_position, report.problem) == (
        3,
        "stored hash does not match the event's bytes",
    )
    assert (report.ok, report.events) == (False, 2)


def test_verify_names_event_whose_prev_hash_changed(log_dir: Path) -> None:
    """A changed back link is caught at the event that carries it."""
    stored = record(log_dir, 3)
    offset = stored.index(open_record(stored).prev_hash, HASH_SIZE) + 7

    flip_byte(log_dir, 3, offset)
    report = check(log_dir)

    assert (report.first_bad_position, report.problem) == (
        3,
        "prev_hash does not match the previous event's hash",
    )


def test_verify_names_event_whose_stored_hash_changed(log_dir: Path) -> None:
    """A changed stored hash is caught at its own event, not the next one."""
    flip_byte(log_dir, 3, 0)

    report = check(log_dir)

    assert (report.first_bad_position, report.problem) == (
        3,
        "stored hash does not match the event's bytes",
    )


def test_verify_names_record_that_no_longer_decodes(log_dir: Path) -> None:
    """A record cut short is reported, not raised."""
    raw_put(log_dir, b"log", u64(4), record(log_dir, 4)[:50])

    report = check(log_dir)

    assert report.first_bad_position == 4
    assert report.problem.startswith("envelope does not decode: ")


def test_verify_names_missing_middle_record(log_dir: Path) -> None:
    """A deleted record leaves a gap at its position."""
    raw_delete(log_dir, b"log", u64(3))

    report = check(log_dir)

    assert (report.first_bad_position, report.problem) == (3, "position is missing")


@pytest.mark.parametrize("readonly", [False, True])
def test_log_missing_last_record_refuses_to_open(log_dir: Path, readonly: bool) -> None:
    """A log whose last record is gone disagrees with its head and is not opened."""
    raw_delete(log_dir, b"log", u64(5))

    with pytest.raises(CorruptLogError) as caught:
        LmdbStorage(log_dir, readonly=readonly)

    assert str(caught.value) == (
        f"{log_dir}: the log ends at position 4 but its head says 5"
    )


def test_verify_names_last_record_removed_with_head_rewound(log_dir: Path) -> None:
    """Truncating the log and its head still leaves the head hash pointing on."""
    raw_delete(log_dir, b"log", u64(5))
    raw_put(log_dir, b"meta", b"head", u64(4))

    report = check(log_dir)

    assert (report.first_bad_position, report.problem) == (
        4,
        "head hash does not match the chain",
    )


def test_verify_reports_indexes_of_truncated_events(log_dir: Path) -> None:
    """Truncating records, head and hash still leaves index entries behind."""
    raw_delete(log_dir, b"log", u64(5))
    raw_put(log_dir, b"meta", b"head", u64(4))
    raw_put(log_dir, b"meta", b"head_hash", record(log_dir, 4)[:HASH_SIZE])

    report = check(log_dir)

    assert (report.ok, report.first_bad_position, report.problem) == (
        False,
        None,
        "indexes hold entries for events that are not in the log",
    )


def test_verify_names_event_whose_stream_index_entry_changed(log_dir: Path) -> None:
    """A stream index entry pointing elsewhere is caught at the event it indexes."""
    raw_put(log_dir, b"streams", b"s\x00" + u64(2), u64(4))

    report = check(log_dir)

    assert (report.first_bad_position, report.problem) == (2, "stream index disagrees")


def test_verify_names_event_whose_id_index_entry_changed(log_dir: Path) -> None:
    """An id index entry pointing elsewhere is caught at the event it indexes."""
    event_id = open_record(record(log_dir, 4)).event_id
    raw_put(log_dir, b"event_ids", parse_event_id(event_id), u64(5))

    report = check(log_dir)

    assert (report.first_bad_position, report.problem) == (
        4,
        "event id index disagrees",
    )


def test_verify_reports_stream_head_that_disagrees(log_dir: Path) -> None:
    """A stream head that is not the stream's last version is reported."""
    raw_put(log_dir, b"heads", b"t", u64(7))

    report = check(log_dir)

    assert (report.ok, report.first_bad_position, report.problem) == (
        False,
        None,
        "indexes hold entries for events that are not in the log",
    )
