"""Tenancy: another workspace's jobs and sandboxes answer like unknown ones.

The same holds for the unauthenticated local caller of local-dev: it lives
in the local workspace and sees nothing a signed-in user owns.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.auth_support import auth_server, bearer, signup
from tests.api.mcp_support import server_env, tiny_command, wait_until
from tests.server_process import BIN_DIR

OPERATOR_TOKEN = "op-token-tenancy"
UNKNOWN_JOB = "job_000000000000000000"
UNKNOWN_SESSION = "sbx_0000000000"
MISSING_SCRIPT = {"start_command": "node missing.js"}
JOB_NOT_FOUND = {"error": "job not found", "status": 404}
SANDBOX_NOT_FOUND = {"error": "sandbox session not found", "status": 404}

Call = tuple[str, str, dict[str, object] | None, dict[str, object]]
"""Method, path, JSON body, and the answer expected for another workspace."""


@dataclass
class Tenants:
    """A server with two workspaces; A owns one job and one sandbox."""

    http: httpx.Client
    data_dir: Path
    alice: dict[str, str]
    bob: dict[str, str]
    job_id: str
    session_id: str


def _event_count(data_dir: Path) -> int:
    printed = subprocess.run(
        [str(BIN_DIR / "matrix-runtime"), "events", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return len(printed.stdout.splitlines())


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    data_dir = tmp_path_factory.mktemp("tenancy") / "data"
    env = {
        "MATRIX_RUNTIME_MODE": "customer-agent",
        "MATRIX_RUNTIME_API_TOKEN": OPERATOR_TOKEN,
    }
    with (
        auth_server(data_dir, env=env) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        alice = bearer(signup(http, "alice@example.com", name="Alice").json()["token"])
        bob = bearer(signup(http, "bob@example.com", name="Bob").json()["token"])
        job = http.post(
            "/v1/jobs",
            json={"type": "mcp.test", "payload": MISSING_SCRIPT},
            headers=alice,
        )
        sandbox = http.post("/v1/sandbox/sessions", json=MISSING_SCRIPT, headers=alice)
        # Both end quickly (the script does not exist); reading their event
        # streams to the end waits for that, so the log is quiet afterwards.
        http.get(job.json()["events_url"], headers=alice)
        http.get(sandbox.json()["events_url"], headers=alice)
        yield Tenants(
            http,
            data_dir,
            alice,
            bob,
            job.json()["job_id"],
            sandbox.json()["session_id"],
        )


def _matrix(job_id: str, session_id: str) -> list[Call]:
    sandbox = f"/v1/sandbox/sessions/{session_id}"
    return [
        ("GET", f"/v1/jobs/{job_id}", None, JOB_NOT_FOUND),
        ("GET", f"/v1/jobs/{job_id}/events", None, JOB_NOT_FOUND),
        ("DELETE", f"/v1/jobs/{job_id}", None, JOB_NOT_FOUND),
        ("GET", sandbox, None, SANDBOX_NOT_FOUND),
        ("GET", f"{sandbox}/events", None, SANDBOX_NOT_FOUND),
        ("GET", f"{sandbox}/tools", None, SANDBOX_NOT_FOUND),
        (
            "POST",
            f"{sandbox}/tools/call",
            {"name": "get_current_time", "arguments": {}},
            SANDBOX_NOT_FOUND,
        ),
        ("DELETE", sandbox, None, SANDBOX_NOT_FOUND),
    ]


def test_tenancy_other_workspace_gets_404_and_changes_nothing(tenants: Tenants) -> None:
    """Each endpoint of A's job and sandbox, with B's session: 404, log unchanged."""
    before = _event_count(tenants.data_dir)

    answers = _call_all(
        tenants.http, tenants.bob, _matrix(tenants.job_id, tenants.session_id)
    )
    unknown = _call_all(
        tenants.http, tenants.bob, _matrix(UNKNOWN_JOB, UNKNOWN_SESSION)
    )
    listed = tenants.http.get("/v1/jobs", headers=tenants.bob).json()

    assert answers == [(404, expected) for *_, expected in _matrix("", "")]
    assert unknown == answers
    assert listed == {"jobs": []}
    assert _event_count(tenants.data_dir) == before


def _call_all(
    http: httpx.Client, headers: dict[str, str], matrix: list[Call]
) -> list[tuple[int, object]]:
    answers = []
    for method, path, body, _ in matrix:
        response = http.request(method, path, json=body, headers=headers)
        answers.append((response.status_code, response.json()))
    return answers


def test_tenancy_owner_and_operator_see_the_job(tenants: Tenants) -> None:
    """A lists and reads its own job; the operator token sees every workspace."""
    operator = bearer(OPERATOR_TOKEN)

    mine = tenants.http.get("/v1/jobs", headers=tenants.alice).json()["jobs"]
    everything = tenants.http.get("/v1/jobs", headers=operator).json()["jobs"]
    read = tenants.http.get(f"/v1/jobs/{tenants.job_id}", headers=operator)

    assert tenants.job_id in {job["job_id"] for job in mine}
    assert len(mine) == 2
    assert {job["job_id"] for job in everything} == {job["job_id"] for job in mine}
    assert read.status_code == 200


@dataclass
class LocalTenants:
    """A local-dev server without an operator token, with a user and local jobs.

    Alice's sandbox runs (ready) for the whole module, so a call that slipped
    past the workspace check would reach a live server instead of failing.
    """

    http: httpx.Client
    data_dir: Path
    alice: dict[str, str]
    alice_job_id: str
    alice_session_id: str
    alice_sandbox_job_id: str
    local_job_id: str


@pytest.fixture(scope="module")
def local_tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTenants]:
    data_dir = tmp_path_factory.mktemp("tenancy-local") / "data"
    env = {"PATH": server_env()["PATH"], "MATRIX_RUNTIME_MAX_TTL_SECONDS": "120"}
    with (
        auth_server(data_dir, env=env) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        alice = bearer(signup(http, "alice@example.com", name="Alice").json()["token"])
        job = http.post(
            "/v1/jobs",
            json={"type": "mcp.test", "payload": MISSING_SCRIPT},
            headers=alice,
        ).json()
        sandbox = http.post(
            "/v1/sandbox/sessions",
            json={"start_command": tiny_command(), "ttl_seconds": 120},
            headers=alice,
        ).json()
        local = http.post(
            "/v1/jobs", json={"type": "mcp.test", "payload": MISSING_SCRIPT}
        ).json()
        http.get(job["events_url"], headers=alice)
        http.get(local["events_url"])
        session = f"/v1/sandbox/sessions/{sandbox['session_id']}"
        wait_until(
            lambda: http.get(session, headers=alice).json()["ready"],
            what="Alice's sandbox never became ready",
        )
        yield LocalTenants(
            http,
            data_dir,
            alice,
            job["job_id"],
            sandbox["session_id"],
            sandbox["job_id"],
            local["job_id"],
        )
        http.delete(session, headers=alice)


def test_tenancy_local_caller_gets_404_for_a_users_jobs(
    local_tenants: LocalTenants,
) -> None:
    """Without credentials, a user's job and live sandbox answer like unknown ids."""
    t = local_tenants
    before = _event_count(t.data_dir)

    answers = _call_all(t.http, {}, _matrix(t.alice_job_id, t.alice_session_id))
    unknown = _call_all(t.http, {}, _matrix(UNKNOWN_JOB, UNKNOWN_SESSION))
    still_up = t.http.get(
        f"/v1/sandbox/sessions/{t.alice_session_id}", headers=t.alice
    ).json()

    assert answers == [(404, expected) for *_, expected in _matrix("", "")]
    assert unknown == answers
    assert (still_up["status"], still_up["ready"]) == ("running", True)
    assert _event_count(t.data_dir) == before


