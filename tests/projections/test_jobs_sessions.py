"""The jobs projection records sandbox sessions and keeps them across snapshots."""

from __future__ import annotations

from eventlog.vocabulary.jobs import JobResult, SandboxOpened, sandbox_stream
from projections.jobs import JobsProjection, SessionView
from tests.projections.recorded import (
    JOB,
    SECOND_NS,
    STREAM,
    T0_NS,
    base_events,
    fold,
    recorded,
    requested,
)

TOOLS = [{"name": "get_current_time", "input_schema": {"type": "object"}}]


def test_jobs_sandbox_opened_records_the_session() -> None:
    """sandbox.opened adds a session view and links the job to it."""
    opened = SandboxOpened(
        session_id="sbx_1", job_id=JOB, expires_at_ns=T0_NS + 60 * SECOND_NS
    )
    events = [
        *base_events(),
        recorded(opened, position=3, stream=sandbox_stream("sbx_1"), workspace="ws_1"),
    ]

    state = fold(*events)

    assert state.sessions == {
        "sbx_1": SessionView(
            session_id="sbx_1",
            job_id=JOB,
            workspace="ws_1",
            expires_at_ns=T0_NS + 60 * SECOND_NS,
        )
    }
    assert (state.jobs[JOB].session_id, state.jobs[JOB].last_position) == ("sbx_1", 2)


def test_jobs_sandbox_opened_on_the_job_stream_moves_its_position() -> None:
    """A sandbox.opened recorded on the job's own stream is one of its events."""
    opened = SandboxOpened(session_id="sbx_1", job_id=JOB, expires_at_ns=T0_NS)
    events = [*base_events(), recorded(opened, position=3, stream=STREAM)]

    view = fold(*events).jobs[JOB]

    assert (view.session_id, view.last_position) == ("sbx_1", 3)


def test_jobs_sandbox_opened_before_the_job_keeps_the_session() -> None:
    """A session whose job is not folded yet is kept, and the request links it."""
    opened = SandboxOpened(session_id="sbx_1", job_id=JOB, expires_at_ns=T0_NS)
    events = [
        recorded(opened, position=1, stream=sandbox_stream("sbx_1")),
        recorded(requested(JOB, session_id="sbx_1"), position=2, stream=STREAM),
    ]

    state = fold(*events)

    assert (list(state.sessions), state.jobs[JOB].session_id) == (["sbx_1"], "sbx_1")


def test_jobs_state_round_trips_through_encode_and_decode() -> None:
    """decode(encode(state)) equals the state, tools and sessions included."""
    projection = JobsProjection()
    opened = SandboxOpened(session_id="sbx_1", job_id=JOB, expires_at_ns=T0_NS)
    state = fold(
        *base_events(),
        recorded(JobResult(result={"tools": TOOLS}), position=3, stream=STREAM),
        recorded(opened, position=4, stream=sandbox_stream("sbx_1")),
    )

    restored = projection.decode(projection.encode(state))

    assert restored == state
