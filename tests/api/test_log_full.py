"""A full event log: requests get a clear 507, and the runtime says it is not ready."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.server_process import ServerProcess, running_server

MAP_SIZE = 1 << 20
"""The smallest map the runtime accepts; a few large requests fill it."""


def test_full_log_answers_507_and_is_not_ready(tmp_path: Path) -> None:
    """Once a commit fails for lack of room, clients and probes are told so."""
    env = {"MATRIX_RUNTIME_MAP_SIZE": str(MAP_SIZE)}
    big = {"start_command": "node server.js", "padding": "x" * 300_000}

    with running_server(tmp_path / "data", env) as server:
        statuses = []
        for _ in range(8):
            response = httpx.post(
                f"{server.url}/v1/jobs",
                json={"type": "mcp.test", "payload": big},
                timeout=30,
            )
            statuses.append(response.status_code)
            if response.status_code != 202:
                refused = response
                break
        ready = httpx.get(f"{server.url}/v1/ready", timeout=30)
        # The accepted jobs run on (their servers fail to start) and try to
        # record more than fits: each ends without harming the runtime.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "job_id=" not in _last_job_line(server):
            time.sleep(0.1)
        health = httpx.get(f"{server.url}/v1/health", timeout=30)
        log_text = server.log_text()

    assert statuses[-1] == 507 and set(statuses[:-1]) == {202}
    assert refused.json() == {
        "error": "the event log is full; nothing was recorded",
        "status": 507,
    }
    assert (ready.status_code, ready.json()["checks"]["log_writable"]) == (503, False)
    assert "request failed: the event log refused it: the event log is full" in (
        log_text
    )
    assert "Traceback" not in log_text
    assert health.json()["status"] == "ok"


def _last_job_line(server: ServerProcess) -> str:
    """The last line about a job ending, or about its end not being recorded."""
    lines = [
        line
        for line in server.log_text().splitlines()
        if "job finished" in line or "not recorded" in line or "job stopped" in line
    ]
    return lines[-1] if len(lines) >= 3 else ""
