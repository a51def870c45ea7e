"""The jobs projection folds each job and MCP event into exact views."""

from __future__ import annotations

import msgspec
import pytest

from eventlog.vocabulary.jobs import (
    JobCancelRequested,
    JobFinished,
    JobResult,
    JobStarted,
    JobStep,
)
from eventlog.vocabulary.mcp import McpFrame, McpStderr
from projections.jobs import JobsProjection, JobsState, JobView
from tests.projections.recorded import (
    JOB,
    SECOND_NS,
    STREAM,
    T0_NS,
    base_events,
    fold,
    recorded,
    recorded_raw,
    requested,
)

TOOLS = [
    {"name": "get_current_time", "input_schema": {"type": "object"}},
    {"name": "convert_time", "description": "Convert between zones"},
]


def test_jobs_requested_creates_a_queued_view() -> None:
    """job.requested gives a queued view with the request's fields and workspace."""
    event = recorded(
        requested(JOB, type="model.inspect", payload={"model": "hf:a/b"}),
        position=7,
        stream=STREAM,
        workspace="ws_1",
    )

    state = fold(event)

    assert state.jobs == {
        JOB: JobView(
            job_id=JOB,
            type="model.inspect",
            status="queued",
            created_at_ns=T0_NS,
            expires_at_ns=T0_NS + 600 * SECOND_NS,
            ttl_seconds=600,
            payload={"model": "hf:a/b"},
            workspace="ws_1",
            last_position=7,
        )
    }
    assert state.sessions == {}


def test_jobs_started_moves_a_queued_job_to_running() -> None:
    """job.started sets running, the start time and the last position."""
    state = fold(*base_events())

    view = state.jobs[JOB]
    assert (view.status, view.started_at_ns, view.last_position) == (
        "running",
        T0_NS + SECOND_NS,
        2,
    )


def test_jobs_started_after_finish_changes_nothing_but_position() -> None:
    """A late job.started never revives a terminal job."""
    events = [
        *base_events(),
        recorded(JobFinished(status="cancelled"), position=3, stream=STREAM),
        recorded(JobStarted(), position=4, stream=STREAM, recorded_at_ns=T0_NS * 2),
    ]

    view = fold(*events).jobs[JOB]

    assert (view.status, view.started_at_ns, view.last_position) == (
        "cancelled",
        T0_NS + SECOND_NS,
        4,
    )


def test_jobs_step_counts_steps_and_marks_ready() -> None:
    """job.step counts every step; the ready/ok step sets ready."""
    events = [
        *base_events(),
        recorded(JobStep(step="validate", status="ok"), position=3, stream=STREAM),
        recorded(
            JobStep(step="ready", status="ok", message="Sandbox ready"),
            position=4,
            stream=STREAM,
        ),
    ]

    view = fold(*events).jobs[JOB]

    assert (view.step_count, view.ready, view.last_position) == (2, True, 4)


def test_jobs_ready_step_with_error_status_is_not_ready() -> None:
    """Only a ready step with status ok makes the job ready."""
    events = [
        *base_events(),
        recorded(JobStep(step="ready", status="error"), position=3, stream=STREAM),
    ]

    view = fold(*events).jobs[JOB]

    assert (view.step_count, view.ready) == (1, False)


def test_jobs_result_sets_result_and_tools() -> None:
    """A job.result with a tools list publishes those tools."""
    events = [
        *base_events(),
        recorded(JobResult(result={"tools": TOOLS}), position=3, stream=STREAM),
    ]

    view = fold(*events).jobs[JOB]

    assert (view.result, view.tools, view.last_position) == ({"tools": TOOLS}, TOOLS, 3)


def test_jobs_result_without_tools_keeps_the_tool_list() -> None:
    """A later result without a tools list replaces the result only."""
    events = [
        *base_events(),
        recorded(JobResult(result={"tools": TOOLS}), position=3, stream=STREAM),
        recorded(JobResult(result=[1, 2]), position=4, stream=STREAM),
    ]

    view = fold(*events).jobs[JOB]

    assert (view.result, view.tools) == ([1, 2], TOOLS)


def test_jobs_tools_changed_step_replaces_the_tool_list() -> None:
    """A tools_changed step carrying tools replaces the published list."""
    new_tools = [{"name": "echo"}]
    events = [
        *base_events(),
        recorded(JobResult(result={"tools": TOOLS}), position=3, stream=STREAM),
        recorded(
            JobStep(step="tools_changed", status="ok", data={"tools": new_tools}),
            position=4,
            stream=STREAM,
        ),
    ]

    view = fold(*events).jobs[JOB]

    assert (view.tools, view.result, view.step_count) == (
        new_tools,
        {"tools": TOOLS},
        1,
    )


def test_jobs_tools_changed_without_a_tool_list_keeps_the_old_one() -> None:
    """A tools_changed step whose tools are not a list of objects is ignored."""
    events = [
        *base_events(),
        recorded(JobResult(result={"tools": TOOLS}), position=3, stream=STREAM),
        recorded(
            JobStep(step="tools_changed", status="ok", data={"tools": ["echo"]}),
            position=4,
            stream=STREAM,
        ),
    ]

    view = fold(*events).jobs[JOB]

    assert (view.tools, view.step_count) == (TOOLS, 1)


