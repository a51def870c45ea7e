"""Listing jobs and rendering the contract's Job and sandbox session JSON."""

from __future__ import annotations

import pytest

from projections.jobs import (
    JobsState,
    JobView,
    SessionView,
    job_snapshot,
    list_jobs,
    session_snapshot,
)
from tests.projections.recorded import SECOND_NS, T0_NS


def view(
    job_id: str,
    *,
    created_at_ns: int = T0_NS,
    workspace: str = "ws_1",
    type: str = "mcp.test",
    status: str = "queued",
) -> JobView:
    return JobView(
        job_id=job_id,
        type=type,
        status=status,
        created_at_ns=created_at_ns,
        expires_at_ns=created_at_ns + 60 * SECOND_NS,
        ttl_seconds=60,
        payload=None,
        workspace=workspace,
    )


def state_of(*views: JobView) -> JobsState:
    return JobsState(jobs={v.job_id: v for v in views})


STATE = state_of(
    view("job_a", created_at_ns=T0_NS, workspace="ws_1", status="complete"),
    view("job_b", created_at_ns=T0_NS + 2, workspace="ws_2", type="model.pull"),
    view("job_c", created_at_ns=T0_NS + 1, workspace="ws_1", status="running"),
    view("job_d", created_at_ns=T0_NS + 1, workspace="ws_1", type="model.pull"),
)


def ids(views: list[JobView]) -> list[str]:
    return [v.job_id for v in views]


def test_list_jobs_orders_newest_first_with_ties_by_id() -> None:
    """Newest creation first; equal times by job id, descending."""
    listed = list_jobs(STATE)

    assert ids(listed) == ["job_b", "job_d", "job_c", "job_a"]


def test_list_jobs_filters_by_workspace() -> None:
    """Only the workspace's own jobs are listed."""
    listed = list_jobs(STATE, workspace="ws_1")

    assert ids(listed) == ["job_d", "job_c", "job_a"]


def test_list_jobs_filters_by_type_and_status_together() -> None:
    """Every filter given must match."""
    listed = list_jobs(STATE, type="model.pull", status="queued", workspace="ws_1")

    assert ids(listed) == ["job_d"]


def test_list_jobs_limit_keeps_the_newest() -> None:
    """A limit keeps the first jobs of the full order."""
    listed = list_jobs(STATE, limit=2)

    assert ids(listed) == ["job_b", "job_d"]


def test_list_jobs_limit_zero_lists_nothing() -> None:
    """A limit of 0 gives an empty list."""
    listed = list_jobs(STATE, limit=0)

    assert listed == []


def test_list_jobs_negative_limit_is_rejected() -> None:
    """A negative limit is a caller error."""
    with pytest.raises(ValueError) as raised:
        list_jobs(STATE, limit=-1)

    assert str(raised.value) == "limit must not be negative"


def test_list_jobs_unknown_workspace_lists_nothing() -> None:
    """A workspace without jobs sees none of the others'."""
    listed = list_jobs(STATE, workspace="ws_9")

    assert listed == []


def test_job_snapshot_renders_the_contract_job() -> None:
    """The Job JSON has RFC 3339 millisecond times, a null result and no error."""
    job = view("job_a", created_at_ns=T0_NS)

    snapshot = job_snapshot(job)

    assert snapshot == {
        "job_id": "job_a",
        "type": "mcp.test",
        "status": "queued",
        "created_at": "2026-12-03T17:32:48.123Z",
        "expires_at": "2026-12-03T17:33:48.123Z",
        "result": None,
    }
    assert list(snapshot) == [
        "job_id",
        "type",
        "status",
        "created_at",
        "expires_at",
        "result",
    ]


def test_job_snapshot_includes_a_non_empty_error() -> None:
    """A failed job shows its error text and its result."""
    job = view("job_a", status="error")
    job.error = "empty start command"
    job.result = {"partial": True}

    snapshot = job_snapshot(job)

    assert snapshot == {
        "job_id": "job_a",
        "type": "mcp.test",
        "status": "error",
        "created_at": "2026-12-03T17:32:48.123Z",
        "expires_at": "2026-12-03T17:33:48.123Z",
        "result": {"partial": True},
        "error": "empty start command",
    }


def test_session_snapshot_shows_the_job_status_and_result() -> None:
    """A session renders its job's status, readiness and result and its expiry."""
    job = view("job_a", status="running")
    job.result = {"tools": [{"name": "echo"}]}
    job.ready = True
    session = SessionView(
        session_id="sbx_1",
        job_id="job_a",
        workspace="ws_1",
        expires_at_ns=T0_NS + 30 * SECOND_NS,
    )

    snapshot = session_snapshot(session, job)

    assert snapshot == {
        "session_id": "sbx_1",
        "job_id": "job_a",
        "status": "running",
        "ready": True,
        "expires_at": "2026-12-03T17:33:18.123Z",
        "result": {"tools": [{"name": "echo"}]},
    }


def test_session_snapshot_of_a_running_job_before_ready_is_not_ready() -> None:
    """A running job whose server has not finished its handshake shows ready false."""
    job = view("job_a", status="running")
    session = SessionView(
        session_id="sbx_1", job_id="job_a", workspace="ws_1", expires_at_ns=T0_NS
    )

    snapshot = session_snapshot(session, job)

    assert snapshot == {
        "session_id": "sbx_1",
        "job_id": "job_a",
        "status": "running",
        "ready": False,
        "expires_at": "2026-12-03T17:32:48.123Z",
        "result": None,
    }


def test_session_snapshot_without_its_job_is_queued() -> None:
    """A session whose job is not folded yet shows queued and no result."""
    session = SessionView(
        session_id="sbx_1", job_id="job_a", workspace="ws_1", expires_at_ns=T0_NS
    )

    snapshot = session_snapshot(session, None)

    assert snapshot == {
        "session_id": "sbx_1",
        "job_id": "job_a",
        "status": "queued",
        "ready": False,
        "expires_at": "2026-12-03T17:32:48.123Z",
        "result": None,
    }
