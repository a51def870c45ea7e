"""A bare MCP client over a plain child process's pipes: the baseline.

No sandbox, no event log, no actors, no HTTP: the server is spawned with
``trio.lowlevel.open_process`` in its own process group, with a minimal
environment, stderr discarded, and newline-delimited JSON-RPC is written to
and read from its pipes directly. What the runtime measures above these
figures is its own overhead.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, Final

import msgspec
import trio

PROTOCOL_VERSION: Final = "2025-06-18"
READ_SIZE: Final = 256 * 1024
SYSTEM_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
START_TIMEOUT: Final = 30.0


class PipeServerError(Exception):
    """The server answered with an error, sent garbage, or went away."""


class PipeServer:
    """One running server and the requests waiting for its answers."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Slot] = {}
        self._send_lock = trio.Lock()
        self._closed = False

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        """Send a request and return its ``result``.

        Raises:
            PipeServerError: an error answer, or the server's output ended.
        """
        request_id = next(self._ids)
        slot = _Slot()
        self._waiting[request_id] = slot
        await self._send(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        )
        await slot.done.wait()
        if slot.error is not None:
            raise PipeServerError(f"{method}: {slot.error}")
        return slot.result

    async def notify(self, method: str) -> None:
        """Send a notification without params."""
        await self._send({"jsonrpc": "2.0", "method": method})

    async def handshake(self) -> list[dict[str, Any]]:
        """``initialize``, ``notifications/initialized``, ``tools/list``."""
        await self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "matrix-bench", "version": "1"},
            },
        )
        await self.notify("notifications/initialized")
        listed = await self.request("tools/list", {})
        return list(listed["tools"])

    async def read(self) -> None:
        """Read answers until the output ends; fail whatever still waits."""
        buffer = b""
        while True:
            try:
                chunk = await self._stdout.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                await self._handle(line)
        self._closed = True
        for slot in self._waiting.values():
            slot.error = "the server's output ended"
            slot.done.set()
        self._waiting.clear()

    async def _send(self, message: dict[str, Any]) -> None:
        if self._closed:
            raise PipeServerError("the server's output ended")
        data = msgspec.json.encode(message) + b"\n"
        async with self._send_lock:
            await self._stdin.send_all(data)

    async def _handle(self, line: bytes) -> None:
        try:
            message = msgspec.json.decode(line)
        except msgspec.DecodeError:
            return
        if not isinstance(message, dict):
            return
        if "method" in message:
            if "id" in message:
                # No capabilities were offered, so no request is supported;
                # answering keeps a server from waiting on one.
                await self._send(
                    {
                        "jsonrpc": "2.0",
                        "id": message["id"],
                        "error": {"code": -32601, "message": "not supported"},
                    }
                )
            return
        slot = self._waiting.pop(message.get("id"), None)  # type: ignore[arg-type]
        if slot is None:
            return
        if "error" in message:
            slot.error = str(message["error"])
        else:
            slot.result = message.get("result")
        slot.done.set()


@asynccontextmanager
async def spawn_pipe_server(
    argv: Sequence[str], work_dir: Path
) -> AsyncIterator[PipeServer]:
    """Run ``argv`` as a plain child; kill its process group on exit."""
    env = {
        "PATH": SYSTEM_PATH,
        "HOME": str(work_dir),
        "LANG": "C.UTF-8",
        "TMPDIR": str(work_dir),
    }
    process = await trio.lowlevel.open_process(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=str(work_dir),
        env=env,
        start_new_session=True,
    )
    try:
        async with trio.open_nursery() as nursery:
            server = PipeServer(process)
            nursery.start_soon(server.read)
            yield server
            nursery.cancel_scope.cancel()
    finally:
        # Shielded: the child must not outlive the benchmark, however the
        # block was left.
        with trio.CancelScope(shield=True):
            _kill_group(process.pid)
            await process.wait()
            await process.stdin.aclose()  # type: ignore[union-attr]
            await process.stdout.aclose()  # type: ignore[union-attr]


async def time_pipe_start(argv: Sequence[str], work_dir: Path) -> float:
    """Seconds from spawn to the ``tools/list`` answer, for one fresh server."""
    elapsed = 0.0
    with trio.fail_after(START_TIMEOUT):
        started = time.perf_counter()
        async with spawn_pipe_server(argv, work_dir) as server:
            await server.handshake()
            elapsed = time.perf_counter() - started
    return elapsed


class _Slot:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: Any = None
        self.error: str | None = None


def _kill_group(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
