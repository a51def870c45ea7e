"""The SHA-256 hash chain and the byte layout of a stored log record.

A stored record is ``own_hash (32 bytes) || envelope (msgpack)``, where
``own_hash = sha256(prev_hash || envelope)`` and the envelope itself carries
``prev_hash``. Changing any byte of a record therefore breaks its own hash,
and removing or reordering records breaks the next record's ``prev_hash``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

import msgspec

from eventlog.envelope import RecordedEvent

HASH_SIZE: Final = 32

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(RecordedEvent)


def link(prev_hash: bytes, envelope: bytes) -> bytes:
    """Return the chain hash of an envelope that follows ``prev_hash``."""
    return hashlib.sha256(prev_hash + envelope).digest()


def seal(event: RecordedEvent) -> tuple[bytes, bytes]:
    """Encode an event as a stored record; return ``(record, own_hash)``."""
    envelope = _encoder.encode(event)
    own_hash = link(event.prev_hash, envelope)
    return own_hash + envelope, own_hash


def open_record(record: bytes | memoryview) -> RecordedEvent:
    """Decode a stored record's envelope without checking its hash.

    Raises:
        msgspec.DecodeError: the bytes are not an envelope.
    """
    # Slicing bytes copies the envelope once; decoding that copy is faster
    # than decoding through a memoryview, and the event's payload keeps a
    # plain bytes object alive instead of a memoryview the GC must track.
    return _decoder.decode(record[HASH_SIZE:])


def open_records(records: Iterable[bytes]) -> list[RecordedEvent]:
    """Decode many stored records, in order, like :func:`open_record`.

    Raises:
        msgspec.DecodeError: a record is not an envelope.
    """
    decode = _decoder.decode
    return [decode(record[HASH_SIZE:]) for record in records]


def is_intact(record: bytes) -> bool:
    """Whether a record's stored hash still matches its own bytes.

    Needs nothing but the record: its envelope names the hash it follows.
    """
    if len(record) <= HASH_SIZE:
        return False
    envelope = record[HASH_SIZE:]
    try:
        event = _decoder.decode(envelope)
    except msgspec.DecodeError:
        return False
    return link(event.prev_hash, envelope) == record[:HASH_SIZE]


def check_records(
    records: Iterable[tuple[int, bytes]], prev_hash: bytes
) -> list[RecordedEvent]:
    """Decode ``(position, record)`` pairs that follow ``prev_hash``, checking each.

    Raises:
        ChainBrokenError: at the first record that fails :func:`check_record`,
            or that is not at the position after the one before it.
    """
    events: list[RecordedEvent] = []
    expected: int | None = None
    for position, record in records:
        if expected is not None and position != expected:
            raise ChainBrokenError(expected, "position is missing")
        try:
            event, prev_hash = check_record(record, prev_hash)
        except ValueError as exc:
            raise ChainBrokenError(position, str(exc)) from None
        events.append(event)
        expected = position + 1
    return events


class ChainBrokenError(ValueError):
    """A record at ``position`` does not check out against the chain."""

    def __init__(self, position: int, problem: str) -> None:
        super().__init__(f"event {position}: {problem}")
        self.position = position
        self.problem = problem


def check_record(record: bytes, expected_prev: bytes) -> tuple[RecordedEvent, bytes]:
    """Decode a record and check it against the chain.

    Returns:
        The event and its own hash.

    Raises:
        ValueError: the record is truncated, undecodable, does not follow
            ``expected_prev``, or its stored hash does not match its bytes.
    """
    if len(record) <= HASH_SIZE:
        raise ValueError("record is truncated")
    stored_hash, envelope = record[:HASH_SIZE], record[HASH_SIZE:]
    try:
        event = _decoder.decode(envelope)
    except msgspec.DecodeError as exc:
        raise ValueError(f"envelope does not decode: {exc}") from None
    if event.prev_hash != expected_prev:
        raise ValueError("prev_hash does not match the previous event's hash")
    if link(expected_prev, envelope) != stored_hash:
        raise ValueError("stored hash does not match the event's bytes")
    return event, stored_hash
