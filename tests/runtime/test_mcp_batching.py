"""How the MCP client groups frames for its recorder, over real pipes.

The test plays the server itself: it reads the client's lines from one pipe
and writes its answers, several lines in one write where that matters, to
another.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio
import trio.testing

from runtime.mcp import McpClient, McpTimeoutError, RecordKind, open_mcp_client
from tests.runtime.support import WAIT

INITIALIZE_RESULT = {
    "protocolVersion": "2025-11-25",
    "capabilities": {"tools": {}},
    "serverInfo": {"name": "pipes", "version": "1"},
}

Batch = list[tuple[RecordKind, Any]]


class BatchRecorder:
    """Keeps each call it gets as one batch; can hold back outgoing frames."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.out_gate: trio.Event | None = None
        self.out_waiting = trio.Event()

    async def record(self, kind: RecordKind, value: Any) -> None:
        await self.record_many([(kind, value)])

    async def record_many(self, items: Any) -> None:
        batch: Batch = list(items)
        if self.out_gate is not None and batch[0][0] == "out":
            self.out_waiting.set()
            await self.out_gate.wait()
        # A real recorder awaits a commit: let other tasks run meanwhile.
        await trio.lowlevel.checkpoint()
        self.batches.append(batch)

    def of(self, kind: RecordKind) -> list[Batch]:
        """The batches whose first item has ``kind``."""
        return [batch for batch in self.batches if batch[0][0] == kind]


@dataclass
class PipeServer:
    """The server's side of the pipes: what the client wrote, what it reads."""

    stdin: trio.lowlevel.FdStream
    stdout: trio.lowlevel.FdStream
    buffer: bytes = b""

    async def read_messages(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` lines the client wrote, decoded."""
        with trio.fail_after(WAIT):
            while self.buffer.count(b"\n") < count:
                self.buffer += await self.stdin.receive_some()
        lines = self.buffer.split(b"\n")
        self.buffer = b"\n".join(lines[count:])
        return [json.loads(line) for line in lines[:count]]

    async def write(self, *messages: dict[str, Any]) -> None:
        """Write ``messages`` as lines, all in one write."""
        data = b"".join(json.dumps(m).encode() + b"\n" for m in messages)
        await self.stdout.send_all(data)


@dataclass
class _Transport:
    stdin: trio.lowlevel.FdStream
    stdout: trio.lowlevel.FdStream
    stderr: trio.lowlevel.FdStream


@asynccontextmanager
async def piped_client(
    recorder: BatchRecorder,
) -> AsyncIterator[tuple[McpClient, PipeServer]]:
    """A client over three fresh pipes, and the server's ends of them."""
    to_server, from_client = _pipe()
    to_client, from_server = _pipe()
    stderr_read, stderr_write = _pipe()
    transport = _Transport(stdin=from_client, stdout=to_client, stderr=stderr_read)
    server = PipeServer(stdin=to_server, stdout=from_server)
    try:
        async with open_mcp_client(transport, recorder) as client:
            yield client, server
    finally:
        for stream in (to_server, from_server, stderr_write):
            await stream.aclose()


async def test_client_records_one_read_as_one_batch() -> None:
    """Two lines that arrive in one read are recorded in one call."""
    recorder = BatchRecorder()
    log_notice = {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "info", "data": "starting"},
    }
    response = {"jsonrpc": "2.0", "id": 1, "result": INITIALIZE_RESULT}

    async with piped_client(recorder) as (client, server), trio.open_nursery() as n:
        n.start_soon(client.initialize)
        await server.read_messages(1)
        await server.write(log_notice, response)
        await server.read_messages(1)

    assert recorder.of("in") == [[("in", log_notice), ("in", response)]]


async def test_client_sends_initialized_together_with_tools_list() -> None:
    """Initialized, then tools/list at once: one batch, one write, in order."""
    recorder = BatchRecorder()

    async def handshake(client: McpClient) -> None:
        await client.initialize()
        await client.list_tools()

    async with piped_client(recorder) as (client, server), trio.open_nursery() as n:
        n.start_soon(handshake, client)
        await server.read_messages(1)
        await server.write({"jsonrpc": "2.0", "id": 1, "result": INITIALIZE_RESULT})
        written = await server.read_messages(2)
        await server.write({"jsonrpc": "2.0", "id": 2, "result": {"tools": []}})

    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    tools_list = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    assert written == [initialized, tools_list]
    assert recorder.of("out")[1:] == [[("out", initialized), ("out", tools_list)]]


async def test_client_batches_messages_queued_during_a_record() -> None:
    """Sends queued while one frame is being recorded go out as one batch."""
    recorder = BatchRecorder()

    async with piped_client(recorder) as (client, server):
        recorder.out_gate = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.notify, "notifications/n0")
            await recorder.out_waiting.wait()
            for index in range(1, 8):
                nursery.start_soon(client.notify, f"notifications/n{index}")
            await trio.testing.wait_all_tasks_blocked()
            recorder.out_gate.set()
        written = await server.read_messages(8)

    recorded = [item for batch in recorder.of("out") for _, item in batch]
    assert [len(batch) for batch in recorder.of("out")] == [1, 7]
    assert recorded == written
    assert sorted(m["method"] for m in written) == [
        f"notifications/n{index}" for index in range(8)
    ]


async def test_client_never_sends_a_request_withdrawn_while_queued() -> None:
    """A request that times out before it was recorded is neither logged nor sent."""
    recorder = BatchRecorder()

    async with piped_client(recorder) as (client, server), trio.open_nursery() as n:
        recorder.out_gate = trio.Event()
        n.start_soon(client.notify, "notifications/first")
        await recorder.out_waiting.wait()
        with pytest.raises(McpTimeoutError) as caught:
            await client.request("tools/list", {}, timeout=0.2)
        recorder.out_gate.set()
        await client.notify("notifications/last")
        written = await server.read_messages(2)

    assert str(caught.value) == "mcp tools/list timed out after 0.2s"
    assert [m["method"] for m in written] == [
        "notifications/first",
        "notifications/last",
    ]
    assert [item["method"] for b in recorder.of("out") for _, item in b] == [
        "notifications/first",
        "notifications/last",
    ]


def _pipe() -> tuple[trio.lowlevel.FdStream, trio.lowlevel.FdStream]:
    """A real pipe as (read end, write end)."""
    read_fd, write_fd = os.pipe()
    return trio.lowlevel.FdStream(read_fd), trio.lowlevel.FdStream(write_fd)
