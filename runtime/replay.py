"""A job or sandbox session, read back from the log as a readable transcript."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any, Final

import msgspec

from eventlog import EventLog, RecordedEvent
from eventlog.schemas import payload_as_builtins
from eventlog.vocabulary.jobs import job_stream
from runtime.control_chars import terminal_safe

MAX_FRAME_CHARS: Final = 2000


class ReplayTargetNotFoundError(LookupError):
    """No job or sandbox session has the id asked for."""


async def find_job_id(event_log: EventLog, target: str) -> str:
    """The job id of ``target``, which is a job id or a sandbox session id.

    Raises:
        ReplayTargetNotFoundError: nothing in the log has that id.
    """
    if await event_log.stream_version(job_stream(target)) > 0:
        return target
    if target.startswith("sbx_"):
        after = 0
        while True:
            events = await event_log.read_all(after=after, limit=4096)
            if not events:
                break
            for event in events:
                if event.type == "sandbox.opened":
                    data = payload_as_builtins(event)
                    if data.get("session_id") == target:
                        return str(data["job_id"])
            after = events[-1].position
    raise ReplayTargetNotFoundError(f"no job or sandbox session {target!r} in the log")


async def read_job_events(event_log: EventLog, job_id: str) -> list[RecordedEvent]:
    """Every event of one job, in order."""
    events: list[RecordedEvent] = []
    version = 1
    while True:
        page = await event_log.read_stream(job_stream(job_id), version)
        if not page:
            return events
        events.extend(page)
        version = page[-1].version + 1


def transcript(events: list[RecordedEvent]) -> Iterator[str]:
    """One line per event: time, what happened, and its details."""
    for event in events:
        try:
            described = _describe(event)
        except (msgspec.DecodeError, KeyError, TypeError, AttributeError) as exc:
            described = f"{event.type} (payload not readable: {exc!r})"
        # What a server wrote (its stderr, its frames) must not reach the
        # terminal as escape sequences or reordering marks.
        shown = terminal_safe(described)
        yield f"{_time(event.recorded_at_ns)}  #{event.position:<6} {shown}"


def _describe(event: RecordedEvent) -> str:
    data: Any = payload_as_builtins(event)
    kind = event.type
    if kind == "job.requested":
        payload = json.dumps(data.get("payload"), sort_keys=True)
        return (
            f"requested {data['type']} job {data['job_id']} by {event.actor} "
            f"ttl={data['ttl_seconds']}s payload={_clip(payload)}"
        )
    if kind == "sandbox.opened":
        return f"sandbox session {data['session_id']} opened"
    if kind == "job.started":
        return "started (left the queue)"
    if kind == "job.step":
        extra = f" {_clip(json.dumps(data['data']))}" if data.get("data") else ""
        message = f" {data['message']}" if data.get("message") else ""
        return f"step {data['step']} [{data['status']}]{message}{extra}"
    if kind == "job.result":
        return f"result {_clip(json.dumps(data['result']))}"
    if kind == "job.cancel_requested":
        return f"cancel requested by {event.actor}"
    if kind == "job.finished":
        error = f": {data['error']}" if data.get("error") else ""
        return f"finished {data['status']}{error}"
    if kind == "mcp.process_started":
        return (
            f"process started pid={data['pid']} isolation={data['isolation']} "
            f"attempt={data.get('attempt', 1)}: {' '.join(data['argv'])}"
        )
    if kind == "mcp.process_exited":
        return f"process exited code={data['returncode']}"
    if kind == "mcp.frame":
        arrow = "->" if data["direction"] == "out" else "<-"
        return f"{arrow} {_clip(msgspec.json.encode(data['message']).decode())}"
    if kind == "mcp.stderr":
        return f"stderr {data['line']}"
    if kind == "mcp.noise":
        return f"stdout (not JSON-RPC) {data['line']}"
    return f"{kind} {_clip(json.dumps(data, default=str))}"


def _clip(text: str) -> str:
    if len(text) <= MAX_FRAME_CHARS:
        return text
    return f"{text[:MAX_FRAME_CHARS]}... ({len(text)} characters)"


def _time(ns: int) -> str:
    moment = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
