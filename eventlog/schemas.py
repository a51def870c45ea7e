"""The event vocabulary: one frozen msgspec Struct per event type.

Payload classes register under a stable dotted name that never derives from
the class name. Decoding is per type and on demand: a reader that meets a
type it does not know gets ``None`` and moves on, so an older build can read a
log written by a newer one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import msgspec

from eventlog.envelope import NewEvent, RecordedEvent

REDACTED = "[redacted]"

_encoder = msgspec.msgpack.Encoder()
_registry: dict[str, type[Payload]] = {}
_decoders: dict[str, msgspec.msgpack.Decoder[Any]] = {}


class Payload(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of every event payload."""

    EVENT_TYPE: ClassVar[str] = ""
    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset()
    """Fields that must stay in the log but never be printed or served."""


P = TypeVar("P", bound=type[Payload])


def event_type(name: str) -> Callable[[P], P]:
    """Register a payload class under the event type ``name``.

    Raises:
        ValueError: ``name`` is already registered to another class.
    """

    def register(cls: P) -> P:
        existing = _registry.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"event type {name!r} is already registered")
        cls.EVENT_TYPE = name
        _registry[name] = cls
        _decoders[name] = msgspec.msgpack.Decoder(cls)
        return cls

    return register


def new_event(
    payload: Payload,
    *,
    event_id: str | None = None,
    actor: str = "system",
    workspace: str = "",
    correlation_id: str = "",
    causation_id: str = "",
) -> NewEvent:
    """Wrap a registered payload as an event ready to append."""
    name = type(payload).EVENT_TYPE
    if _registry.get(name) is not type(payload):
        raise TypeError(f"{type(payload).__name__} is not a registered event type")
    fields: dict[str, Any] = {
        "actor": actor,
        "workspace": workspace,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
    }
    if event_id is not None:
        fields["event_id"] = event_id
    return NewEvent(type=name, data=_encoder.encode(payload), **fields)


def decode_payload(event: RecordedEvent) -> Payload | None:
    """Return the typed payload, or ``None`` for a type this build does not know.

    Raises:
        msgspec.ValidationError: the type is known but the payload does not
            match its schema.
    """
    decoder = _decoders.get(event.type)
    if decoder is None:
        return None
    payload: Payload = decoder.decode(event.data)
    return payload


def payload_as_builtins(event: RecordedEvent) -> Any:
    """Decode the payload to plain Python values, whatever its type."""
    return msgspec.msgpack.decode(event.data)


def payload_for_display(event: RecordedEvent) -> Any:
    """Like :func:`payload_as_builtins`, with every secret field redacted."""
    # Importing the vocabulary registers every type and its secret fields;
    # without it an unregistered type would be printed unredacted.
    import eventlog.vocabulary  # noqa: F401

    data = payload_as_builtins(event)
    cls = _registry.get(event.type)
    if cls is not None and cls.SECRET_FIELDS and isinstance(data, dict):
        for name in cls.SECRET_FIELDS & data.keys():
            data[name] = REDACTED
    return data
