"""Helpers for the sandbox and MCP client tests: recorders, servers, /proc."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from runtime.mcp import (
    McpClient,
    McpClientConfig,
    RecordKind,
    ToolsChangedHook,
    open_mcp_client,
)
from runtime.sandbox import SYSTEM_PATH, SandboxSpec, open_sandboxed_process

SERVERS_DIR = Path(__file__).parent / "mcp_servers"
PROGRAMS_DIR = Path(__file__).parent / "programs"
SCRIPTED_SERVER = SERVERS_DIR / "scripted.py"
PYTHON = sys.executable
# The interpreter running the tests comes first, so a bare "python" in a
# sandbox is one that has the test dependencies (mcp-server-time) installed.
SEARCH_PATH = os.pathsep.join([str(Path(sys.executable).parent), SYSTEM_PATH])
WAIT = 10.0
# npm and uv caches kept between test runs, so real servers start warm.
TEST_CACHE_DIR = Path(
    os.environ.get(
        "MATRIX_RUNTIME_TEST_CACHE",
        str(Path.home() / ".cache" / "matrix-runtime-tests"),
    )
)
EVERYTHING = "@modelcontextprotocol/server-everything"


class ListRecorder:
    """Keeps everything the client records, and lets a test wait for items."""

    def __init__(self) -> None:
        self.items: list[tuple[RecordKind, Any]] = []
        self._changed = trio.Event()

    async def record(self, kind: RecordKind, value: Any) -> None:
        self.items.append((kind, value))
        self._changed.set()
        self._changed = trio.Event()

    def of(self, kind: RecordKind) -> list[Any]:
        """The values recorded with ``kind``, in order."""
        return [value for item_kind, value in self.items if item_kind == kind]

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Wait (bounded) until ``condition()`` holds after some record."""
        with trio.fail_after(WAIT):
            while not condition():
                await self._changed.wait()


class GatedRecorder(ListRecorder):
    """A recorder that blocks on stderr lines until :meth:`open_gate`."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = trio.Event()

    async def record(self, kind: RecordKind, value: Any) -> None:
        if kind == "stderr":
            await self.gate.wait()
        await super().record(kind, value)

    def open_gate(self) -> None:
        self.gate.set()


def private_dir(path: Path) -> Path:
    """Create ``path`` with mode 0700, as the job actor does for a sandbox."""
    path.mkdir(mode=0o700, parents=True)
    return path


@asynccontextmanager
async def scripted_client(
    tmp_path: Path,
    *flags: str,
    recorder: ListRecorder | None = None,
    config: McpClientConfig | None = None,
    on_tools_changed: ToolsChangedHook | None = None,
) -> AsyncIterator[McpClient]:
    """Run the scripted test server with ``flags`` and a client over it."""
    spec = SandboxSpec(
        argv=[PYTHON, str(SCRIPTED_SERVER), *flags],
        env={},
        work_dir=private_dir(tmp_path / "work"),
        isolation="process-group",
    )
    async with (
        open_sandboxed_process(spec) as process,
        open_mcp_client(
            process,
            recorder or ListRecorder(),
            config,
            on_tools_changed=on_tools_changed,
        ) as client,
    ):
        yield client


async def read_lines(stream: trio.abc.ReceiveStream, count: int) -> list[str]:
    """Read exactly ``count`` lines from ``stream`` (bounded in time)."""
    data = b""
    with trio.fail_after(WAIT):
        while data.count(b"\n") < count:
            chunk = await stream.receive_some()
            if not chunk:
                break
            data += chunk
    return data.decode().splitlines()[:count]


async def read_all(stream: trio.abc.ReceiveStream) -> bytes:
    """Read ``stream`` to its end (bounded in time)."""
    data = bytearray()
    with trio.fail_after(WAIT):
        while chunk := await stream.receive_some():
            data += chunk
    return bytes(data)


def live_pids_with_marker(marker: str) -> set[int]:
    """Live processes whose environment contains ``marker``."""
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit() or not is_alive(int(name)):
            continue
        try:
            environ = Path(f"/proc/{name}/environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ.split(b"\0"):
            found.add(int(name))
    return found


def live_pids_in_group_or_session(leader: int) -> set[int]:
    """Live processes whose process group or session is ``leader``."""
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is None or fields[0] in ("Z", "X"):
            continue
        if leader in (int(fields[2]), int(fields[3])):
            found.add(int(name))
    return found


def command_line(pid: int) -> str:
    """The command line of ``pid``, arguments separated by spaces."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def is_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()
