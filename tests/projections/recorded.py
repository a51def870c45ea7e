"""Building recorded events, job payloads and folds for projection tests."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from eventlog import NewEvent, RecordedEvent
from eventlog.envelope import GENESIS_HASH
from eventlog.schemas import Payload, new_event
from eventlog.vocabulary.jobs import JobRequested, JobStarted, job_stream
from projections.jobs import JobsProjection, JobsState

SECOND_NS = 1_000_000_000
T0_NS = 1_796_319_168_123_456_789
"""2026-12-03T17:32:48.123456789Z."""
JOB = "job_0123456789abcdef01"
STREAM = job_stream(JOB)


def recorded(
    payload: Payload,
    *,
    position: int,
    stream: str,
    workspace: str = "",
    recorded_at_ns: int = T0_NS,
) -> RecordedEvent:
    """``payload`` as the log would hand it to a projection."""
    event = new_event(payload, workspace=workspace)
    return recorded_raw(
        event.type,
        event.data,
        position=position,
        stream=stream,
        workspace=workspace,
        recorded_at_ns=recorded_at_ns,
    )


def recorded_raw(
    event_type: str,
    data: bytes,
    *,
    position: int,
    stream: str,
    workspace: str = "",
    recorded_at_ns: int = T0_NS,
) -> RecordedEvent:
    """An event of any type with hand-made payload bytes."""
    return RecordedEvent(
        position=position,
        stream=stream,
        version=1,
        type=event_type,
        event_id=uuid.uuid4().hex,
        recorded_at_ns=recorded_at_ns,
        actor="system",
        workspace=workspace,
        correlation_id="",
        causation_id="",
        prev_hash=GENESIS_HASH,
        data=msgspec.Raw(data),
    )


def requested(
    job_id: str,
    *,
    type: str = "mcp.test",
    created_at_ns: int = T0_NS,
    ttl_seconds: int = 600,
    payload: Any = None,
    session_id: str = "",
) -> JobRequested:
    """A job request with the expiry its TTL implies."""
    return JobRequested(
        job_id=job_id,
        type=type,
        ttl_seconds=ttl_seconds,
        payload={"start_command": "uvx mcp-server-time"}
        if payload is None
        else payload,
        created_at_ns=created_at_ns,
        expires_at_ns=created_at_ns + ttl_seconds * SECOND_NS,
        session_id=session_id,
    )


def job_event(payload: Payload, *, workspace: str = "ws_1") -> NewEvent:
    """``payload`` as an event ready to append to its job's stream."""
    return new_event(payload, workspace=workspace)


def fold(*events: RecordedEvent) -> JobsState:
    """The jobs state after folding ``events`` in order."""
    projection = JobsProjection()
    state = projection.initial()
    for event in events:
        state = projection.apply(state, event)
    return state


def base_events() -> list[RecordedEvent]:
    """``JOB`` requested in workspace ws_1 at T0, then started a second later."""
    return [
        recorded(requested(JOB), position=1, stream=STREAM, workspace="ws_1"),
        recorded(
            JobStarted(), position=2, stream=STREAM, recorded_at_ns=T0_NS + SECOND_NS
        ),
    ]
