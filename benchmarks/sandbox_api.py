"""The real runtime as a child process, and the sandbox requests made to it.

The server is ``matrix-runtime serve`` on 127.0.0.1 with a fresh data
directory, started exactly as the API tests start it. Only the rate limit is
lifted, since a benchmark is one client sending as fast as it can.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import httpx

from benchmarks.support import fresh_data_dir
from tests.server_process import BIN_DIR, running_server

SESSION_TTL_SECONDS: Final = 300
FAILED_STATUSES: Final = frozenset({"error", "cancelled", "expired"})
# The runtime resolves a bare program on its own PATH; the project's
# environment comes first so that ``python`` has the MCP servers installed.
SERVER_PATH: Final = f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"


class SandboxBenchmarkError(Exception):
    """The runtime refused or failed what the benchmark asked of it."""


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A sandbox that reached ``ready``, and how long that took."""

    session_id: str
    seconds: float


@contextmanager
def serving_runtime(isolation: str) -> Iterator[str]:
    """A runtime with sandboxes isolated as ``isolation``; yields its URL."""
    env = {
        "PATH": SERVER_PATH,
        "MATRIX_RUNTIME_SANDBOX": isolation,
        "MATRIX_RUNTIME_RATE_LIMIT_RPM": "0",
        "MATRIX_RUNTIME_MAX_TTL_SECONDS": str(SESSION_TTL_SECONDS),
    }
    with fresh_data_dir() as path, running_server(path / "data", env) as server:
        yield server.url


def program_path(name: str) -> str:
    """The program the runtime will run for a bare ``name``."""
    found = shutil.which(name, path=SERVER_PATH)
    if found is None:
        raise SandboxBenchmarkError(f"{name} is not installed")
    return found


async def open_session(client: httpx.AsyncClient, command: str) -> OpenedSession:
    """POST a sandbox and follow its events until ``ready``.

    The time runs from just before the POST to the moment the ``ready``
    event arrives on the session's SSE stream: what a client waits.

    Raises:
        SandboxBenchmarkError: the POST was refused or the job failed.
    """
    started = time.perf_counter()
    response = await client.post(
        "/v1/sandbox/sessions",
        json={"start_command": command, "ttl_seconds": SESSION_TTL_SECONDS},
    )
    if response.status_code != 202:
        raise SandboxBenchmarkError(
            f"POST /v1/sandbox/sessions: {response.status_code} {response.text}"
        )
    body = response.json()
    async with client.stream("GET", body["events_url"]) as events:
        async for line in events.aiter_lines():
            if not line.startswith("data:"):
                continue
            step = json.loads(line[5:])
            if step["step"] == "ready":
                return OpenedSession(body["session_id"], time.perf_counter() - started)
            if step["status"] in FAILED_STATUSES:
                raise SandboxBenchmarkError(f"sandbox {command!r} failed: {step}")
    raise SandboxBenchmarkError(f"sandbox {command!r}: events ended before ready")


async def close_session(client: httpx.AsyncClient, session_id: str) -> None:
    """DELETE the sandbox; returns once its job has ended."""
    response = await client.delete(f"/v1/sandbox/sessions/{session_id}")
    if response.status_code != 200:
        raise SandboxBenchmarkError(
            f"DELETE sandbox: {response.status_code} {response.text}"
        )


async def call_tool(
    client: httpx.AsyncClient, session_id: str, name: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """POST one tools/call and return the tool's result.

    Raises:
        SandboxBenchmarkError: the call was refused or the tool failed.
    """
    response = await client.post(
        f"/v1/sandbox/sessions/{session_id}/tools/call",
        json={"name": name, "arguments": arguments},
    )
    if response.status_code != 200:
        raise SandboxBenchmarkError(
            f"tools/call {name}: {response.status_code} {response.text}"
        )
    result: dict[str, Any] = response.json()["result"]
    if result.get("isError"):
        raise SandboxBenchmarkError(f"tools/call {name} failed: {result}")
    return result
