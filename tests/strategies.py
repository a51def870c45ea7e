"""Hypothesis strategies for events, streams and concurrent append programs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

import msgspec
from hypothesis import strategies as st

from eventlog import ExpectedVersion, NewEvent
from eventlog.envelope import Expected
from eventlog.schemas import Payload, new_event
from eventlog.vocabulary.jobs import (
    JOB_STATUSES,
    JobCancelRequested,
    JobFinished,
    JobRequested,
    JobResult,
    JobStarted,
    JobStep,
    SandboxOpened,
    job_stream,
    sandbox_stream,
)
from eventlog.vocabulary.mcp import McpFrame, McpStderr

ACTORS: Final = ("user", "runtime", "system")
CONTENDED_STREAMS: Final = ("a", "b", "c", "job-1", "$system")
"""A few names, so concurrent programs keep colliding on the same streams."""

Expectation = Expected | Literal["current"]
"""An append's expected version, or "current": read the version, then expect it."""


def msgpack_values() -> st.SearchStrategy[Any]:
    """Values msgpack round-trips exactly (no NaN, which never equals itself)."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**64 - 1)
        | st.floats(allow_nan=False)
        | st.text(max_size=20)
        | st.binary(max_size=20)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    )


def stream_names() -> st.SearchStrategy[str]:
    """Any valid stream name: non-empty, no NUL, well under the byte limit."""
    return st.text(
        st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
        min_size=1,
        max_size=40,
    )


def event_ids() -> st.SearchStrategy[str]:
    """A UUID in one of the spellings the log accepts."""
    return st.uuids().flatmap(
        lambda u: st.sampled_from([u.hex, str(u), str(u).upper()])
    )


def new_events(
    ids: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[NewEvent]:
    """A new event with arbitrary envelope fields and a msgpack payload."""
    labels = st.text(max_size=16)
    return st.builds(
        NewEvent,
        type=st.sampled_from(["test.noted", "test.changed", "future.unknown"])
        | st.text(min_size=1, max_size=24),
        data=msgpack_values().map(msgspec.msgpack.encode),
        event_id=ids if ids is not None else event_ids(),
        actor=st.sampled_from(ACTORS),
        workspace=labels,
        correlation_id=labels,
        causation_id=labels,
    )


def expectations() -> st.SearchStrategy[Expectation]:
    """ANY, NO_STREAM, a small exact version, or "current"."""
    return st.one_of(
        st.just(ExpectedVersion.ANY),
        st.just(ExpectedVersion.NO_STREAM),
        st.integers(min_value=0, max_value=4),
        st.just("current"),
    )


@dataclass(frozen=True, slots=True)
class AppendStep:
    """One append a producer makes, after yielding ``pause`` times."""

    stream: str
    values: tuple[Any, ...]
    expected: Expectation
    pause: int
    retry: bool
    """Send the same events again once acknowledged, as a client retry would."""


def append_steps() -> st.SearchStrategy[AppendStep]:
    """One append of one to four events to a contended stream."""
    return st.builds(
        AppendStep,
        stream=st.sampled_from(CONTENDED_STREAMS),
        values=st.lists(msgpack_values(), min_size=1, max_size=4).map(tuple),
        expected=expectations(),
        pause=st.integers(min_value=0, max_value=3),
        retry=st.booleans(),
    )


def append_programs(
    max_producers: int = 8, max_steps: int = 6
) -> st.SearchStrategy[list[list[AppendStep]]]:
    """Steps for several producers that will run concurrently."""
    return st.lists(
        st.lists(append_steps(), min_size=1, max_size=max_steps),
        min_size=1,
        max_size=max_producers,
    )


# -- job and sandbox events (read models in tests/projections) ----------------

JOB_IDS: Final = ("job_a", "job_b", "job_c")
SESSION_IDS: Final = ("sbx_a", "sbx_b")
WORKSPACES: Final = ("ws_1", "ws_2", "")
JOB_TYPES: Final = ("mcp.test", "model.inspect", "model.pull")
STEP_NAMES: Final = ("queue", "validate", "ready", "tools_changed", "expire")
STEP_STATUSES: Final = ("queued", "start", "ok", "error", "running", "expired")
RESULTS: Final = (None, {"ok": True}, [1, "a", b"\x00"], 2**64 - 1, -0.5)
"""Results of every msgpack kind; arbitrary values come with the requests."""


class JobAppend(NamedTuple):
    """One append: events for one stream, committed together."""

    stream: str
    events: list[NewEvent]


def tool_lists() -> st.SearchStrategy[list[dict[str, Any]]]:
    """Tool lists as a sandbox publishes them: name, maybe description and schema."""
    tool = st.fixed_dictionaries(
        {"name": st.text(min_size=1, max_size=8)},
        optional={
            "description": st.text(max_size=12),
            "input_schema": st.just({"type": "object"}),
        },
    )
    return st.lists(tool, max_size=3)


def job_lifecycle_payloads() -> st.SearchStrategy[Payload]:
    """Any payload that may follow a job's request on its stream.

    ``job.finished`` may carry a non-terminal status, which a read model must
    reject, so skipping a malformed event is exercised too.
    """
    tool_data = tool_lists().map(lambda tools: {"tools": tools})
    return st.one_of(
        st.just(JobStarted()),
        st.builds(
            JobStep,
            step=st.sampled_from(STEP_NAMES),
            status=st.sampled_from(STEP_STATUSES),
            data=st.one_of(st.just({}), tool_data, st.just({"tools": "none"})),
        ),
        st.builds(JobResult, result=st.one_of(st.sampled_from(RESULTS), tool_data)),
        st.just(JobCancelRequested()),
        st.builds(
            JobFinished,
            status=st.sampled_from(JOB_STATUSES),
            error=st.sampled_from(("", "boom")),
        ),
        st.builds(
            McpFrame,
            direction=st.sampled_from(("in", "out")),
            message=st.fixed_dictionaries(
                {"jsonrpc": st.just("2.0"), "id": st.integers(0, 3)}
            ),
        ),
        st.just(McpStderr(line="listening on stdio")),
    )


def job_requests(job_id: str) -> st.SearchStrategy[JobRequested]:
    """A request for ``job_id`` with any type, TTL, payload and session."""
    return st.builds(
        JobRequested,
        job_id=st.just(job_id),
        type=st.sampled_from(JOB_TYPES),
        ttl_seconds=st.integers(min_value=0, max_value=600),
        payload=msgpack_values(),
        created_at_ns=st.integers(min_value=0, max_value=2**62),
        expires_at_ns=st.integers(min_value=0, max_value=2**62),
        session_id=st.sampled_from(("", *SESSION_IDS)),
    )


def odd_job_events() -> st.SearchStrategy[NewEvent]:
    """Events a read model must survive: an unknown type, malformed payloads."""
    return st.sampled_from(
        (
            NewEvent(type="job.rescheduled", data=msgspec.msgpack.encode({"at": 1})),
            NewEvent(type="job.step", data=msgspec.msgpack.encode({"step": 5})),
            NewEvent(type="job.requested", data=msgspec.msgpack.encode([])),
        )
    )


@st.composite
def job_appends(draw: st.DrawFn, max_appends: int = 12) -> list[JobAppend]:
    """A sequence of appends to a few job and sandbox streams.

    A job's stream usually starts with its request, but events of jobs never
    requested, repeated requests and odd events all occur.
    """
    appends: list[JobAppend] = []
    requested: set[str] = set()
    for _ in range(draw(st.integers(min_value=0, max_value=max_appends))):
        workspace = draw(st.sampled_from(WORKSPACES))
        job_id = draw(st.sampled_from(JOB_IDS))
        choice = draw(st.integers(min_value=0, max_value=9))
        if choice == 0:
            opened = SandboxOpened(
                session_id=draw(st.sampled_from(SESSION_IDS)),
                job_id=job_id,
                expires_at_ns=draw(st.integers(min_value=0, max_value=2**62)),
            )
            on_job_stream = draw(st.booleans())
            stream = (
                job_stream(job_id)
                if on_job_stream
                else sandbox_stream(opened.session_id)
            )
            appends.append(JobAppend(stream, [new_event(opened, workspace=workspace)]))
            continue
        payloads: list[Payload] = []
        if job_id not in requested or choice == 1:
            requested.add(job_id)
            payloads.append(draw(job_requests(job_id)))
        payloads.extend(draw(st.lists(job_lifecycle_payloads(), max_size=3)))
        events = [new_event(p, workspace=workspace) for p in payloads]
        if choice == 2:
            events.append(draw(odd_job_events()))
        if events:
            appends.append(JobAppend(job_stream(job_id), events))
    return appends
