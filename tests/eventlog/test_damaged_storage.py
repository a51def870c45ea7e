"""A log whose files were damaged behind LMDB's back fails with the log's errors.

Damage is made at the level of LMDB's pages: a page whose type flag changed,
a record that no longer decodes, a table or the format stamp gone, a value of
the wrong size. Every read then raises :class:`CorruptLogError` naming the
directory and what is wrong, never an exception of LMDB, msgspec or struct.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from eventlog import CorruptLogError, EventLog, LmdbStorage, NewEvent, verify
from eventlog.chain import open_record
from eventlog.envelope import parse_event_id
from tests.eventlog.support import (
    event,
    first_leaf_offset,
    flip_file_bits,
    raw_delete,
    raw_environment,
    raw_get,
    raw_put,
    read_everything,
    root_page_offset,
    running_log,
    u64,
)
from tests.eventlog.test_verify import write_history

HINT = "matrix-runtime verify names the first damaged position"
LEAF_PAGE_FLAG = 0x02
"""LMDB's ``P_LEAF``, in the page header's flags at byte 10 of the page."""
PAGE_FLAGS_OFFSET = 10


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """A closed log of five events, small enough for one leaf page per table."""
    path = tmp_path / "log"
    trio.run(write_history, path)
    return path


@pytest.fixture
def long_log_dir(tmp_path: Path) -> Path:
    """A closed log of 300 events in 3 streams, over several leaf pages."""
    path = tmp_path / "long"

    async def write() -> None:
        async with running_log(LmdbStorage(path)) as event_log:
            for n in range(0, 300, 30):
                await event_log.append(
                    f"s{n % 90 // 30}",
                    [event({"n": n + k, "pad": "x" * 40}) for k in range(30)],
                )

    trio.run(write)
    # The records span pages under a branch, so the first leaf is not the last.
    assert first_leaf_offset(path, b"log") != root_page_offset(path, b"log")
    return path


def damage_page_type(log_dir: Path, page_offset: int) -> None:
    """Make the leaf page at ``page_offset`` claim to be something else."""
    flip_file_bits(log_dir, page_offset + PAGE_FLAGS_OFFSET, LEAF_PAGE_FLAG)


WRONG_TYPE = "MDB_CORRUPTED: Located page was wrong type"


def test_page_of_wrong_type_fails_reads_as_corrupt(long_log_dir: Path) -> None:
    """Reading records from a page of the wrong type names LMDB's finding."""
    damage_page_type(long_log_dir, first_leaf_offset(long_log_dir, b"log"))
    storage = LmdbStorage(long_log_dir, readonly=True)

    with pytest.raises(CorruptLogError) as by_position:
        storage.read_log(0, 10, 300)
    with pytest.raises(CorruptLogError) as by_stream:
        storage.read_stream("s0", 1, 10)
    storage.close()

    expected = f"{long_log_dir}: the stored log is damaged ({WRONG_TYPE}); {HINT}"
    assert str(by_position.value) == str(by_stream.value) == expected
    assert by_position.value.reason == WRONG_TYPE


def test_page_of_wrong_type_is_reported_by_verify_at_first_position(
    long_log_dir: Path,
) -> None:
    """verify reports the first position it could not read, and does not raise."""
    damage_page_type(long_log_dir, first_leaf_offset(long_log_dir, b"log"))
    storage = LmdbStorage(long_log_dir, readonly=True)

    report = verify(storage)
    storage.close()

    assert (report.ok, report.events, report.first_bad_position, report.problem) == (
        False,
        0,
        1,
        f"the stored log is damaged: {WRONG_TYPE}",
    )


def test_page_of_wrong_type_ends_a_tail_with_corrupt_log_error(
    long_log_dir: Path,
) -> None:
    """A subscriber reading history gets the log's error, not LMDB's."""
    damage_page_type(long_log_dir, first_leaf_offset(long_log_dir, b"log"))

    async def read_all() -> None:
        storage = LmdbStorage(long_log_dir, readonly=True)
        try:
            await read_everything(EventLog(storage))
        finally:
            storage.close()

    with pytest.raises(CorruptLogError) as caught:
        trio.run(read_all)

    assert caught.value.reason == WRONG_TYPE


@pytest.mark.parametrize("readonly", [False, True])
def test_page_of_wrong_type_under_the_head_refuses_to_open(
    log_dir: Path, readonly: bool
) -> None:
    """Opening reads the last record; if its page is damaged, nothing opens."""
    damage_page_type(log_dir, first_leaf_offset(log_dir, b"log"))

    with pytest.raises(CorruptLogError) as caught:
        LmdbStorage(log_dir, readonly=readonly)

    assert str(caught.value) == (
        f"{log_dir}: the stored log is damaged ({WRONG_TYPE}); {HINT}"
    )


def test_record_that_does_not_decode_is_named_by_position(log_dir: Path) -> None:
    """A record cut short fails a read of the range with its own position."""
    record = raw_get(log_dir, b"log", u64(4))
    assert record is not None
    raw_put(log_dir, b"log", u64(4), record[:50])
    storage = LmdbStorage(log_dir, readonly=True)

    with pytest.raises(CorruptLogError) as caught:
        storage.read_log(0, 10, 5)
    storage.close()

    assert str(caught.value) == (
        f"{log_dir}: the stored log is damaged "
        f"(record 4 does not decode: Input data was truncated); {HINT}"
    )


