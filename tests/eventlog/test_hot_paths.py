"""The log's fast paths give exactly the answers of the plain ways they replace."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlog import EventLog, InvalidAppendError, LmdbStorage, RecordedEvent
from eventlog.batch import _event_key
from eventlog.envelope import new_event_id, parse_event_id
from eventlog.ring import EventRing
from tests.eventlog.support import (
    numbered,
    positions,
    raw_delete,
    running_log,
    tail,
    u64,
)

_MUTATIONS = st.lists(
    st.tuples(st.integers(0, 45), st.sampled_from("0aF-{} _+gz:\t")), max_size=3
)


def _spellings(ident: uuid.UUID) -> list[str]:
    text = str(ident)
    return [ident.hex, text, text.upper(), "{" + text + "}", "urn:uuid:" + text]


@given(st.uuids(), st.integers(0, 4), _MUTATIONS)
def test_event_key_matches_uuid_parsing(
    ident: uuid.UUID, spelling: int, edits: list[tuple[int, str]]
) -> None:
    """Every id, well-formed or damaged, gets the key or the error ``uuid`` gives."""
    chars = list(_spellings(ident)[spelling])
    for index, char in edits:
        chars[index % len(chars)] = char
    event_id = "".join(chars)

    try:
        expected: bytes | str = parse_event_id(event_id)
    except ValueError:
        expected = f"event id {event_id!r} is not a UUID"
    try:
        actual: bytes | str = _event_key(event_id)
    except InvalidAppendError as exc:
        actual = str(exc)

    assert actual == expected


def _recorded(position: int) -> RecordedEvent:
    return RecordedEvent(
        position, "s", position, "t", "", 0, "", "", "", "", b"", msgspec.Raw(b"\xc0")
    )


@given(
    st.integers(1, 8),
    st.integers(0, 20),
    st.lists(st.integers(1, 5), max_size=12),
    st.lists(st.tuples(st.integers(0, 60), st.integers(-2, 60)), max_size=12),
)
def test_ring_slice_matches_a_model(
    capacity: int,
    start: int,
    batches: list[int],
    queries: list[tuple[int, int]],
) -> None:
    """A slice is the exact run of positions still held, or ``None``."""
    ring = EventRing(capacity)
    last = start
    for size in batches:
        ring.extend([_recorded(p) for p in range(last + 1, last + size + 1)])
        last += size
    oldest = max(start + 1, last - capacity + 1)

    for after, until in queries:
        got = ring.slice(after, until)

        if until <= after:
            assert got == []
        elif until > last or not batches or after + 1 < oldest:
            assert got is None
        else:
            assert got is not None
            assert positions(got) == list(range(after + 1, until + 1))


async def test_read_log_over_a_missing_record_stops_at_the_limit(
    tmp_path: Path,
) -> None:
    """A hole in the log never makes a read return positions past its bound."""
    path = tmp_path / "log"
    async with running_log(LmdbStorage(path)) as event_log:
        await event_log.append("s", numbered(10))
    raw_delete(path, b"log", u64(5))
    storage = LmdbStorage(path)

    try:
        around_hole = storage.read_log(2, 6, 10)
        at_hole = storage.read_log(4, 1, 10)
        bounded = storage.read_log(3, 4, 6)
    finally:
        storage.close()

    assert positions(around_hole) == [3, 4, 6, 7, 8]
    assert positions(at_hole) == []
    assert positions(bounded) == [4, 6]


def test_new_event_id_is_a_time_ordered_uuid7(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ids are version 7 UUIDs whose first 48 bits are the Unix milliseconds."""
    millis = 1_700_000_000_123
    monkeypatch.setattr("eventlog.envelope.time.time_ns", lambda: millis * 10**6)
    earlier = [new_event_id() for _ in range(50)]
    monkeypatch.setattr("eventlog.envelope.time.time_ns", lambda: (millis + 1) * 10**6)
    later = [new_event_id() for _ in range(50)]

    parsed = [uuid.UUID(i) for i in earlier + later]

    assert {(u.version, u.variant) for u in parsed} == {(7, uuid.RFC_4122)}
    assert {i[:12] for i in earlier} == {f"{millis:012x}"}
    assert max(earlier) < min(later)
    assert len(set(earlier + later)) == 100


async def test_tail_rejects_batch_limit_below_one(event_log: EventLog) -> None:
    """A tail that could never yield anything is refused up front."""
    generator = tail(event_log, 0, batch_limit=0)

    with pytest.raises(ValueError) as caught:
        await generator.__anext__()

    assert str(caught.value) == "batch_limit must be at least 1, not 0"
