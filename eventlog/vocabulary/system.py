"""Facts about the runtime process itself, on the ``$system`` stream."""

from __future__ import annotations

from eventlog.schemas import Payload, event_type

SYSTEM_STREAM = "$system"


@event_type("runtime.started")
class RuntimeStarted(Payload, frozen=True):
    """The runtime process opened the log and began serving."""

    runtime_id: str
    version: str
    pid: int


@event_type("runtime.stopped")
class RuntimeStopped(Payload, frozen=True):
    """The runtime shut down cleanly."""

    runtime_id: str
    reason: str
