"""Tenancy: another workspace's jobs and sandboxes answer like unknown ones."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.auth_support import auth_server, bearer, signup
from tests.server_process import BIN_DIR

OPERATOR_TOKEN = "op-token-tenancy"
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
        command = {"start_command": "node missing.js"}
        job = http.post(
            "/v1/jobs", json={"type": "mcp.test", "payload": command}, headers=alice
        )
        sandbox = http.post("/v1/sandbox/sessions", json=command, headers=alice)
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

    answers = _call_all(tenants, _matrix(tenants.job_id, tenants.session_id))
    unknown = _call_all(tenants, _matrix("job_000000000000000000", "sbx_0000000000"))
    listed = tenants.http.get("/v1/jobs", headers=tenants.bob).json()

    assert answers == [(404, expected) for *_, expected in _matrix("", "")]
    assert unknown == answers
    assert listed == {"jobs": []}
    assert _event_count(tenants.data_dir) == before


def _call_all(tenants: Tenants, matrix: list[Call]) -> list[tuple[int, object]]:
    answers = []
    for method, path, body, _ in matrix:
        response = tenants.http.request(method, path, json=body, headers=tenants.bob)
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
