"""Append contract every backend passes: positions, versions, expectations, batches.

Each test runs once per backend through the ``event_log`` fixture.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import trio
import trio.testing

from eventlog import (
    AppendResult,
    EventLog,
    ExpectedVersion,
    InvalidAppendError,
    LogClosedError,
    NewEvent,
    WrongExpectedVersionError,
)
from eventlog.envelope import GENESIS_HASH, Expected
from eventlog.schemas import decode_payload, new_event
from eventlog.storage import Storage
from eventlog.vocabulary.system import RuntimeStarted
from tests.eventlog.support import (
    GatedStorage,
    collect_tail,
    event,
    numbered,
    positions,
    read_everything,
    running_log,
)


async def test_append_round_trip_keeps_every_field(event_log: EventLog) -> None:
    """An appended event reads back with exactly the fields it was given."""
    started = RuntimeStarted(runtime_id="rt_local", version="0.1.0", pid=4242)
    first = new_event(
        started,
        event_id="0b5c3e0e-8d1f-4a57-9a43-1f2a9d3b7c11",
        actor="user",
        workspace="ws-1",
        correlation_id="corr-1",
        causation_id="cause-1",
    )
    second = event({"k": [1, 2.5, "x", None]})
    before = time.time_ns()

    one = await event_log.append("$system", [first])
    hash_after_first = event_log.head_hash
    two = await event_log.append("$system", [second])
    after = time.time_ns()
    stored = await read_everything(event_log)

    assert one == AppendResult(positions=(1,), stream_version=1)
    assert two == AppendResult(positions=(2,), stream_version=2)
    assert [(e.position, e.stream, e.version, e.type, e.event_id) for e in stored] == [
        (1, "$system", 1, "runtime.started", "0b5c3e0e-8d1f-4a57-9a43-1f2a9d3b7c11"),
        (2, "$system", 2, "test.noted", second.event_id),
    ]
    head = stored[0]
    assert (head.actor, head.workspace, head.correlation_id, head.causation_id) == (
        "user",
        "ws-1",
        "corr-1",
        "cause-1",
    )
    assert (stored[1].actor, stored[1].workspace) == ("system", "")
    assert bytes(head.data) == first.data
    assert bytes(stored[1].data) == second.data
    assert decode_payload(head) == started
    assert head.prev_hash == GENESIS_HASH
    assert stored[1].prev_hash == hash_after_first
    assert before <= head.recorded_at_ns <= stored[1].recorded_at_ns <= after
    assert await event_log.read(1) == head


async def test_append_positions_are_gapless_from_one(event_log: EventLog) -> None:
    """Positions across streams and batch sizes run 1, 2, 3... with no gap."""
    results = []

    for stream, count in [("a", 1), ("b", 3), ("a", 2), ("c", 1), ("b", 1)]:
        results.append(await event_log.append(stream, numbered(count)))

    assert [r.positions for r in results] == [
        (1,),
        (2, 3, 4),
        (5, 6),
        (7,),
        (8,),
    ]
    assert positions(await read_everything(event_log)) == list(range(1, 9))
    assert event_log.head == 8


async def test_append_versions_are_contiguous_per_stream(event_log: EventLog) -> None:
    """Each stream counts its own versions from 1, interleaved or not."""
    for stream, count in [("a", 2), ("b", 1), ("a", 1), ("b", 3)]:
        await event_log.append(stream, numbered(count))

    stored = await read_everything(event_log)

    assert [(e.stream, e.version) for e in stored] == [
        ("a", 1),
        ("a", 2),
        ("b", 1),
        ("a", 3),
        ("b", 2),
        ("b", 3),
        ("b", 4),
    ]
    assert await event_log.stream_version("a") == 3
    assert await event_log.stream_version("b") == 4
    assert await event_log.stream_version("nobody") == 0


@pytest.mark.parametrize(
    ("expected", "result"),
    [
        (ExpectedVersion.ANY, AppendResult((3,), 3)),
        (2, AppendResult((3,), 3)),
    ],
)
async def test_append_expectation_that_holds_commits(
    event_log: EventLog, expected: Expected, result: AppendResult
) -> None:
    """ANY and the exact current version both let the append through."""
    await event_log.append("s", numbered(2))

    outcome = await event_log.append("s", [event()], expected)

    assert outcome == result


@pytest.mark.parametrize("expected", [ExpectedVersion.NO_STREAM, 0])
async def test_append_to_empty_stream_with_no_stream_or_zero_commits(
    event_log: EventLog, expected: Expected
) -> None:
    """NO_STREAM and 0 both mean the stream must be empty."""
    await event_log.append("other", [event()])

    outcome = await event_log.append("s", numbered(2), expected)

    assert outcome == AppendResult((2, 3), 2)


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        (ExpectedVersion.NO_STREAM, "stream 's' is at version 1, expected no stream"),
        (0, "stream 's' is at version 1, expected 0"),
        (2, "stream 's' is at version 1, expected 2"),
    ],
)
async def test_append_wrong_expected_version_is_rejected(
    event_log: EventLog, expected: Expected, message: str
) -> None:
    """A stream at another version refuses the append and writes nothing."""
    await event_log.append("s", [event()])

    with pytest.raises(WrongExpectedVersionError) as caught:
        await event_log.append("s", [event()], expected)

    assert str(caught.value) == message
    assert (caught.value.stream, caught.value.actual) == ("s", 1)
    assert event_log.head == 1


async def test_append_exact_version_on_missing_stream_is_rejected(
    event_log: EventLog,
) -> None:
    """Expecting version 3 of a stream that does not exist fails."""
    with pytest.raises(WrongExpectedVersionError) as caught:
        await event_log.append("fresh", [event()], 3)

    assert str(caught.value) == "stream 'fresh' is at version 0, expected 3"
    assert event_log.head == 0


@pytest.mark.parametrize(
    ("stream", "events", "expected", "message"),
    [
        (
            "",
            [event()],
            ExpectedVersion.ANY,
            "a stream name must be a non-empty string",
        ),
        (
            "a\x00b",
            [event()],
            ExpectedVersion.ANY,
            "stream name must have no NUL and at most 502 bytes",
        ),
        (
            "é" * 252,
            [event()],
            ExpectedVersion.ANY,
            "stream name must have no NUL and at most 502 bytes",
        ),
        ("s", [], ExpectedVersion.ANY, "an append needs at least one event"),
        (
            "s",
            [event()],
            -1,
            "expected version must be ANY, NO_STREAM or a version >= 0, not -1",
        ),
        (
            "s",
            [event()],
            True,
            "expected version must be ANY, NO_STREAM or a version >= 0, not True",
        ),
        (
            "s",
            [event()],
            "3",
            "expected version must be ANY, NO_STREAM or a version >= 0, not '3'",
        ),
        ("s", [NewEvent(type="", data=b"\x01")], 0, "every event needs a type"),
    ],
)
async def test_append_malformed_request_is_rejected(
    event_log: EventLog,
    stream: str,
    events: list[NewEvent],
    expected: Expected,
    message: str,
) -> None:
    """Bad names, no events, bad expectations and untyped events fail up front."""
    with pytest.raises(InvalidAppendError) as caught:
        await event_log.append(stream, events, expected)

    assert str(caught.value) == message
    assert event_log.head == 0


@pytest.mark.parametrize("data", [b"", b"\x01\x02", b"\xc1", b"\xa5abc"])
async def test_append_data_that_is_not_one_msgpack_value_is_rejected(
    event_log: EventLog, data: bytes
) -> None:
    """Empty, trailing, invalid or truncated payload bytes never reach the log."""
    bad = NewEvent(type="test.noted", data=data)

    with pytest.raises(InvalidAppendError) as caught:
        await event_log.append("s", [event(), bad])

    assert str(caught.value) == f"event {bad.event_id} data is not one msgpack value"
    assert event_log.head == 0


async def test_append_longest_stream_name_round_trips(event_log: EventLog) -> None:
    """A name of exactly the byte limit is stored and indexed on every backend."""
    stream = "é" * 251

    result = await event_log.append("s", [event()])
    longest = await event_log.append(stream, numbered(2))

    assert (result, longest) == (AppendResult((1,), 1), AppendResult((2, 3), 2))
    assert positions(await event_log.read_stream(stream)) == [2, 3]


async def test_append_conflict_fails_alone_while_batch_commits(
    event_log: EventLog,
) -> None:
    """One conflicting request in a group commit fails; its batch mates commit."""
    await event_log.append("taken", [event()])
    outcomes: dict[str, AppendResult | Exception] = {}

    async def submit(stream: str) -> None:
        try:
            outcomes[stream] = await event_log.append(
                stream, numbered(2), ExpectedVersion.NO_STREAM
            )
        except WrongExpectedVersionError as exc:
            outcomes[stream] = exc

    async with trio.open_nursery() as nursery:
        for stream in ["s0", "s1", "taken", "s2", "s3"]:
            nursery.start_soon(submit, stream)
    stored = await read_everything(event_log)

    conflict = outcomes.pop("taken")
    assert isinstance(conflict, WrongExpectedVersionError)
    assert str(conflict) == "stream 'taken' is at version 1, expected no stream"
    committed = [r for r in outcomes.values() if isinstance(r, AppendResult)]
    assert sorted(p for r in committed for p in r.positions) == list(range(2, 10))
    assert sorted(e.stream for e in stored[1:]) == [
        "s0",
        "s0",
        "s1",
        "s1",
        "s2",
        "s2",
        "s3",
        "s3",
    ]
    assert len({e.recorded_at_ns for e in stored[1:]}) == 1


async def test_append_racing_expectations_let_exactly_one_win(
    event_log: EventLog,
) -> None:
    """Five writers expecting version 0 of one stream: one commits, four fail."""
    wins: list[AppendResult] = []
    losses: list[str] = []

    async def submit(n: int) -> None:
        try:
            wins.append(await event_log.append("s", [event({"n": n})], 0))
        except WrongExpectedVersionError as exc:
            losses.append(str(exc))

    async with trio.open_nursery() as nursery:
        for n in range(5):
            nursery.start_soon(submit, n)

    assert wins == [AppendResult((1,), 1)]
    assert losses == ["stream 's' is at version 1, expected 0"] * 4
    assert event_log.head == 1


async def test_append_after_close_raises_log_closed(event_log: EventLog) -> None:
    """A closed log accepts nothing more."""
    await event_log.append("s", [event()])
    event_log.close()

    with pytest.raises(LogClosedError) as caught:
        await event_log.append("s", [event()])

    assert str(caught.value) == "the event log is not running"


async def test_append_queued_before_close_is_still_committed(
    make_log_storage: Callable[[], Storage],
) -> None:
    """Closing drains the queue: appends already submitted are acknowledged."""
    storage = GatedStorage(make_log_storage())
    results: list[AppendResult] = []

    async def submit(n: int) -> None:
        results.append(await event_log.append(f"s{n}", [event(n)]))

    async with running_log(storage) as event_log, trio.open_nursery() as nursery:
        nursery.start_soon(submit, 0)
        await storage.wait_reached()
        for n in range(1, 4):
            nursery.start_soon(submit, n)
        await trio.testing.wait_all_tasks_blocked()
        event_log.close()
        storage.release()

    assert sorted(r.positions for r in results) == [(1,), (2,), (3,), (4,)]


async def test_append_cancelled_waiter_still_has_event_committed(
    event_log: EventLog,
) -> None:
    """Cancelling the caller drops only the acknowledgement, not the append."""
    lost = event("cancelled but written")

    with trio.CancelScope() as scope:
        scope.cancel()
        await event_log.append("s", [lost])
    delivered = await collect_tail(event_log, 0, 1)

    assert scope.cancelled_caught
    assert [(e.position, e.event_id) for e in delivered[0]] == [(1, lost.event_id)]
    assert await event_log.append("s", [lost]) == AppendResult((1,), 1)
