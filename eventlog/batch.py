"""Validation and sealing of one group-commit batch, shared by every backend.

The writer hands a backend a batch of append requests. Inside its write
transaction the backend calls :func:`plan_batch` with a view of the committed
state; the plan says which requests are accepted (with their sealed records)
and which fail alone. A rejected request never reaches the transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import msgspec
from outcome import Error
from trio.lowlevel import Abort, Task, reschedule

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


class AppendRequest(msgspec.Struct):
    """One caller's append, waiting in the writer's queue.

    ``waiter`` is the trio task parked until the append has an outcome; it
    is ``None`` once the caller stopped waiting, or for a request that
    nobody waits on. A Struct rather than a dataclass: one is made per
    append, and a Struct's constructor runs in C.
    """

    stream: str
    events: tuple[NewEvent, ...]
    expected: Expected
    waiter: Task | None = None
    result: AppendResult | None = None
    error: BaseException | None = None

    def abandon(self, _: object) -> Abort:
        """The waiter was cancelled: the append goes on, unacknowledged."""
        self.waiter = None
        return Abort.SUCCEEDED

    def fail(self, error: BaseException) -> None:
        """Give the request ``error`` as its outcome and wake the waiter."""
        self.result = None
        self.error = error
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            reschedule(waiter, Error(error))


class CommittedView(Protocol):
    """Read access to committed state from inside a write transaction.

    The two mappings hold what the backend keeps in memory (all of it, or
    the entries above its index mark): the batch looks there first, with no
    call, and asks the methods only for what they lack.
    """

    @property
    def recent_versions(self) -> Mapping[str, int]:
        """Versions of streams the backend holds in memory."""
        ...

    @property
    def recent_ids(self) -> Mapping[bytes, int]:
        """Positions of event ids the backend holds in memory."""
        ...

    def stream_version(self, stream: str) -> int:
        """Current version of ``stream`` (0 when it has no events)."""
        ...

    def is_stored(self, event_key: bytes) -> bool:
        """Whether ``event_key`` is stored beyond :attr:`recent_ids`."""
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
    # locally once, one-event appends (most of them) skip the general
    # bookkeeping, and the envelope is built with positional arguments in
    # field order.
    batch_ids: dict[bytes, RecordedEvent] = {}
    versions = plan.stream_versions
    events, records, keys = plan.events, plan.records, plan.keys
    encode, sha256, raw = _encoder.encode, hashlib.sha256, msgspec.Raw
    fromhex = bytes.fromhex
    recent_versions, recent_ids = view.recent_versions, view.recent_ids
    is_stored = view.is_stored
    any_version = ExpectedVersion.ANY
    position = head
    prev_hash = head_hash

    for request in requests:
        stream = request.stream
        new_events = request.events
        try:
            if len(new_events) == 1:
                new = new_events[0]
                event_id = new.event_id
                # ``_event_key`` inlined for plain hex ids, the usual kind;
                # anything else, malformed ids included, takes the full path.
                try:
                    key = fromhex(event_id) if len(event_id) == 32 else b""
                except (TypeError, ValueError):
                    key = b""
                if len(key) != 16:
                    key = _event_key(event_id)
                if key in batch_ids or key in recent_ids or is_stored(key):
                    request.result = _stored_result(request, [key], view, batch_ids)
                    continue
                request_keys = [key]
            else:
                request_keys = _parse_keys(new_events)
                if any(
                    key in batch_ids or key in recent_ids or is_stored(key)
                    for key in request_keys
                ):
                    request.result = _stored_result(
                        request, request_keys, view, batch_ids
                    )
                    continue
            version = versions.get(stream)
            if version is None:
                version = recent_versions.get(stream)
                if version is None:
                    version = view.stream_version(stream)
            if request.expected is not any_version:
                _check_expected(stream, request.expected, version)
        except AppendRejectedError as exc:
            request.error = exc
            continue

        first = position + 1
        # Keys by index rather than through ``zip(..., strict=True)``, whose
        # keyword argument makes building it cost more than the loop it drives.
        for index, new in enumerate(new_events):
            key = request_keys[index]
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


def _parse_keys(events: tuple[NewEvent, ...]) -> list[bytes]:
    """The 16-byte keys of an append's event ids, which must be distinct."""
    keys = [_event_key(new.event_id) for new in events]
    if len(set(keys)) != len(keys):
        seen: set[bytes] = set()
        for new, key in zip(events, keys, strict=True):
            if key in seen:
                raise InvalidAppendError(
                    f"event id {new.event_id} appears twice in one append"
                )
            seen.add(key)
    return keys


def _stored_result(
    request: AppendRequest,
    request_keys: list[bytes],
    view: CommittedView,
    batch_ids: dict[bytes, RecordedEvent],
) -> AppendResult:
    """The original result of a retried append, some of whose ids are stored.

    Raises:
        IdempotencyConflictError: an id is stored with other content, or only
            some of the ids are stored, so this cannot be a retry.
    """
    found: list[RecordedEvent] = []
    for new, key in zip(request.events, request_keys, strict=True):
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
    if len(found) != len(request.events):
        # Some ids are stored and some are not. Appends are atomic, so this
        # cannot be a retry of one earlier append: the ids were reused.
        first = found[0]
        raise IdempotencyConflictError(
            first.event_id, first.position, "by an append with other events"
        )
    return AppendResult(tuple(e.position for e in found), found[-1].version)


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
