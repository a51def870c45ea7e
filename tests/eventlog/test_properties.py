"""Properties of the log under arbitrary concurrent appends, on both backends."""

from __future__ import annotations

import math
import tempfile
import uuid
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from eventlog import (
    AppendResult,
    EventLog,
    ExpectedVersion,
    LmdbStorage,
    MemoryStorage,
    NewEvent,
    RecordedEvent,
    WrongExpectedVersionError,
    verify,
)
from eventlog.envelope import Expected
from eventlog.lmdb_storage import INDEX_BATCH
from eventlog.log import RING_SIZE
from eventlog.storage import Storage
from tests.eventlog.support import (
    TIMEOUT,
    collect_tail,
    event,
    flatten,
    numbered,
    positions,
    read_everything,
    running_log,
    tail,
)
from tests.strategies import AppendStep, append_programs, new_events, stream_names

PROPERTY_SETTINGS = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one append step asked for and what the log answered."""

    step: AppendStep
    events: tuple[NewEvent, ...]
    result: AppendResult | None
    error: WrongExpectedVersionError | None
    retried: AppendResult | None = None


@settings(PROPERTY_SETTINGS, max_examples=40)
@given(
    program=append_programs(),
    prefill=st.integers(min_value=0, max_value=6),
    ring_size=st.sampled_from([1, 3, 16, RING_SIZE]),
    data=st.data(),
)
async def test_log_concurrent_appends_on_memory_keep_every_promise(
    program: list[list[AppendStep]], prefill: int, ring_size: int, data: st.DataObject
) -> None:
    """Any interleaving: gapless, contiguous, as acknowledged, chained, tailable."""
    await check_program(MemoryStorage(), program, prefill, ring_size, data)


@settings(PROPERTY_SETTINGS, max_examples=12)
@given(
    program=append_programs(max_producers=5, max_steps=4),
    prefill=st.integers(min_value=0, max_value=3),
    ring_size=st.sampled_from([2, RING_SIZE]),
    index_batch=st.sampled_from([1, 2, 5, INDEX_BATCH]),
    data=st.data(),
)
async def test_log_concurrent_appends_on_lmdb_keep_every_promise(
    program: list[list[AppendStep]],
    prefill: int,
    ring_size: int,
    index_batch: int,
    data: st.DataObject,
) -> None:
    """The same promises hold with LMDB underneath, and after reopening."""
    with tempfile.TemporaryDirectory() as directory:
        storage = LmdbStorage(Path(directory), index_batch=index_batch)
        await check_program(storage, program, prefill, ring_size, data)
        storage = LmdbStorage(Path(directory))
        try:
            report = verify(storage)
        finally:
            storage.close()

    assert report.ok, report.problem


@settings(PROPERTY_SETTINGS, max_examples=30)
@given(
    events=st.lists(
        new_events(),
        min_size=1,
        max_size=10,
        unique_by=lambda e: uuid.UUID(e.event_id).int,
    ),
    streams=st.lists(stream_names(), min_size=1, max_size=3),
    batch_size=st.integers(min_value=1, max_value=4),
    lmdb=st.booleans(),
)
async def test_log_any_event_round_trips_exactly(
    events: list[NewEvent], streams: list[str], batch_size: int, lmdb: bool
) -> None:
    """Every field of every event reads back exactly as sent, on both backends."""
    batches = [
        (streams[n % len(streams)], events[i : i + batch_size])
        for n, i in enumerate(range(0, len(events), batch_size))
    ]
    sent = [(stream, e) for stream, batch in batches for e in batch]

    with tempfile.TemporaryDirectory() as directory:
        storage: Storage = LmdbStorage(Path(directory)) if lmdb else MemoryStorage()
        async with running_log(storage) as event_log:
            for stream, batch in batches:
                await event_log.append(stream, batch)
            stored = await read_everything(event_log)

    assert [
        (
            e.stream,
            e.type,
            e.event_id,
            e.actor,
            e.workspace,
            e.correlation_id,
            e.causation_id,
            bytes(e.data),
        )
        for e in stored
    ] == [
        (
            stream,
            e.type,
            e.event_id,
            e.actor,
            e.workspace,
            e.correlation_id,
            e.causation_id,
            e.data,
        )
        for stream, e in sent
    ]
    assert positions(stored) == list(range(1, len(sent) + 1))


async def check_program(
    storage: Storage,
    program: list[list[AppendStep]],
    prefill: int,
    ring_size: int,
    data: st.DataObject,
) -> None:
    """Run ``program`` with a live tailer and check every promise on the result."""
    async with running_log(storage, ring_size=ring_size) as event_log:
        if prefill:
            await event_log.append("prefill", numbered(prefill))
        start = data.draw(st.integers(min_value=0, max_value=prefill), label="start")
        outcomes: list[Outcome] = []
        live: list[RecordedEvent] = []
        send, receive = trio.open_memory_channel[list[RecordedEvent]](math.inf)

        async def follow() -> None:
            async with aclosing(tail(event_log, start)) as batches:
                async for batch in batches:
                    send.send_nowait(batch)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            async with trio.open_nursery() as producers:
                for index, steps in enumerate(program):
                    producers.start_soon(produce, event_log, index, steps, outcomes)
            with trio.fail_after(TIMEOUT):
                while (live[-1].position if live else start) < event_log.head:
                    live.extend(await receive.receive())
            nursery.cancel_scope.cancel()

        stored = await read_everything(event_log)
        check_outcomes(stored, outcomes, prefill)
        assert live == stored[start:]
        report = verify(event_log.storage)
        assert report.ok, report.problem
        assert (report.events, report.head_hash) == (len(stored), event_log.head_hash)
        await check_tail_from_anywhere(event_log, stored, data)


async def produce(
    event_log: EventLog, index: int, steps: list[AppendStep], out: list[Outcome]
) -> None:
    """Run one producer's steps in order, yielding between them as drawn."""
    for number, step in enumerate(steps):
        for _ in range(step.pause):
            await trio.lowlevel.checkpoint()
        events = tuple(
            event(value, event_id=f"{index:08x}{number:08x}{n:016x}")
            for n, value in enumerate(step.values)
        )
        if isinstance(step.expected, str):
            # "current": read the version first; a racing producer may still
            # move the stream before this append is committed.
            expected: Expected = await event_log.stream_version(step.stream)
        else:
            expected = step.expected
        try:
            result = await event_log.append(step.stream, events, expected)
        except WrongExpectedVersionError as exc:
            out.append(Outcome(step, events, None, exc))
            continue
        retried = None
        if step.retry:
            retried = await event_log.append(step.stream, events, 0)
        out.append(Outcome(step, events, result, None, retried))


