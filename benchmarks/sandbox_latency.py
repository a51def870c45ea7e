"""Time from ``POST /v1/sandbox/sessions`` to ``ready``, against a bare spawn.

For each isolation the runtime offers on this machine (``process-group``
always, ``bubblewrap`` when :func:`runtime.sandbox.detect_isolation` finds it
working) a fresh runtime is started. The servers are the tests' tiny
standard-library server, ``python -m mcp_server_time`` and, when npm can
install it into a temporary prefix, ``node .../server-everything/dist/index.js``.
For each server the benchmark alternates two measurements, so both see the
same machine load:

- **api**: from just before the POST to the ``ready`` event on the session's
  SSE stream, then the session is deleted (not timed);
- **direct**: the same program spawned as a plain child, with a minimal
  environment and its stderr discarded, and handshaken by the benchmark's
  own newline-JSON-RPC client (:mod:`benchmarks.mcp_pipes`, not the
  runtime's client): from spawn to the ``tools/list`` answer.

The runtime's overhead is the difference of the two medians (and, less
sensitive to load drifting during the run, the median of the per-pair
differences). One untimed start of each kind comes first, so neither side
pays for cold file caches.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
import trio

from benchmarks.mcp_pipes import time_pipe_start
from benchmarks.sandbox_api import (
    close_session,
    open_session,
    program_path,
    serving_runtime,
)
from benchmarks.support import Figure, fresh_data_dir, percentile
from runtime.sandbox import (
    ISOLATION_BUBBLEWRAP,
    ISOLATION_PROCESS_GROUP,
    detect_isolation,
)
from tests.api import programs

RUNS: Final = 15
EVERYTHING_PACKAGE: Final = "@modelcontextprotocol/server-everything"
NPM_TIMEOUT_SECONDS: Final = 120
NPM_FLAGS: Final = ("--no-audit", "--no-fund", "--silent")
# Not under /tmp: a bubblewrap sandbox sees an empty /tmp, and the server's
# script must be visible inside it.
NPM_PARENT: Final = Path("/var/tmp")


@dataclass(frozen=True, slots=True)
class McpServer:
    """One server to start: its name in figures, the API's command, the argv."""

    name: str
    command: str
    argv: tuple[str, ...]


def measure_sandbox_latency(runs: int = RUNS) -> list[Figure]:
    """Start every server ``runs`` times per isolation; figures in ms."""
    isolations = [ISOLATION_PROCESS_GROUP]
    if detect_isolation() == ISOLATION_BUBBLEWRAP:
        isolations.append(ISOLATION_BUBBLEWRAP)
    else:
        _note("bubblewrap does not work here; only process-group is measured")

    figures: list[Figure] = []
    with _everything_install() as everything:
        servers = [tiny_server(), time_server()]
        if everything is not None:
            servers.append(everything)
        for isolation in isolations:
            with serving_runtime(isolation) as url:
                for server in servers:
                    figures += trio.run(_measure, url, isolation, server, runs)
    return figures


def tiny_server() -> McpServer:
    """The tests' standard-library server, ``tests/api/programs/tiny_mcp.py``.

    It starts in tens of milliseconds, so the runtime's own share stands out
    from the jitter of a server's start-up.
    """
    python = program_path("python")
    script = str(Path(programs.__file__).parent / "tiny_mcp.py")
    return McpServer("tiny", f"python {script}", (python, script))


def time_server() -> McpServer:
    """``python -m mcp_server_time`` from PyPI."""
    python = program_path("python")
    return McpServer(
        "time", "python -m mcp_server_time", (python, "-m", "mcp_server_time")
    )


async def _measure(
    url: str, isolation: str, server: McpServer, runs: int
) -> list[Figure]:
    api: list[float] = []
    direct: list[float] = []
    with fresh_data_dir() as work_dir:
        async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
            await time_pipe_start(server.argv, work_dir)
            opened = await open_session(client, server.command)
            await close_session(client, opened.session_id)
            for _ in range(runs):
                direct.append(await time_pipe_start(server.argv, work_dir))
                opened = await open_session(client, server.command)
                api.append(opened.seconds)
                await close_session(client, opened.session_id)

    name = f"sandbox.start.{server.name}.{isolation}"
    api_ms = sorted(s * 1000.0 for s in api)
    direct_ms = sorted(s * 1000.0 for s in direct)
    paired = [(a - d) * 1000.0 for a, d in zip(api, direct, strict=True)]
    return [
        Figure(f"{name}.api.median", statistics.median(api_ms), "ms", False),
        Figure(f"{name}.api.p90", percentile(api_ms, 0.90), "ms", False),
        Figure(f"{name}.direct.median", statistics.median(direct_ms), "ms", False),
        Figure(f"{name}.direct.p90", percentile(direct_ms, 0.90), "ms", False),
        Figure(
            f"{name}.overhead",
            statistics.median(api_ms) - statistics.median(direct_ms),
            "ms",
            False,
        ),
        Figure(f"{name}.overhead.paired", statistics.median(paired), "ms", False),
    ]


@contextmanager
def _everything_install() -> Iterator[McpServer | None]:
    """Install server-everything with npm into a temporary prefix, if possible."""
    npm = shutil.which("npm")
    node = shutil.which("node")
    if npm is None or node is None:
        _note("npm or node is not installed; server-everything is skipped")
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="matrix-bench-npm-", dir=NPM_PARENT) as d:
        try:
            subprocess.run(
                [npm, "install", "--prefix", d, *NPM_FLAGS, EVERYTHING_PACKAGE],
                check=True,
                timeout=NPM_TIMEOUT_SECONDS,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            _note(f"npm install {EVERYTHING_PACKAGE} failed ({exc}); skipped")
            yield None
            return
        script = Path(d) / "node_modules" / EVERYTHING_PACKAGE / "dist" / "index.js"
        yield McpServer(
            "everything", f"node {script}", (program_path("node"), str(script))
        )


def _note(text: str) -> None:
    print(f"# note: {text}", flush=True)
