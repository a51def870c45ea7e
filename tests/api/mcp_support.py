"""Shared pieces of the MCP job tests: servers to run, API calls, /proc scans."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from runtime.sandbox import detect_isolation
from tests.runtime.support import EVERYTHING, TEST_CACHE_DIR
from tests.server_process import ServerProcess, running_server

T = TypeVar("T")

BIN_DIR = Path(sys.executable).parent
TINY_SERVER = Path(__file__).parent / "programs" / "tiny_mcp.py"
TIME_COMMAND = "python -m mcp_server_time"
EVERYTHING_COMMAND = f"npx -y {EVERYTHING}"
EVERYTHING_MARKER = "server-everything"
WAIT = 30.0
"""Upper bound, in seconds, on waiting for any job to reach a state."""
POLL = 0.05
TERMINAL = frozenset({"complete", "error", "expired", "cancelled"})
BUBBLEWRAP_WORKS = detect_isolation() == "bubblewrap"
ISOLATIONS = ["bubblewrap", "process-group"] if BUBBLEWRAP_WORKS else ["process-group"]


def tiny_command(*flags: str) -> str:
    """The start command of the tiny test server with ``flags``."""
    return " ".join(["python", str(TINY_SERVER), *flags])


def server_env(**overrides: str) -> dict[str, str]:
    """Environment for a test runtime: this interpreter's ``python`` first."""
    env = {
        # A bare "python" in a start command must be the interpreter that has
        # mcp-server-time installed, whatever PATH pytest was started with.
        "PATH": os.pathsep.join([str(BIN_DIR), os.environ.get("PATH", "")]),
        "MATRIX_RUNTIME_MAX_TTL_SECONDS": "120",
        "MATRIX_RUNTIME_MAX_CONCURRENT_JOBS": "16",
        "MATRIX_RUNTIME_SSE_KEEPALIVE_SECONDS": "0.5",
    }
    env.update(overrides)
    return env


def prepare_data_dir(data_dir: Path) -> Path:
    """Create ``data_dir`` with its package cache pointing at the warm test cache.

    ``npx -y`` then starts from a warm npm cache instead of downloading the
    package for every new data directory.
    """
    data_dir.mkdir(parents=True)
    TEST_CACHE_DIR.mkdir(parents=True, exist_ok=True)
    (data_dir / "cache").symlink_to(TEST_CACHE_DIR, target_is_directory=True)
    return data_dir


@contextmanager
def runtime_server(data_dir: Path, **overrides: str) -> Iterator[ServerProcess]:
    """A real runtime on a prepared data directory, stopped with SIGTERM."""
    if not data_dir.exists():
        prepare_data_dir(data_dir)
    with running_server(data_dir, server_env(**overrides)) as server:
        yield server


class Api:
    """Calls to one runtime's HTTP API."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.url = server.url
        self.client = httpx.Client(base_url=server.url, timeout=30.0)

    def open_sandbox(self, command: str, ttl_seconds: int = 120) -> dict[str, Any]:
        """POST a sandbox session; returns the 202 body."""
        response = self.client.post(
            "/v1/sandbox/sessions",
            json={"start_command": command, "ttl_seconds": ttl_seconds},
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    def submit(
        self, job_type: str, payload: dict[str, Any], ttl_seconds: int = 120
    ) -> str:
        """POST a job; returns its id."""
        response = self.client.post(
            "/v1/jobs",
            json={"type": job_type, "ttl_seconds": ttl_seconds, "payload": payload},
        )
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])

    def job(self, job_id: str) -> dict[str, Any]:
        """GET one job's snapshot."""
        response = self.client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_for_job(
        self, job_id: str, statuses: frozenset[str] = TERMINAL, timeout: float = WAIT
    ) -> dict[str, Any]:
        """Poll a job until its status is one of ``statuses``; its snapshot."""
        return wait_until(
            lambda: (job := self.job(job_id))["status"] in statuses and job,
            timeout,
            f"job {job_id} never reached {sorted(statuses)}",
        )

    def call_tool(
        self, session_id: str, name: str, arguments: dict[str, Any]
    ) -> httpx.Response:
        """POST a tool call to a sandbox session."""
        return self.client.post(
            f"/v1/sandbox/sessions/{session_id}/tools/call",
            json={"name": name, "arguments": arguments},
        )

    def events_url(self, job_id: str) -> str:
        """The absolute URL of a job's event stream."""
        return f"{self.url}/v1/jobs/{job_id}/events"

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


def wait_until(
    check: Callable[[], T | bool | None], timeout: float = WAIT, what: str = ""
) -> T:
    """Poll ``check`` until it returns something truthy and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(what or f"condition not met within {timeout:g} s")
        time.sleep(POLL)


def sandbox_pids(data_dir: Path, job_id: str = "") -> set[int]:
    """Live processes working inside ``<data>/sandboxes`` (or one job's sandbox)."""
    root = str((data_dir / "sandboxes" / job_id).resolve())
    found = set()
    for pid in _live_pids():
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd").removesuffix(" (deleted)")
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + "/"):
            found.add(pid)
    return found


def start_time(pid: int) -> int | None:
    """The start time of ``pid`` (clock ticks since boot), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def marked_pids(data_dir: Path, marker: str = EVERYTHING_MARKER) -> set[int]:
    """Live processes of this runtime's sandboxes whose command line has ``marker``.

    A sandbox's environment names the data directory (its home and package
    cache), which tells this runtime's servers from anyone else's.
    """
    needle = str(data_dir.resolve()).encode()
    found = set()
    for pid in _live_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and needle in environ:
            found.add(pid)
    return found


def _live_pids() -> Iterator[int]:
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        if stat[stat.rindex(b")") + 2 :].split()[0] not in (b"Z", b"X"):
            yield int(name)


def steps(frames: list[Any]) -> list[str]:
    """The step names of event frames, in order."""
    return [frame.step for frame in frames]


def only_events(frames: list[Any]) -> list[dict[str, Any]]:
    """The data of event frames, in order."""
    return [frame.data for frame in frames]
