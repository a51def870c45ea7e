"""``tools/call`` round trips through the API, against the server's own pipes.

One ``python -m mcp_server_time`` sandbox is opened and made ready (with the
runtime's default isolation: bubblewrap where it works), then
``get_current_time {"timezone": "UTC"}`` is called for a fixed time by 1
client (sequential calls), then by 8 and by 32 concurrent clients sharing one
httpx connection pool. Each call's answer is checked. The same calls are then
made to a plainly spawned copy of the server over its pipes
(:mod:`benchmarks.mcp_pipes`): no HTTP, no actor, no log.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import httpx
import trio

from benchmarks.mcp_pipes import PipeServer, spawn_pipe_server
from benchmarks.sandbox_api import (
    call_tool,
    close_session,
    open_session,
    serving_runtime,
)
from benchmarks.sandbox_latency import time_server
from benchmarks.support import Figure, fresh_data_dir, percentile
from runtime.sandbox import detect_isolation

CLIENTS: Final = (1, 8, 32)
SECONDS: Final = 3.0
TOOL: Final = "get_current_time"
ARGUMENTS: Final[dict[str, Any]] = {"timezone": "UTC"}

Call = Callable[[], Awaitable[None]]


def measure_tool_calls(seconds: float = SECONDS) -> list[Figure]:
    """Calls/s and p50/p99 latency per client count, via the API and direct."""
    server = time_server()
    with serving_runtime(detect_isolation()) as url:
        figures = trio.run(_through_api, url, server.command, seconds)
    with fresh_data_dir() as work_dir:
        figures += trio.run(_direct, server.argv, work_dir, seconds)
    return figures


async def _through_api(url: str, command: str, seconds: float) -> list[Figure]:
    limits = httpx.Limits(max_connections=max(CLIENTS), max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as client:
        opened = await open_session(client, command)

        async def one_call() -> None:
            await call_tool(client, opened.session_id, TOOL, ARGUMENTS)

        try:
            # Opens the pool's connections and wakes every code path once.
            await _run_load(one_call, max(CLIENTS), 0.3)
            figures: list[Figure] = []
            for clients in CLIENTS:
                figures += await _figures("api", one_call, clients, seconds)
        finally:
            await close_session(client, opened.session_id)
    return figures


async def _direct(
    argv: tuple[str, ...], work_dir: Path, seconds: float
) -> list[Figure]:
    async with spawn_pipe_server(argv, work_dir) as server:
        await server.handshake()

        async def one_call() -> None:
            await _pipe_call(server)

        await _run_load(one_call, max(CLIENTS), 0.3)
        figures: list[Figure] = []
        for clients in CLIENTS:
            figures += await _figures("direct", one_call, clients, seconds)
    return figures


async def _pipe_call(server: PipeServer) -> None:
    result = await server.request("tools/call", {"name": TOOL, "arguments": ARGUMENTS})
    if result.get("isError"):
        raise RuntimeError(f"{TOOL} failed: {result}")


async def _figures(kind: str, call: Call, clients: int, seconds: float) -> list[Figure]:
    latencies, elapsed = await _run_load(call, clients, seconds)
    ms = sorted(s * 1000.0 for s in latencies)
    name = f"tool_calls.{kind}.clients_{clients}"
    return [
        Figure(f"{name}.rate", len(ms) / elapsed, "calls/s"),
        Figure(f"{name}.p50", percentile(ms, 0.50), "ms", False),
        Figure(f"{name}.p99", percentile(ms, 0.99), "ms", False),
    ]


async def _run_load(
    call: Call, clients: int, seconds: float
) -> tuple[list[float], float]:
    """``clients`` tasks calling back to back until ``seconds`` have passed."""
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            before = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - before)

    async with trio.open_nursery() as nursery:
        for _ in range(clients):
            nursery.start_soon(client)
    return latencies, time.perf_counter() - started