def test_tenancy_local_caller_lists_only_local_jobs(
    local_tenants: LocalTenants,
) -> None:
    """The local caller lists and reads its own job; Alice never sees it."""
    t = local_tenants

    local_list = t.http.get("/v1/jobs").json()["jobs"]
    local_read = t.http.get(f"/v1/jobs/{t.local_job_id}")
    alice_list = t.http.get("/v1/jobs", headers=t.alice).json()["jobs"]
    alice_read = t.http.get(f"/v1/jobs/{t.local_job_id}", headers=t.alice)

    assert [job["job_id"] for job in local_list] == [t.local_job_id]
    assert local_read.status_code == 200
    assert {job["job_id"] for job in alice_list} == {
        t.alice_job_id,
        t.alice_sandbox_job_id,
    }
    assert (alice_read.status_code, alice_read.json()) == (404, JOB_NOT_FOUND)


def _tool_run_on(
    http: httpx.Client, target_job_id: str, headers: dict[str, str]
) -> dict[str, object]:
    """Run ``echo`` through tool.run on the live server of ``target_job_id``."""
    payload = {"job_id": target_job_id, "tool": "echo", "arguments": {"text": "hi"}}
    created = http.post(
        "/v1/jobs", json={"type": "tool.run", "payload": payload}, headers=headers
    )
    assert created.status_code == 202, created.text
    http.get(created.json()["events_url"], headers=headers)
    snapshot: dict[str, object] = http.get(
        f"/v1/jobs/{created.json()['job_id']}", headers=headers
    ).json()
    return {key: snapshot.get(key) for key in ("status", "result", "error")}


def test_tenancy_local_tool_run_cannot_reach_a_users_sandbox(
    local_tenants: LocalTenants,
) -> None:
    """tool.run from the local caller on Alice's sandbox fails like an unknown job."""
    t = local_tenants

    hidden = _tool_run_on(t.http, t.alice_sandbox_job_id, {})
    unknown = _tool_run_on(t.http, UNKNOWN_JOB, {})
    owner = _tool_run_on(t.http, t.alice_sandbox_job_id, t.alice)

    assert hidden == {
        "status": "error",
        "result": None,
        "error": f"job {t.alice_sandbox_job_id} not found",
    }
    assert unknown == {
        "status": "error",
        "result": None,
        "error": f"job {UNKNOWN_JOB} not found",
    }
    assert owner["status"] == "complete"
