"""A full event log: requests get a clear 507, and the runtime says it is not ready."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.server_process import running_server

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
