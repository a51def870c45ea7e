"""Read contract every backend passes: positions, streams, checkpoints, types."""

from __future__ import annotations

import pytest

from eventlog import EventLog, NewEvent, verify
from eventlog.schemas import decode_payload, payload_as_builtins
from tests.eventlog.support import event, event_ids, numbered, payload, positions


async def test_read_returns_event_at_position(event_log: EventLog) -> None:
    """``read`` finds each position and returns None around the log."""
    sent = numbered(3)
    await event_log.append("s", sent)

    found = [await event_log.read(p) for p in (1, 2, 3)]

    assert [e.event_id if e else None for e in found] == event_ids(sent)
    assert await event_log.read(0) is None
    assert await event_log.read(-1) is None


async def test_read_past_head_returns_none(event_log: EventLog) -> None:
    """Nothing is read beyond the committed head."""
    await event_log.append("s", numbered(2))

    beyond = [await event_log.read(p) for p in (3, 4, 1000)]

    assert beyond == [None, None, None]


async def test_read_all_pages_by_after_and_limit(event_log: EventLog) -> None:
    """``read_all`` returns at most ``limit`` events strictly after ``after``."""
    await event_log.append("a", numbered(4))
    await event_log.append("b", numbered(3))

    pages = [
        await event_log.read_all(after=0, limit=3),
        await event_log.read_all(after=3, limit=3),
        await event_log.read_all(after=6, limit=3),
        await event_log.read_all(after=7, limit=3),
        await event_log.read_all(after=2, limit=0),
        await event_log.read_all(after=50),
    ]

    assert [positions(page) for page in pages] == [
        [1, 2, 3],
        [4, 5, 6],
        [7],
        [],
        [],
        [],
    ]


async def test_read_all_negative_after_is_rejected(event_log: EventLog) -> None:
    """A negative position is a caller's mistake, not an empty read."""
    with pytest.raises(ValueError) as caught:
        await event_log.read_all(after=-1)

    assert str(caught.value) == "after must be a position >= 0, not -1"


async def test_read_stream_pages_by_version(event_log: EventLog) -> None:
    """``read_stream`` walks one stream's versions, skipping other streams."""
    for n in range(5):
        await event_log.append("s", [event({"n": n})])
        await event_log.append("other", [event({"n": n})])

    pages = [
        await event_log.read_stream("s", 1, 2),
        await event_log.read_stream("s", 3, 2),
        await event_log.read_stream("s", 5, 2),
        await event_log.read_stream("s", 6, 2),
        await event_log.read_stream("s", 0, 10),
        await event_log.read_stream("s", 2, 0),
        await event_log.read_stream("missing"),
    ]

    assert [[e.version for e in page] for page in pages] == [
        [1, 2],
        [3, 4],
        [5],
        [],
        [1, 2, 3, 4, 5],
        [],
        [],
    ]
    assert positions(pages[4]) == [1, 3, 5, 7, 9]
    assert {e.stream for e in pages[4]} == {"s"}


async def test_read_stream_does_not_mix_prefixed_names(event_log: EventLog) -> None:
    """Streams whose names share a prefix stay apart."""
    await event_log.append("job-1", [event("short")])
    await event_log.append("job-10", [event("long")])
    await event_log.append("job-1", [event("short again")])

    short = await event_log.read_stream("job-1")
    long = await event_log.read_stream("job-10")

    assert [payload_as_builtins(e) for e in short] == ["short", "short again"]
    assert [payload_as_builtins(e) for e in long] == ["long"]


async def test_checkpoint_round_trips_and_overwrites(event_log: EventLog) -> None:
    """A saved checkpoint reads back; saving again replaces it."""
    await event_log.append("s", numbered(5))

    before = await event_log.checkpoint("jobs")
    await event_log.save_checkpoint("jobs", 3)
    first = await event_log.checkpoint("jobs")
    await event_log.save_checkpoint("jobs", 5)
    await event_log.save_checkpoint("usage", 0)

    assert (before, first) == (0, 3)
    assert await event_log.checkpoint("jobs") == 5
    assert await event_log.checkpoint("usage") == 0
    assert await event_log.checkpoint("never") == 0
    assert event_log.head == 5


@pytest.mark.parametrize(
    ("name", "position", "message"),
    [
        ("", 1, "a checkpoint needs a name and a position >= 0"),
        ("jobs", -1, "a checkpoint needs a name and a position >= 0"),
        ("x" * 503, 1, "a checkpoint name has at most 502 bytes"),
    ],
)
async def test_checkpoint_with_bad_name_or_position_is_rejected(
    event_log: EventLog, name: str, position: int, message: str
) -> None:
    """Checkpoints need a usable name and a non-negative position."""
    with pytest.raises(ValueError) as caught:
        await event_log.save_checkpoint(name, position)

    assert str(caught.value) == message


async def test_checkpoint_with_longest_name_round_trips(event_log: EventLog) -> None:
    """A checkpoint name of exactly the byte limit is stored on every backend."""
    name = "x" * 502

    await event_log.save_checkpoint(name, 7)

    assert await event_log.checkpoint(name) == 7


async def test_unknown_event_type_is_read_and_verified_but_not_decoded(
    event_log: EventLog,
) -> None:
    """A type this build does not know is skipped by decoding, not by the log."""
    future = NewEvent(type="future.thing_happened", data=payload({"shape": "new"}))
    await event_log.append("s", [event("known"), future])

    stored = await event_log.read(2)
    report = verify(event_log.storage)

    assert stored is not None
    assert (stored.type, stored.event_id) == ("future.thing_happened", future.event_id)
    assert decode_payload(stored) is None
    assert payload_as_builtins(stored) == {"shape": "new"}
    assert (report.ok, report.events, report.head) == (True, 2, 2)


async def test_verify_on_clean_log_reports_head_and_count(
    event_log: EventLog,
) -> None:
    """A log written only through append verifies, naming its head and hash."""
    await event_log.append("a", numbered(3))
    await event_log.append("b", numbered(2))

    report = verify(event_log.storage)

    assert report.ok
    assert (report.head, report.events, report.head_hash) == (
        5,
        5,
        event_log.head_hash,
    )
    assert (report.first_bad_position, report.problem) == (None, "")


async def test_verify_on_empty_log_is_ok(event_log: EventLog) -> None:
    """An empty log verifies with head 0."""
    report = verify(event_log.storage)

    assert (report.ok, report.head, report.events) == (True, 0, 0)
    assert report.head_hash == bytes(32)


@pytest.mark.parametrize(("after", "limit"), [(0, 10), (2, 3), (6, 5), (7, 1)])
async def test_checked_read_of_an_intact_log_equals_the_plain_read(
    event_log: EventLog, after: int, limit: int
) -> None:
    """Checking every record against the chain changes nothing when all is well."""
    await event_log.append("a", numbered(4))
    await event_log.append("b", numbered(3))
    storage = event_log.storage

    checked = storage.read_log_checked(after, limit, event_log.head)

    assert checked == storage.read_log(after, limit, event_log.head)
    assert positions(checked) == list(range(after + 1, min(7, after + limit) + 1))
