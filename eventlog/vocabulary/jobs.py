"""Facts about jobs, on the stream ``job-<job_id>``.

A job's life is ``job.requested``, optionally ``job.started``, any number of
``job.step`` (the Event objects clients stream), ``mcp.*`` frames, at most
one ``job.result``, and exactly one ``job.finished``, which is always
appended together with the terminal ``job.step`` it explains.
"""

from __future__ import annotations

from typing import Any

import msgspec

from eventlog.schemas import Payload, event_type

JOB_STATUSES = ("queued", "running", "complete", "error", "expired", "cancelled")
TERMINAL_STATUSES = frozenset({"complete", "error", "expired", "cancelled"})


def job_stream(job_id: str) -> str:
    """The stream that holds one job's events."""
    return f"job-{job_id}"


@event_type("job.requested")
class JobRequested(Payload, frozen=True):
    """A client asked for a job; it is queued from this moment."""

    job_id: str
    type: str
    ttl_seconds: int
    payload: Any
    created_at_ns: int
    expires_at_ns: int
    session_id: str = ""
    """Set when the job backs a sandbox session."""


@event_type("job.started")
class JobStarted(Payload, frozen=True):
    """The job left the queue and holds a concurrency slot."""


@event_type("job.step")
class JobStep(Payload, frozen=True):
    """One progress step, exactly as clients see it on the events stream."""

    step: str
    status: str
    message: str = ""
    data: dict[str, Any] = msgspec.field(default_factory=dict)


@event_type("job.result")
class JobResult(Payload, frozen=True):
    """The job produced (or replaced) its result."""

    result: Any


@event_type("job.cancel_requested")
class JobCancelRequested(Payload, frozen=True):
    """Somebody asked to cancel the job; the job actor acts on it."""

    reason: str = "requested"


@event_type("job.finished")
class JobFinished(Payload, frozen=True):
    """The job reached its terminal status. Nothing follows it."""

    status: str
    error: str = ""


@event_type("sandbox.opened")
class SandboxOpened(Payload, frozen=True):
    """A sandbox session was opened, backed by the mcp.test job ``job_id``."""

    session_id: str
    job_id: str
    expires_at_ns: int


def sandbox_stream(session_id: str) -> str:
    """The stream that holds one sandbox session's own events."""
    return f"sandbox-{session_id}"