def drop_heads_table(log_dir: Path) -> None:
    """Remove one of the log's tables, as no version of the log ever does."""
    with raw_environment(log_dir) as env:
        heads = env.open_db(b"heads", create=False)
        with env.begin(write=True) as txn:
            txn.drop(heads, delete=True)


def delete_format_stamp(log_dir: Path) -> None:
    """Remove the stamp written in the transaction that creates the tables."""
    raw_delete(log_dir, b"meta", b"format")


def shorten_head(log_dir: Path) -> None:
    """Store the head position in two bytes instead of eight."""
    raw_put(log_dir, b"meta", b"head", b"\x00\x05")


@pytest.mark.parametrize("readonly", [False, True])
@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (drop_heads_table, "its tables heads are missing"),
        (delete_format_stamp, "its format stamp is missing"),
        (shorten_head, "a key or value has the wrong size"),
    ],
)
def test_log_damaged_in_its_structure_refuses_to_open(
    log_dir: Path, readonly: bool, damage: Callable[[Path], None], reason: str
) -> None:
    """A missing table or stamp, or a value of the wrong size, is damage."""
    damage(log_dir)

    with pytest.raises(CorruptLogError) as caught:
        LmdbStorage(log_dir, readonly=readonly)

    assert str(caught.value) == (
        f"{log_dir}: the stored log is damaged ({reason}); {HINT}"
    )


def test_id_index_pointing_nowhere_fails_the_append_that_reuses_the_id(
    log_dir: Path,
) -> None:
    """An idempotency check that meets a broken id index refuses, naming it."""
    record = raw_get(log_dir, b"log", u64(2))
    assert record is not None
    stored = open_record(record)
    raw_put(log_dir, b"event_ids", parse_event_id(stored.event_id), u64(99))
    again = NewEvent(
        type=stored.type, data=bytes(stored.data), event_id=stored.event_id
    )

    async def append_again() -> CorruptLogError:
        # The index mark keeps recent ids in memory; a fresh writer reads
        # every id below the mark from the table.
        async with running_log(LmdbStorage(log_dir)) as event_log:
            with pytest.raises(CorruptLogError) as caught:
                await event_log.append(stored.stream, [again])
            return caught.value

    error = trio.run(append_again)

    assert str(error) == (
        f"{log_dir}: the stored log is damaged (the event id index points at "
        f"missing position 99); {HINT}"
    )


@pytest.mark.parametrize("readonly", [False, True])
def test_data_file_cut_short_refuses_to_open(log_dir: Path, readonly: bool) -> None:
    """Fewer bytes than LMDB's pages need is refused before a read can fault."""
    data_file = log_dir / "data.mdb"
    whole = data_file.stat().st_size
    os.truncate(data_file, 12288)

    with pytest.raises(CorruptLogError) as caught:
        LmdbStorage(log_dir, readonly=readonly)

    assert caught.value.reason == (
        f"data.mdb is cut short: it has 12288 bytes of its {whole}"
    )


@pytest.mark.parametrize("readonly", [False, True])
def test_empty_data_file_is_not_taken_for_a_new_log(
    log_dir: Path, readonly: bool
) -> None:
    """LMDB would start afresh over an empty file; the log refuses instead."""
    os.truncate(log_dir / "data.mdb", 0)

    with pytest.raises(CorruptLogError) as caught:
        LmdbStorage(log_dir, readonly=readonly)

    assert str(caught.value) == (
        f"{log_dir}: the stored log is damaged (data.mdb is empty; move it away "
        f"to start a new log in this directory); {HINT}"
    )
    assert (log_dir / "data.mdb").stat().st_size == 0


def test_stream_head_name_that_is_not_utf8_is_reported_in_the_indexes(
    log_dir: Path,
) -> None:
    """verify reports a damaged stream name in the heads table, and does not raise."""
    raw_put(log_dir, b"heads", b"\x9d\xff", u64(1))
    storage = LmdbStorage(log_dir, readonly=True)

    report = verify(storage)
    storage.close()

    assert (report.ok, report.events, report.first_bad_position, report.problem) == (
        False,
        5,
        None,
        "the stored log is damaged: a stored stream or checkpoint name is not UTF-8",
    )


def test_page_header_naming_another_page_is_found_by_the_page_scan(
    log_dir: Path,
) -> None:
    """The raw scan reads every page, also those only the free list knows."""
    page_size = 4096
    flip_file_bits(log_dir, 2 * page_size + 4, 0x01)
    storage = LmdbStorage(log_dir, readonly=True)

    found = storage.first_bad_page()
    storage.close()

    assert found == "page 2 says it is page 4294967298"


def test_page_scan_of_an_intact_log_finds_nothing(long_log_dir: Path) -> None:
    """Every page LMDB wrote, live or free, passes the scan."""
    storage = LmdbStorage(long_log_dir, readonly=True)

    found = storage.first_bad_page()
    storage.close()

    assert found is None