def test_jobs_cancel_requested_sets_the_flag_only() -> None:
    """job.cancel_requested flags the job; the status waits for job.finished."""
    events = [
        *base_events(),
        recorded(JobCancelRequested(), position=3, stream=STREAM),
    ]

    view = fold(*events).jobs[JOB]

    assert (view.cancel_requested, view.status, view.last_position) == (
        True,
        "running",
        3,
    )


def test_jobs_finished_with_error_keeps_the_error_and_clears_ready() -> None:
    """job.finished error sets the status, the error text and clears ready."""
    events = [
        *base_events(),
        recorded(JobStep(step="ready", status="ok"), position=3, stream=STREAM),
        recorded(
            JobFinished(status="error", error="mcp server closed: EOF"),
            position=4,
            stream=STREAM,
            recorded_at_ns=T0_NS + 9 * SECOND_NS,
        ),
    ]

    view = fold(*events).jobs[JOB]

    assert (
        view.status,
        view.error,
        view.ready,
        view.finished_at_ns,
        view.last_position,
    ) == ("error", "mcp server closed: EOF", False, T0_NS + 9 * SECOND_NS, 4)


def test_jobs_finished_other_than_error_has_no_error_text() -> None:
    """The error field stays empty unless the job ends in error."""
    events = [
        *base_events(),
        recorded(
            JobFinished(status="expired", error="Job expired after 600 seconds"),
            position=3,
            stream=STREAM,
        ),
    ]

    view = fold(*events).jobs[JOB]

    assert (view.status, view.error) == ("expired", "")


def test_jobs_first_terminal_status_is_final() -> None:
    """A second job.finished does not change the first outcome."""
    events = [
        *base_events(),
        recorded(JobFinished(status="complete"), position=3, stream=STREAM),
        recorded(JobFinished(status="error", error="late"), position=4, stream=STREAM),
    ]

    view = fold(*events).jobs[JOB]

    assert (view.status, view.error, view.last_position) == ("complete", "", 4)


def test_jobs_ready_step_after_finish_does_not_make_ready() -> None:
    """A finished job is never ready again."""
    events = [
        *base_events(),
        recorded(JobFinished(status="cancelled"), position=3, stream=STREAM),
        recorded(JobStep(step="ready", status="ok"), position=4, stream=STREAM),
    ]

    view = fold(*events).jobs[JOB]

    assert (view.ready, view.step_count) == (False, 1)


def test_jobs_finished_with_a_running_status_is_rejected() -> None:
    """A job.finished with a non-terminal status raises before changing anything."""
    projection = JobsProjection()
    state = fold(*base_events())
    before = projection.encode(state)
    event = recorded(JobFinished(status="running"), position=3, stream=STREAM)

    with pytest.raises(ValueError) as raised:
        projection.apply(state, event)

    assert str(raised.value) == "job.finished with non-terminal status 'running'"
    assert projection.encode(state) == before


def test_jobs_malformed_payload_of_a_known_type_raises() -> None:
    """A job.step whose payload does not match its schema raises a validation error."""
    state = fold(*base_events())
    event = recorded_raw(
        "job.step", msgspec.msgpack.encode({"step": 5}), position=3, stream=STREAM
    )

    with pytest.raises(msgspec.ValidationError) as raised:
        JobsProjection().apply(state, event)

    assert str(raised.value) == "Expected `str`, got `int` - at `$.step`"


def test_jobs_mcp_events_only_move_the_last_position() -> None:
    """MCP frames and stderr lines change nothing but last_position."""
    expected = fold(*base_events()).jobs[JOB]
    events = [
        *base_events(),
        recorded(
            McpFrame(direction="out", message={"id": 1}), position=3, stream=STREAM
        ),
        recorded(McpStderr(line="listening"), position=4, stream=STREAM),
    ]

    view = fold(*events).jobs[JOB]

    expected.last_position = 4
    assert view == expected


def test_jobs_unknown_event_type_is_skipped() -> None:
    """A type this build does not know leaves the state exactly as it was."""
    projection = JobsProjection()
    expected = projection.encode(fold(*base_events()))
    events = [
        *base_events(),
        recorded_raw(
            "job.rescheduled", msgspec.msgpack.encode([1]), position=3, stream=STREAM
        ),
    ]

    state = fold(*events)

    assert projection.encode(state) == expected


def test_jobs_events_of_an_unknown_job_are_ignored() -> None:
    """Events on the stream of a job never requested create nothing."""
    events = [
        recorded(JobStarted(), position=1, stream=STREAM),
        recorded(JobFinished(status="complete"), position=2, stream=STREAM),
    ]

    state = fold(*events)

    assert state == JobsState()


def test_jobs_repeated_request_does_not_reset_the_job() -> None:
    """A second job.requested for the same id is a duplicate and is ignored."""
    events = [
        *base_events(),
        recorded(requested(JOB, type="model.pull"), position=3, stream=STREAM),
    ]

    view = fold(*events).jobs[JOB]

    assert (view.type, view.status, view.last_position) == ("mcp.test", "running", 2)