def check_outcomes(
    stored: list[RecordedEvent], outcomes: list[Outcome], prefill: int
) -> None:
    """The log holds exactly the acknowledged appends, in contiguous streams."""
    assert positions(stored) == list(range(1, len(stored) + 1))
    versions: dict[str, int] = {}
    for stored_event in stored:
        versions[stored_event.stream] = versions.get(stored_event.stream, 0) + 1
        assert stored_event.version == versions[stored_event.stream]

    acknowledged = set(range(1, prefill + 1))
    by_id = {e.event_id: e for e in stored}
    for outcome in outcomes:
        ids = [e.event_id for e in outcome.events]
        if outcome.result is None:
            assert outcome.error is not None
            assert outcome.step.expected is not ExpectedVersion.ANY
            assert outcome.error.stream == outcome.step.stream
            assert not any(i in by_id for i in ids)
            continue
        landed = [stored[p - 1] for p in outcome.result.positions]
        assert [e.event_id for e in landed] == ids
        assert [bytes(e.data) for e in landed] == [e.data for e in outcome.events]
        assert {e.stream for e in landed} == {outcome.step.stream}
        first = landed[0].version
        assert [e.version for e in landed] == list(range(first, first + len(ids)))
        assert outcome.result.stream_version == landed[-1].version
        if outcome.step.retry:
            assert outcome.retried == outcome.result
        acknowledged.update(outcome.result.positions)
    assert acknowledged == set(range(1, len(stored) + 1))
    rejected = sum(outcome.result is None for outcome in outcomes)
    note(f"rejected appends: {min(rejected, 3)}{'+' if rejected > 3 else ''}")


async def check_tail_from_anywhere(
    event_log: EventLog, stored: list[RecordedEvent], data: st.DataObject
) -> None:
    """A tail from any position yields exactly the suffix, then new events."""
    head = len(stored)
    after = data.draw(st.integers(min_value=0, max_value=head), label="after")
    limit = data.draw(st.integers(min_value=1, max_value=8), label="batch_limit")

    batches = await collect_tail(event_log, after, head, batch_limit=limit)
    assert all(0 < len(batch) <= limit for batch in batches)
    assert flatten(batches) == stored[after:]

    extra = event("after the program")
    seen: list[RecordedEvent] = []

    async def follow() -> None:
        seen.extend(flatten(await collect_tail(event_log, head, head + 1)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow)
        await trio.testing.wait_all_tasks_blocked()
        await event_log.append("extra", [extra])
    assert [(e.position, e.event_id) for e in seen] == [(head + 1, extra.event_id)]
