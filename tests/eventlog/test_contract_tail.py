"""Tail contract every backend passes: catch-up, live follow, ring, head, close."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing

from eventlog import EventLog, LogClosedError, RecordedEvent
from eventlog.storage import Storage
from tests.eventlog.support import (
    TIMEOUT,
    GatedStorage,
    collect_tail,
    event,
    flatten,
    numbered,
    positions,
    running_log,
    tail,
)


async def test_tail_from_zero_yields_history_then_live_events(
    event_log: EventLog,
) -> None:
    """A tail from 0 replays everything, then follows new appends in order."""
    await event_log.append("s", numbered(3))
    seen: list[RecordedEvent] = []

    async def follow() -> None:
        seen.extend(flatten(await collect_tail(event_log, 0, 6)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow)
        await trio.testing.wait_all_tasks_blocked()
        await event_log.append("t", numbered(2))
        await event_log.append("s", [event()])

    assert positions(seen) == [1, 2, 3, 4, 5, 6]
    assert [(e.stream, e.version) for e in seen[2:5]] == [("s", 3), ("t", 1), ("t", 2)]


async def test_tail_from_middle_yields_exact_suffix(event_log: EventLog) -> None:
    """A tail from position k starts at k+1."""
    await event_log.append("s", numbered(7))

    batches = await collect_tail(event_log, 4, 7)

    assert positions(flatten(batches)) == [5, 6, 7]


async def test_tail_from_head_yields_only_new_events(event_log: EventLog) -> None:
    """A tail from the head waits and then yields just what comes next."""
    await event_log.append("s", numbered(3))
    seen: list[RecordedEvent] = []

    async def follow() -> None:
        seen.extend(flatten(await collect_tail(event_log, 3, 4)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow)
        await trio.testing.wait_all_tasks_blocked()
        nothing_yet = list(seen)
        fresh = event("fresh")
        await event_log.append("s", [fresh])

    assert nothing_yet == []
    assert [(e.position, e.event_id) for e in seen] == [(4, fresh.event_id)]


async def test_tail_respects_batch_limit(event_log: EventLog) -> None:
    """No yielded batch is larger than ``batch_limit``."""
    await event_log.append("s", numbered(7))

    batches = await collect_tail(event_log, 0, 7, batch_limit=3)

    assert [positions(b) for b in batches] == [[1, 2, 3], [4, 5, 6], [7]]


@pytest.mark.parametrize("ring_size", [1, 4])
async def test_tail_across_ring_eviction_yields_exact_suffix(
    make_log_storage: Callable[[], Storage], ring_size: int
) -> None:
    """A tailer that falls behind the ring reads history and loses nothing."""
    async with running_log(make_log_storage(), ring_size=ring_size) as event_log:
        await event_log.append("s", numbered(3))
        generator = tail(event_log, 1, batch_limit=2)
        try:
            with trio.fail_after(TIMEOUT):
                first = await generator.__anext__()
                for n in range(10):
                    await event_log.append(f"s{n % 3}", numbered(2))
                rest: list[RecordedEvent] = []
                while not rest or rest[-1].position < event_log.head:
                    rest.extend(await generator.__anext__())
        finally:
            await generator.aclose()

    assert positions(first) == [2, 3]
    assert positions(rest) == list(range(4, 24))


async def test_tail_live_with_small_ring_yields_every_event_once(
    make_log_storage: Callable[[], Storage],
) -> None:
    """Concurrent producers and a small ring: the tailer sees each event once."""
    async with running_log(make_log_storage(), ring_size=3) as event_log:
        seen: list[RecordedEvent] = []

        async def produce(n: int) -> None:
            for _ in range(10):
                await event_log.append(f"p{n}", numbered(1 + n % 3))

        async def follow() -> None:
            seen.extend(flatten(await collect_tail(event_log, 0, 90, batch_limit=5)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            for n in range(5):
                nursery.start_soon(produce, n)

    assert positions(seen) == list(range(1, 91))
    for n in range(5):
        versions = [e.version for e in seen if e.stream == f"p{n}"]
        assert versions == list(range(1, 10 * (1 + n % 3) + 1))


async def test_tail_never_yields_past_published_head(
    make_log_storage: Callable[[], Storage],
) -> None:
    """Events in storage but not yet published stay invisible to tails and reads."""
    storage = GatedStorage(make_log_storage())
    seen: list[RecordedEvent] = []
    async with running_log(storage) as event_log:

        async def follow() -> None:
            seen.extend(flatten(await collect_tail(event_log, 0, 1)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            nursery.start_soon(event_log.append, "s", [event()])
            await storage.wait_reached()
            await trio.testing.wait_all_tasks_blocked()
            in_storage = storage.inner.head()[0]
            published = (event_log.head, await event_log.read(1), list(seen))
            storage.release()

    assert in_storage == 1
    assert published == (0, None, [])
    assert positions(seen) == [1]


async def test_tail_waiting_at_head_ends_when_log_closes(event_log: EventLog) -> None:
    """A tailer parked at the head is told the log closed instead of hanging."""
    await event_log.append("s", [event()])
    errors: list[LogClosedError] = []

    async def follow() -> None:
        try:
            await collect_tail(event_log, 1, 2)
        except LogClosedError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow)
        await trio.testing.wait_all_tasks_blocked()
        event_log.close()

    assert [str(e) for e in errors] == ["the event log was closed"]


async def test_tail_negative_after_is_rejected(event_log: EventLog) -> None:
    """A tail cannot start before the first position."""
    with pytest.raises(ValueError) as caught:
        await collect_tail(event_log, -1, 1)

    assert str(caught.value) == "after must be a position >= 0, not -1"
