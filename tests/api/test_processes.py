"""No sandbox process outlives its job: cancel, TTL expiry, server shutdown.

Each test runs under every isolation that works here. A process belongs to
this runtime's sandboxes when its working directory is inside
``<data>/sandboxes``; ``npx`` servers are also looked for by command line.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.mcp_support import (
    BIN_DIR,
    EVERYTHING_COMMAND,
    ISOLATIONS,
    TIME_COMMAND,
    Api,
    marked_pids,
    runtime_server,
    sandbox_pids,
    tiny_command,
)
from tests.api.sse_client import open_sse
from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow

HAS_NPX = shutil.which("npx") is not None
LINGERING = tiny_command("--linger")
"""A server that does not exit when its stdin closes."""
IDLE_SECONDS = 12.0
"""Longer than trio's idle worker threads live (10 s)."""
KEEPALIVE_SECONDS = 0.5
"""The test runtimes' keepalive interval: idle time is counted in keepalives."""
NPX_NETWORK = {"MATRIX_RUNTIME_SANDBOX_NETWORK": "host"}
"""npx -y may have to download server-everything."""


@pytest.fixture(scope="module", params=ISOLATIONS)
def runtime(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One runtime per isolation mode for the module."""
    isolation: str = request.param
    data_dir = tmp_path_factory.mktemp(f"processes-{isolation}") / "data"
    with runtime_server(
        data_dir, MATRIX_RUNTIME_SANDBOX=isolation, **NPX_NETWORK
    ) as server:
        yield server


def _commands(with_time: bool = True) -> list[str]:
    commands = [LINGERING]
    if with_time:
        commands.append(TIME_COMMAND)
    if HAS_NPX:
        commands.append(EVERYTHING_COMMAND)
    return commands


def _open_ready(api: Api, commands: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Open one sandbox per (command, ttl) and wait until each is ready."""
    opened = [api.open_sandbox(command, ttl_seconds=ttl) for command, ttl in commands]
    for sandbox in opened:
        with open_sse(f"{api.url}{sandbox['events_url']}") as stream:
            stream.until_step("ready")
    return opened


def _running_per_job(data_dir: Path, opened: list[dict[str, Any]]) -> list[bool]:
    return [bool(sandbox_pids(data_dir, s["job_id"])) for s in opened]


def test_no_process_left_after_cancel(runtime: ServerProcess, api: Api) -> None:
    """DELETE kills every process of the sandbox, npx's node children included."""
    opened = _open_ready(api, [(command, 120) for command in _commands()])
    running = _running_per_job(runtime.data_dir, opened)
    npx_running = marked_pids(runtime.data_dir)

    statuses = [
        api.client.delete(f"/v1/sandbox/sessions/{s['session_id']}").json()
        for s in opened
    ]

    assert running == [True] * len(opened)
    assert bool(npx_running) is HAS_NPX
    assert statuses == [{"ok": True, "status": "cancelled"}] * len(opened)
    assert sandbox_pids(runtime.data_dir) == set()
    assert marked_pids(runtime.data_dir) == set()


def test_no_process_left_after_ttl_expiry(runtime: ServerProcess, api: Api) -> None:
    """A sandbox that expires takes its whole process tree with it."""
    ttls = [(LINGERING, 2)] + ([(EVERYTHING_COMMAND, 6)] if HAS_NPX else [])
    opened = _open_ready(api, ttls)
    running = _running_per_job(runtime.data_dir, opened)

    ended = [api.wait_for_job(s["job_id"]) for s in opened]

    assert running == [True] * len(opened)
    assert [job["status"] for job in ended] == ["expired"] * len(opened)
    assert sandbox_pids(runtime.data_dir) == set()
    assert marked_pids(runtime.data_dir) == set()


def test_idle_sandbox_keeps_running(runtime: ServerProcess, api: Api) -> None:
    """A sandbox left idle past the life of trio's worker threads still runs."""
    if api.client.get("/v1/capabilities").json()["isolation"] != "bubblewrap":
        pytest.skip("only bubblewrap could tie a sandbox to the thread starting it")
    opened = api.open_sandbox(LINGERING)

    with open_sse(f"{api.url}{opened['events_url']}") as stream:
        stream.until_step("ready")
        events = []
        for count, frame in enumerate(stream.frames(), start=1):
            if frame.is_event:
                events.append(frame.data)
                break
            if count * KEEPALIVE_SECONDS >= IDLE_SECONDS:
                break
        answered = api.call_tool(opened["session_id"], "echo", {"text": "awake"})
        api.client.delete(f"/v1/sandbox/sessions/{opened['session_id']}")

    assert events == []
    assert answered.json() == {
        "ok": True,
        "result": {"content": [{"type": "text", "text": "awake"}]},
    }


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_no_process_left_after_sigterm_shutdown(tmp_path: Path, isolation: str) -> None:
    """SIGTERM ends every sandbox, records it cancelled, and leaves no process."""
    data_dir = tmp_path / "data"
    with runtime_server(
        data_dir, MATRIX_RUNTIME_SANDBOX=isolation, **NPX_NETWORK
    ) as server:
        api = Api(server)
        opened = _open_ready(api, [(command, 120) for command in _commands()])
        running = _running_per_job(data_dir, opened)
        api.close()
        with open_sse(f"{server.url}{opened[0]['events_url']}") as stream:
            stream.until_step("ready")
            stopping = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            tail = stream.rest()
        exit_code = server.process.wait(timeout=20)
        stopped_after = time.monotonic() - stopping

    transcript = subprocess.run(
        [
            str(BIN_DIR / "matrix-runtime"),
            "replay",
            opened[0]["session_id"],
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert running == [True] * len(opened)
    assert exit_code == 0
    # An open event stream gets its job's end and closes; it does not hold
    # the shutdown until Hypercorn's 5 s graceful timeout cuts it.
    assert tail[-1].data == {
        "step": "cancel",
        "status": "cancelled",
        "message": "Job cancelled: the runtime shut down",
    }
    assert stream.ended
    assert stopped_after < 4.0
    assert sandbox_pids(data_dir) == set()
    assert marked_pids(data_dir) == set()
    assert transcript[-2].endswith(
        "step cancel [cancelled] Job cancelled: the runtime shut down"
    )
    assert transcript[-1].endswith("finished cancelled")
