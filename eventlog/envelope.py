"""The stored envelope, the events callers submit, and append outcomes.

An envelope is encoded as a msgpack array (field order is part of the format:
only append new fields, with defaults, at the end). Its payload stays
``msgspec.Raw`` until somebody asks for it, so a reader that does not know an
event type still reads, verifies and forwards the event.
"""

from __future__ import annotations

import enum
import os
import random
import time
import uuid
from collections.abc import Callable
from typing import Final

import msgspec

GENESIS_HASH: Final = bytes(32)
"""The ``prev_hash`` of the event at position 1."""

# UUIDv7 layout (RFC 9562): 48 bits of Unix milliseconds, version 7, then 74
# random bits around the two variant bits.
_V7_RANDOM_BITS: Final = (0xFFF << 64) | ((1 << 62) - 1)
_V7_MARKERS: Final = (0x7 << 76) | (0b10 << 62)


def new_event_id() -> str:
    """A fresh event id: a time-ordered UUID (version 7) as 32 hex digits.

    Ids made close together sort close together, so the id index takes
    each batch's new ids into a few adjacent pages instead of one random
    page per event; the 74 random bits per millisecond keep them unique.
    An id is a unique name, not a secret, so its bits come from a generator
    seeded from the system's entropy (and reseeded in a forked child)
    rather than from a system call per id.
    """
    millis = time.time_ns() // 1_000_000
    bits = millis << 80 | _id_bits(80) & _V7_RANDOM_BITS | _V7_MARKERS
    return bits.to_bytes(16).hex()


def _seed_ids() -> None:
    global _id_bits
    _id_bits = random.Random(os.urandom(32)).getrandbits


_id_bits: Callable[[int], int]
_seed_ids()
os.register_at_fork(after_in_child=_seed_ids)


class RecordedEvent(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One event as stored in the log, at its global position."""

    position: int
    stream: str
    version: int
    type: str
    event_id: str
    recorded_at_ns: int
    actor: str
    workspace: str
    correlation_id: str
    causation_id: str
    prev_hash: bytes
    data: msgspec.Raw


class NewEvent(msgspec.Struct, frozen=True, gc=False):
    """An event a caller asks the log to append.

    ``data`` is the msgpack encoding of the payload; build it with
    :func:`eventlog.schemas.new_event` rather than by hand.
    """

    type: str
    data: bytes
    event_id: str = msgspec.field(default_factory=new_event_id)
    actor: str = "system"
    workspace: str = ""
    correlation_id: str = ""
    causation_id: str = ""


class ExpectedVersion(enum.Enum):
    """Symbolic expectations about a stream's version before an append."""

    ANY = "any"
    NO_STREAM = "no stream"


Expected = ExpectedVersion | int
"""``ANY``, ``NO_STREAM``, or the exact current version (0 means empty)."""


class AppendResult(msgspec.Struct, frozen=True):
    """Where an acknowledged append landed."""

    positions: tuple[int, ...]
    stream_version: int
    """The stream's version after the append (its last event's version)."""


def describe_expected(expected: Expected) -> str:
    """Render an expectation for error messages."""
    if isinstance(expected, ExpectedVersion):
        return expected.value
    return str(expected)


def parse_event_id(event_id: str) -> bytes:
    """Return the 16-byte key of an event id, which must be a UUID.

    Raises:
        ValueError: ``event_id`` is not a UUID in any standard spelling.
    """
    return uuid.UUID(event_id).bytes
