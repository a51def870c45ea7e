"""Idempotency contract every backend passes: retries, reused and malformed ids.

Each test runs once per backend through the ``event_log`` fixture.
"""

from __future__ import annotations

import uuid

import pytest
import trio

from eventlog import (
    AppendResult,
    EventLog,
    ExpectedVersion,
    IdempotencyConflictError,
    InvalidAppendError,
)
from tests.eventlog.support import event, numbered


async def test_append_retry_with_same_ids_returns_original_result(
    event_log: EventLog,
) -> None:
    """Resending an acknowledged append is a no-op that answers as the first time."""
    batch = numbered(3)
    first = await event_log.append("s", batch, ExpectedVersion.NO_STREAM)
    await event_log.append("s", [event()])

    again = await event_log.append("s", batch, ExpectedVersion.NO_STREAM)
    once_more = await event_log.append("s", list(batch), 0)

    assert again == first == once_more == AppendResult((1, 2, 3), 3)
    assert event_log.head == 4


async def test_append_retry_accepts_other_spelling_of_same_uuid(
    event_log: EventLog,
) -> None:
    """An id is a UUID: hex and hyphenated spellings name the same event."""
    ident = uuid.uuid4()
    await event_log.append("s", [event(event_id=ident.hex)])

    again = await event_log.append("s", [event(event_id=str(ident).upper())])

    assert again == AppendResult((1,), 1)
    assert event_log.head == 1


@pytest.mark.parametrize(
    "change",
    [
        {"stream": "t"},
        {"value": "other"},
        {"type": "test.changed"},
        {"actor": "user"},
        {"workspace": "ws-2"},
        {"correlation_id": "c2"},
        {"causation_id": "c3"},
    ],
)
async def test_append_reused_id_with_other_content_conflicts(
    event_log: EventLog, change: dict[str, str]
) -> None:
    """An id already stored cannot come back with any field changed."""
    ident = "5f0c6a8e-2b8e-4f4e-8a53-0d8c7a1b9e21"
    await event_log.append("s", [event(event_id=ident)])
    fields = {"event_id": ident} | {
        k: v for k, v in change.items() if k not in ("stream", "value")
    }
    reused = event(change.get("value", "hello"), **fields)

    with pytest.raises(IdempotencyConflictError) as caught:
        await event_log.append(change.get("stream", "s"), [reused])

    assert str(caught.value) == (
        f"event id {ident} is already stored at position 1 with different content"
    )
    assert (caught.value.event_id, caught.value.position) == (ident, 1)
    assert event_log.head == 1


async def test_append_partial_reuse_of_ids_conflicts(event_log: EventLog) -> None:
    """An append mixing stored and new ids is not a retry and is refused."""
    await event_log.append("s", [event()])
    stored = numbered(2)
    await event_log.append("s", stored)

    with pytest.raises(IdempotencyConflictError) as caught:
        await event_log.append("s", [stored[1], event("new")])

    assert str(caught.value) == (
        f"event id {stored[1].event_id} is already stored at position 3 "
        "by an append with other events"
    )
    assert event_log.head == 3


async def test_append_duplicate_ids_in_one_append_are_rejected(
    event_log: EventLog,
) -> None:
    """The same id twice in one append is malformed."""
    ident = uuid.uuid4().hex
    twice = [event("a", event_id=ident), event("b", event_id=ident)]

    with pytest.raises(InvalidAppendError) as caught:
        await event_log.append("s", twice)

    assert str(caught.value) == f"event id {ident} appears twice in one append"
    assert event_log.head == 0


@pytest.mark.parametrize(
    "bad_id",
    ["nope", "z" * 32, "0011223344556677 8899aabbccddeef", "-" * 36, ""],
)
async def test_append_id_that_is_not_a_uuid_is_rejected(
    event_log: EventLog, bad_id: str
) -> None:
    """Event ids must be UUIDs so the id index has fixed-size keys.

    A bad id fails its own append only: the next append commits.
    """
    with pytest.raises(InvalidAppendError) as caught:
        await event_log.append("s", [event(event_id=bad_id)])
    after = await event_log.append("s", [event("next")])

    assert str(caught.value) == f"event id {bad_id!r} is not a UUID"
    assert after == AppendResult((1,), 1)


async def test_append_same_events_twice_in_one_batch_stores_them_once(
    event_log: EventLog,
) -> None:
    """A retry racing its original inside one batch gets the same answer."""
    batch = numbered(2)
    results: list[AppendResult] = []

    async def submit() -> None:
        results.append(await event_log.append("s", batch, ExpectedVersion.NO_STREAM))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(submit)
        nursery.start_soon(submit)

    assert results == [AppendResult((1, 2), 2)] * 2
    assert event_log.head == 2
