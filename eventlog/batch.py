"""Validation and sealing of one group-commit batch, shared by every backend.

The writer hands a backend a batch of append requests. Inside its write
transaction the backend calls :func:`plan_batch` with a view of the committed
state; the plan says which requests are accepted (with their sealed records)
and which fail alone. A rejected request never reaches the transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from eventlog.envelope import (
    AppendResult,
    Expected,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    describe_expected,
    parse_event_id,
)
from eventlog.errors import (
    AppendRejectedError,
    IdempotencyConflictError,
    InvalidAppendError,
    WrongExpectedVersionError,
)

_encoder = msgspec.msgpack.Encoder()


@dataclass(slots=True, eq=False)
class AppendRequest:
    """One caller's append, waiting in the writer's queue."""

    stream: str
    events: tuple[NewEvent, ...]
    expected: Expected
    result: AppendResult | None = None
    error: BaseException | None = None


class CommittedView(Protocol):
    """Read access to committed state from inside a write transaction."""

    def stream_version(self, stream: str) -> int:
        """Current version of ``stream`` (0 when it has no events)."""
        ...

    def position_of(self, event_key: bytes) -> int | None:
        """Position of the event whose 16-byte id is ``event_key``, if stored."""
        ...

    def event_at(self, position: int) -> RecordedEvent:
        """The committed event at ``position``."""
        ...


@dataclass(slots=True)
class BatchPlan:
    """What a backend must write for one batch.

    The accepted events, their stored records and their 16-byte id keys are
    parallel lists, in position order.
    """

    events: list[RecordedEvent] = field(default_factory=list)
    records: list[bytes] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    stream_versions: dict[str, int] = field(default_factory=dict)
    head: int = 0
    head_hash: bytes = b""


def plan_batch(
    requests: list[AppendRequest],
    view: CommittedView,
    head: int,
    head_hash: bytes,
    now_ns: int,
) -> BatchPlan:
    """Validate and seal ``requests`` in order on top of the committed state.

    Each request gets either ``result`` or ``error`` set. Accepted requests
    see the effects of earlier accepted requests of the same batch.
    """
    plan = BatchPlan(head=head, head_hash=head_hash)
    # The hot loop runs once per event of every append: names are bound
    # locally once, and the envelope is built with positional arguments in
    # field order.
    batch_ids: dict[bytes, RecordedEvent] = {}
    versions = plan.stream_versions
    events, records, keys = plan.events, plan.records, plan.keys
    encode, sha256, raw = _encoder.encode, hashlib.sha256, msgspec.Raw
    any_version = ExpectedVersion.ANY
    position = head
    prev_hash = head_hash

    for request in requests:
        stream = request.stream
        try:
            request_keys, existing = _find_existing(request, view, batch_ids)
            if existing is not None:
                request.result = existing
                continue
            version = versions.get(stream)
            if version is None:
                version = view.stream_version(stream)
            if request.expected is not any_version:
                _check_expected(stream, request.expected, version)
        except AppendRejectedError as exc:
            request.error = exc
            continue

        first = position + 1
        for new, key in zip(request.events, request_keys, strict=True):
            position += 1
            version += 1
            event = RecordedEvent(
                position,
                stream,
                version,
                new.type,
                new.event_id,
                now_ns,
                new.actor,
                new.workspace,
                new.correlation_id,
                new.causation_id,
                prev_hash,
                raw(new.data),
            )
            # The record layout and chain link of ``chain.seal``, inlined.
            envelope = encode(event)
            prev_hash = sha256(prev_hash + envelope).digest()
            events.append(event)
            records.append(prev_hash + envelope)
            keys.append(key)
            batch_ids[key] = event
        versions[stream] = version
        request.result = AppendResult(
            (position,) if first == position else tuple(range(first, position + 1)),
            version,
        )

    plan.head, plan.head_hash = position, prev_hash
    return plan


def _event_key(event_id: str) -> bytes:
    """Parse an event id; plain and hyphenated hex skip the ``uuid`` module.

    For a string of exactly 32 hex digits ``bytes.fromhex`` and
    ``uuid.UUID`` agree; anything else takes the general path.
    """
    if type(event_id) is str:
        digits = event_id.replace("-", "") if len(event_id) == 36 else event_id
        if len(digits) == 32:
            try:
                key = bytes.fromhex(digits)
            except ValueError:
                key = b""
            if len(key) == 16:
                return key
    try:
        return parse_event_id(event_id)
    except ValueError:
        raise InvalidAppendError(f"event id {event_id!r} is not a UUID") from None


def _find_existing(
    request: AppendRequest,
    view: CommittedView,
    batch_ids: dict[bytes, RecordedEvent],
) -> tuple[list[bytes], AppendResult | None]:
    """Parse the request's ids; return them and the original result of a retry.

    The result is not ``None`` only if this exact append is already stored.
    """
    if len(request.events) == 1:
        # Most appends carry one event: no duplicate or partial reuse to
        # look for, so skip the bookkeeping of the general loop below.
        new = request.events[0]
        key = _event_key(new.event_id)
        stored = batch_ids.get(key)
        if stored is None:
            position = view.position_of(key)
            if position is None:
                return [key], None
            stored = view.event_at(position)
        if not _same_content(request.stream, new, stored):
            raise IdempotencyConflictError(new.event_id, stored.position)
        return [key], AppendResult((stored.position,), stored.version)

    keys: list[bytes] = []
    seen: set[bytes] = set()
    found: list[RecordedEvent] = []
    for new in request.events:
        key = _event_key(new.event_id)
        if key in seen:
            raise InvalidAppendError(
                f"event id {new.event_id} appears twice in one append"
            )
        seen.add(key)
        keys.append(key)
        stored = batch_ids.get(key)
        if stored is None:
            position = view.position_of(key)
            if position is not None:
                stored = view.event_at(position)
        if stored is None:
            continue
        if not _same_content(request.stream, new, stored):
            raise IdempotencyConflictError(new.event_id, stored.position)
        found.append(stored)

    if not found:
        return keys, None
    if len(found) != len(request.events):
        # Some ids are stored and some are not. Appends are atomic, so this
        # cannot be a retry of one earlier append: the ids were reused.
        first = found[0]
        raise IdempotencyConflictError(
            first.event_id, first.position, "by an append with other events"
        )
    return keys, AppendResult(tuple(e.position for e in found), found[-1].version)


def _same_content(stream: str, new: NewEvent, stored: RecordedEvent) -> bool:
    return (
        stored.stream == stream
        and stored.type == new.type
        and bytes(stored.data) == new.data
        and stored.actor == new.actor
        and stored.workspace == new.workspace
        and stored.correlation_id == new.correlation_id
        and stored.causation_id == new.causation_id
    )


def _check_expected(stream: str, expected: Expected, actual: int) -> None:
    if expected is ExpectedVersion.ANY:
        return
    wanted = 0 if expected is ExpectedVersion.NO_STREAM else expected
    if actual != wanted:
        raise WrongExpectedVersionError(stream, describe_expected(expected), actual)
