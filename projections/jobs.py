"""The jobs and sandbox sessions read model, and the JSON the API renders from it.

Folds the events of every ``job-<id>`` stream and ``sandbox.opened`` into one
view per job and one per sandbox session. Everything here is derived from the
events alone: timestamps come from payloads and envelopes, never from a clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any, Final

import msgspec

from eventlog import RecordedEvent
from eventlog.schemas import decode_payload
from eventlog.vocabulary.jobs import (
    TERMINAL_STATUSES,
    JobCancelRequested,
    JobFinished,
    JobRequested,
    JobResult,
    JobStarted,
    JobStep,
    SandboxOpened,
)
from eventlog.vocabulary.mcp import (
    McpFrame,
    McpNoise,
    McpProcessExited,
    McpProcessStarted,
    McpStderr,
)
from projections.timefmt import format_timestamp

JOB_STREAM_PREFIX: Final = "job-"
READY_STEP: Final = "ready"
TOOLS_CHANGED_STEP: Final = "tools_changed"


class JobView(msgspec.Struct, kw_only=True, gc=False):
    """Everything the API shows about one job.

    Values taken from payloads (``payload``, ``result``, ``tools``) are shared
    with the fold: treat them as read-only.
    """

    job_id: str
    type: str
    status: str
    """queued -> running -> complete | error | expired | cancelled."""
    created_at_ns: int
    expires_at_ns: int
    ttl_seconds: int
    payload: Any
    workspace: str
    """The workspace that owns the job (the request's envelope)."""
    session_id: str = ""
    result: Any = None
    error: str = ""
    """The failure text; empty unless ``status`` is ``error``."""
    tools: list[dict[str, Any]] = msgspec.field(default_factory=list)
    """The tools the job's MCP server offers, newest list published."""
    ready: bool = False
    """True from the ``ready`` step until the job finishes."""
    cancel_requested: bool = False
    last_position: int = 0
    """Log position of the job's last event."""
    step_count: int = 0
    started_at_ns: int = 0
    """Recorded time of ``job.started``; 0 while queued or never started."""
    finished_at_ns: int = 0
    """Recorded time of ``job.finished``; 0 until terminal."""


class SessionView(msgspec.Struct, kw_only=True, gc=False):
    """A sandbox session: an alias for the mcp.test job that backs it."""

    session_id: str
    job_id: str
    workspace: str
    expires_at_ns: int


class JobsState(msgspec.Struct, kw_only=True):
    """The whole read model: jobs and sessions by id."""

    jobs: dict[str, JobView] = msgspec.field(default_factory=dict)
    sessions: dict[str, SessionView] = msgspec.field(default_factory=dict)


class JobsProjection:
    """Folds job, sandbox and MCP events into :class:`JobsState`."""

    name: str = "jobs"
    version: int = 1

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(JobsState)

    def initial(self) -> JobsState:
        """An empty state."""
        return JobsState()

    def apply(self, state: JobsState, event: RecordedEvent) -> JobsState:
        """Fold one event; types this read model does not use change nothing.

        Raises:
            msgspec.ValidationError: a known event type with a malformed payload.
            ValueError: a ``job.finished`` with a status that is not terminal.
        """
        kind = event.type
        if kind == JobRequested.EVENT_TYPE:
            _apply_requested(state, event)
        elif kind == SandboxOpened.EVENT_TYPE:
            _apply_sandbox_opened(state, event)
        else:
            handler = _VIEW_HANDLERS.get(kind)
            if handler is not None and event.stream.startswith(JOB_STREAM_PREFIX):
                view = state.jobs.get(event.stream[len(JOB_STREAM_PREFIX) :])
                if view is not None:
                    handler(view, event)
                    view.last_position = event.position
        return state

    def encode(self, state: JobsState) -> bytes:
        """Encode ``state`` as msgpack."""
        return self._encoder.encode(state)

    def decode(self, data: bytes) -> JobsState:
        """Decode a state :meth:`encode` produced.

        Raises:
            msgspec.DecodeError: ``data`` is not a :class:`JobsState`.
        """
        return self._decoder.decode(data)


def list_jobs(
    state: JobsState,
    *,
    workspace: str | None = None,
    type: str | None = None,
    status: str | None = None,
    limit: int | None = None,
) -> list[JobView]:
    """Jobs matching every filter given, newest first.

    Args:
        state: The jobs read model.
        workspace: Only jobs owned by this workspace; None for all of them.
        type: Only jobs of this type.
        status: Only jobs in this status.
        limit: At most this many jobs; None for all.

    Returns:
        Views ordered by ``created_at_ns`` then ``job_id``, both descending,
        so equal creation times still give one fixed order.

    Raises:
        ValueError: ``limit`` is negative.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    matches = [
        view
        for view in state.jobs.values()
        if (workspace is None or view.workspace == workspace)
        and (type is None or view.type == type)
        and (status is None or view.status == status)
    ]
    if limit is not None:
        return heapq.nlargest(limit, matches, key=_newest_first)
    matches.sort(key=_newest_first, reverse=True)
    return matches


def job_snapshot(view: JobView) -> dict[str, Any]:
    """The contract's ``Job`` JSON object for one job."""
    snapshot: dict[str, Any] = {
        "job_id": view.job_id,
        "type": view.type,
        "status": view.status,
        "created_at": format_timestamp(view.created_at_ns),
        "expires_at": format_timestamp(view.expires_at_ns),
        "result": view.result,
    }
    if view.error:
        snapshot["error"] = view.error
    return snapshot


def session_snapshot(session: SessionView, job: JobView | None) -> dict[str, Any]:
    """The JSON of ``GET /v1/sandbox/sessions/{id}``.

    ``job`` is None in the short window where the session is recorded but its
    job's request is not yet folded; the session is then shown as queued.
    ``ready`` says whether its tools can be listed and called right now.
    """
    return {
        "session_id": session.session_id,
        "job_id": session.job_id,
        "status": "queued" if job is None else job.status,
        "ready": False if job is None else job.ready,
        "expires_at": format_timestamp(session.expires_at_ns),
        "result": None if job is None else job.result,
    }


# -- private helpers ----------------------------------------------------------


def _newest_first(view: JobView) -> tuple[int, str]:
    return view.created_at_ns, view.job_id


def _apply_requested(state: JobsState, event: RecordedEvent) -> None:
    payload = decode_payload(event)
    if not isinstance(payload, JobRequested):
        return
    if payload.job_id in state.jobs:
        # A job id is requested once; a repeat is a duplicate, not a reset.
        return
    state.jobs[payload.job_id] = JobView(
        job_id=payload.job_id,
        type=payload.type,
        status="queued",
        created_at_ns=payload.created_at_ns,
        expires_at_ns=payload.expires_at_ns,
        ttl_seconds=payload.ttl_seconds,
        payload=payload.payload,
        workspace=event.workspace,
        session_id=payload.session_id,
        last_position=event.position,
    )


def _apply_started(view: JobView, event: RecordedEvent) -> None:
    if not isinstance(decode_payload(event), JobStarted):
        return
    if view.status == "queued":
        view.status = "running"
        view.started_at_ns = event.recorded_at_ns


def _apply_step(view: JobView, event: RecordedEvent) -> None:
    payload = decode_payload(event)
    if not isinstance(payload, JobStep):
        return
    view.step_count += 1
    if payload.step == READY_STEP and payload.status == "ok":
        view.ready = view.status not in TERMINAL_STATUSES
    elif payload.step == TOOLS_CHANGED_STEP:
        tools = _tool_list(payload.data.get("tools"))
        if tools is not None:
            view.tools = tools


def _apply_result(view: JobView, event: RecordedEvent) -> None:
    payload = decode_payload(event)
    if not isinstance(payload, JobResult):
        return
    view.result = payload.result
    if isinstance(payload.result, dict):
        tools = _tool_list(payload.result.get("tools"))
        if tools is not None:
            view.tools = tools


def _apply_cancel_requested(view: JobView, event: RecordedEvent) -> None:
    if isinstance(decode_payload(event), JobCancelRequested):
        view.cancel_requested = True


def _apply_finished(view: JobView, event: RecordedEvent) -> None:
    payload = decode_payload(event)
    if not isinstance(payload, JobFinished):
        return
    if payload.status not in TERMINAL_STATUSES:
        raise ValueError(f"job.finished with non-terminal status {payload.status!r}")
    if view.status in TERMINAL_STATUSES:
        # The first terminal status is final; nothing may follow it.
        return
    view.status = payload.status
    view.error = payload.error if payload.status == "error" else ""
    view.ready = False
    view.finished_at_ns = event.recorded_at_ns


def _apply_process_event(view: JobView, event: RecordedEvent) -> None:
    """MCP frames and process facts only move the job's last position."""


def _apply_sandbox_opened(state: JobsState, event: RecordedEvent) -> None:
    payload = decode_payload(event)
    if not isinstance(payload, SandboxOpened):
        return
    state.sessions[payload.session_id] = SessionView(
        session_id=payload.session_id,
        job_id=payload.job_id,
        workspace=event.workspace,
        expires_at_ns=payload.expires_at_ns,
    )
    view = state.jobs.get(payload.job_id)
    if view is None:
        return
    if not view.session_id:
        view.session_id = payload.session_id
    if event.stream == JOB_STREAM_PREFIX + payload.job_id:
        view.last_position = event.position


def _tool_list(value: Any) -> list[dict[str, Any]] | None:
    """``value`` as a list of tool objects, or None if it is not one."""
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        return None
    return value


_VIEW_HANDLERS: Final[dict[str, Callable[[JobView, RecordedEvent], None]]] = {
    JobStarted.EVENT_TYPE: _apply_started,
    JobStep.EVENT_TYPE: _apply_step,
    JobResult.EVENT_TYPE: _apply_result,
    JobCancelRequested.EVENT_TYPE: _apply_cancel_requested,
    JobFinished.EVENT_TYPE: _apply_finished,
    McpProcessStarted.EVENT_TYPE: _apply_process_event,
    McpFrame.EVENT_TYPE: _apply_process_event,
    McpNoise.EVENT_TYPE: _apply_process_event,
    McpStderr.EVENT_TYPE: _apply_process_event,
    McpProcessExited.EVENT_TYPE: _apply_process_event,
}
