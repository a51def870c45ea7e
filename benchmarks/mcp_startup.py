"""Spawn-to-tools/list time of real MCP servers through the sandbox and client.

Usage: ``python -m benchmarks.mcp_startup [--rounds N]``.

For each server and each way of starting it, one warm-up start (which fills
the npm cache on a first run) is followed by ``--rounds`` measured starts.
A start is timed from just before the process is spawned until ``tools/list``
has answered; then one ``tools/call`` round trip is timed. The ways, which
alternate within each round so they all see the same load, are:

- ``bare``: the same client over a plain child process that inherits the
  runtime's environment, with no sandbox (the floor);
- ``process-group`` and ``bubblewrap``: through ``open_sandboxed_process``.

Each line gives the best and the median of the rounds, because the machine
is shared and single rounds are noisy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from runtime.mcp import McpTransport, RecordKind, open_mcp_client
from runtime.sandbox import (
    SYSTEM_PATH,
    SandboxSpec,
    detect_isolation,
    open_sandboxed_process,
)

CACHE_DIR = Path(
    os.environ.get(
        "MATRIX_BENCH_CACHE", str(Path.home() / ".cache" / "matrix-runtime-bench")
    )
)
SEARCH_PATH = os.pathsep.join([str(Path(sys.executable).parent), SYSTEM_PATH])
SERVERS: dict[str, tuple[list[str], str, dict[str, Any]]] = {
    "time": (
        ["python", "-m", "mcp_server_time"],
        "get_current_time",
        {"timezone": "Europe/Paris"},
    ),
    "everything": (
        ["npx", "-y", "@modelcontextprotocol/server-everything"],
        "echo",
        {"message": "hi"},
    ),
}


@dataclass(frozen=True)
class _Pipes:
    stdin: trio.abc.SendStream
    stdout: trio.abc.ReceiveStream
    stderr: trio.abc.ReceiveStream


class _Discard:
    async def record(self, kind: RecordKind, value: Any) -> None:
        return None


@asynccontextmanager
async def _bare(argv: list[str], work_dir: Path) -> AsyncIterator[McpTransport]:
    program = shutil.which(argv[0], path=SEARCH_PATH)
    assert program is not None
    process = await trio.lowlevel.open_process(
        [program, *argv[1:]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(work_dir),
        env={
            **os.environ,
            "npm_config_yes": "true",
            "npm_config_cache": str(CACHE_DIR / "npm"),
        },
        start_new_session=True,
    )
    assert process.stdin and process.stdout and process.stderr
    try:
        yield _Pipes(process.stdin, process.stdout, process.stderr)
    finally:
        with trio.CancelScope(shield=True):
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def _start_once(server: str, way: str) -> tuple[float, float]:
    argv, tool, arguments = SERVERS[server]
    with tempfile.TemporaryDirectory() as scratch:
        work_dir = Path(scratch) / "work"
        work_dir.mkdir(mode=0o700)
        started = time.perf_counter()
        opener: AbstractAsyncContextManager[McpTransport]
        if way == "bare":
            opener = _bare(argv, work_dir)
        else:
            spec = SandboxSpec(
                argv=argv,
                env={},
                work_dir=work_dir,
                cache_dir=CACHE_DIR,
                isolation=way,
                search_path=SEARCH_PATH,
                # npx -y may have to download server-everything.
                network="host",
            )
            opener = open_sandboxed_process(spec)
        async with (
            opener as transport,
            open_mcp_client(transport, _Discard()) as client,
        ):
            await client.initialize()
            await client.list_tools()
            listed = time.perf_counter()
            await client.call_tool(tool, arguments, timeout=30)
            called = time.perf_counter()
    return listed - started, called - listed


async def _main(rounds: int) -> None:
    ways = ["bare", "process-group"]
    if detect_isolation() == "bubblewrap":
        ways.append("bubblewrap")
    print(f"# {rounds} rounds after one warm-up; best / median")
    for server in SERVERS:
        if server == "everything" and shutil.which("npx") is None:
            continue
        for way in ways:
            await _start_once(server, way)
        starts: dict[str, list[float]] = {way: [] for way in ways}
        calls: dict[str, list[float]] = {way: [] for way in ways}
        # Ways alternate within a round, so that all of them see the same
        # machine load on a shared machine.
        for _ in range(rounds):
            for way in ways:
                start, call = await _start_once(server, way)
                starts[way].append(start)
                calls[way].append(call)
        for way in ways:
            print(
                f"{server:<11} {way:<14} spawn->tools/list "
                f"{min(starts[way]):.3f} / {statistics.median(starts[way]):.3f} s   "
                f"tools/call {1000 * min(calls[way]):.1f} / "
                f"{1000 * statistics.median(calls[way]):.1f} ms"
            )


def main() -> None:
    """Parse the arguments and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    trio.run(_main, parser.parse_args().rounds)


if __name__ == "__main__":
    main()
