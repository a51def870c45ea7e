"""Server-Sent Events over the log: a job's steps, resumable by position.

``id:`` is the event's global position, so ``Last-Event-ID`` (or ``?after=``)
resumes exactly after the last event a client saw, also across restarts.
History comes from the job's stream index; live events from tailing the
log. The stream ends after the job's terminal event.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Final

import msgspec
import trio
from quart import Response, request

from api.errors import ApiError
from eventlog import EventLog, RecordedEvent
from eventlog.vocabulary.jobs import job_stream
from runtime.whole_number import parse_whole_number

KEEPALIVE_FRAME: Final = b": keepalive\n\n"

log = logging.getLogger(__name__)

_step_decoder = msgspec.msgpack.Decoder(dict[str, Any])


def resume_position(head: int) -> int:
    """The position to resume after, from ``Last-Event-ID`` or ``?after=``.

    Raises:
        ApiError: 400 when the value is not a position of this log.
    """
    raw = request.headers.get("Last-Event-ID")
    name = "Last-Event-ID"
    if raw is None:
        raw, name = request.args.get("after"), "after"
    if raw is None or raw.strip() == "":
        return 0
    position = parse_whole_number(raw.strip())
    if position is None:
        raise ApiError(400, f"{name} must be an event position")
    if position < 0 or position > head:
        raise ApiError(400, f"{name} {position} is not a position of this log")
    return position


def job_events_response(
    event_log: EventLog, job_id: str, after: int, keepalive_seconds: float
) -> Response:
    """The SSE response streaming a job's steps after position ``after``."""
    response = Response(
        _job_frames(event_log, job_id, after, keepalive_seconds),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    # A job's stream lives as long as the job: never time the body out.
    response.timeout = None
    return response


def step_json(event: RecordedEvent) -> bytes:
    """A ``job.step`` as the contract's Event: message and data only when set."""
    step = _step_decoder.decode(event.data)
    shown: dict[str, Any] = {
        "step": step.get("step", ""),
        "status": step.get("status", ""),
    }
    if step.get("message"):
        shown["message"] = step["message"]
    if step.get("data"):
        shown["data"] = step["data"]
    return msgspec.json.encode(shown)


async def _job_frames(
    event_log: EventLog, job_id: str, after: int, keepalive_seconds: float
) -> AsyncIterator[bytes]:
    stream = job_stream(job_id)
    cursor = after
    try:
        # History first, through the stream index: no scan of other jobs.
        version = 1
        while True:
            events = await event_log.read_stream(stream, version)
            if not events:
                break
            version = events[-1].version + 1
            for event in events:
                frame, done = _frame(event)
                if frame and event.position > cursor:
                    yield frame
                if done:
                    return
            cursor = max(cursor, events[-1].position)

        # Then live: everything committed after the history read.
        while True:
            batch: list[RecordedEvent] | None = None
            with trio.move_on_after(keepalive_seconds):
                batch = await event_log.wait_for_events(cursor)
            # Yield only outside the cancel scope: trio forbids yielding
            # from inside a scope the generator opened.
            if batch is None:
                yield KEEPALIVE_FRAME
                continue
            cursor = batch[-1].position
            for event in batch:
                if event.stream != stream:
                    continue
                frame, done = _frame(event)
                if frame:
                    yield frame
                if done:
                    return
    finally:
        log.debug("sse stream closed job_id=%s cursor=%s", job_id, cursor)


def _frame(event: RecordedEvent) -> tuple[bytes, bool]:
    if event.type == "job.step":
        return b"id: %d\ndata: %s\n\n" % (event.position, step_json(event)), False
    return b"", event.type == "job.finished"
