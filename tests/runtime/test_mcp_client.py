"""Tests for the MCP client against the scripted server in mcp_servers/."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import trio

from runtime.config import VERSION
from runtime.mcp import (
    McpCallError,
    McpClient,
    McpClientConfig,
    McpClosedError,
    McpMessageTooLargeError,
    McpProtocolError,
    McpTimeoutError,
)
from tests.runtime.support import GatedRecorder, ListRecorder, scripted_client

MIB = 1 << 20
DROPPED = re.compile(r"\[(\d+) stderr lines not recorded: the recorder fell behind\]")


def text_of(result: dict[str, Any]) -> str:
    text: str = result["content"][0]["text"]
    return text


async def started(client: McpClient) -> None:
    await client.initialize()
    await client.list_tools()


async def test_client_offers_newest_version_and_sends_initialized(
    tmp_path: Path,
) -> None:
    """The handshake offers 2025-11-25, then notifies that it is initialized."""
    recorder = ListRecorder()

    async with scripted_client(tmp_path, recorder=recorder) as client:
        result = await client.initialize()
        seen = json.loads(text_of(await client.call_tool("notifications")))

    assert recorder.of("out")[0] == {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "matrix-runtime", "version": VERSION},
        },
    }
    assert result["protocolVersion"] == "2025-11-25"
    assert client.protocol_version == "2025-11-25"
    assert seen == [{"jsonrpc": "2.0", "method": "notifications/initialized"}]


async def test_client_accepts_older_supported_version(tmp_path: Path) -> None:
    """A server that answers an older version we support is accepted."""

    async with scripted_client(tmp_path, "--protocol-version", "2024-11-05") as client:
        await client.initialize()

    assert client.protocol_version == "2024-11-05"


async def test_client_rejects_unsupported_version(tmp_path: Path) -> None:
    """A server that answers a version we do not know fails the handshake."""

    async with scripted_client(tmp_path, "--protocol-version", "1999-01-01") as client:
        with pytest.raises(McpProtocolError) as caught:
            await client.initialize()

    assert str(caught.value) == (
        'mcp server chose protocol version "1999-01-01", which this client does '
        "not support (supported: 2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05)"
    )


async def test_client_requires_initialize_before_calls(tmp_path: Path) -> None:
    """Calling a tool before the handshake is a protocol error."""

    async with scripted_client(tmp_path) as client:
        with pytest.raises(McpProtocolError) as caught:
            await client.call_tool("echo", {"text": "x"})

    assert str(caught.value) == "mcp session is not initialized"


async def test_client_records_banner_as_noise_and_skips_it(tmp_path: Path) -> None:
    """Non-JSON lines before the first message are recorded as noise."""
    recorder = ListRecorder()

    async with scripted_client(tmp_path, "--banner", recorder=recorder) as client:
        await started(client)

    assert recorder.of("noise") == [
        "scripted server 1.0 starting on stdio",
        "[not json",
    ]
    assert [kind for kind, _ in recorder.items if kind != "noise"][:2] == ["out", "in"]


async def test_client_follows_tools_list_cursors(tmp_path: Path) -> None:
    """tools/list pages are followed through nextCursor until the last one."""
    recorder = ListRecorder()

    async with scripted_client(
        tmp_path, "--page-size", "3", "--extra-tools", "4", recorder=recorder
    ) as client:
        await client.initialize()
        tools = await client.list_tools()

    names = [tool["name"] for tool in tools]
    assert names == [
        *("echo", "fail", "hold", "release", "ask", "crash", "huge", "chatter"),
        *("add_tool", "notifications", "extra-0", "extra-1", "extra-2", "extra-3"),
    ]
    cursors = [
        frame["params"].get("cursor")
        for frame in recorder.of("out")
        if frame.get("method") == "tools/list"
    ]
    assert cursors == [None, "page-3", "page-6", "page-9", "page-12"]
    assert client.tools == tools
    assert client.tools_revision == 1


async def test_client_refreshes_tools_on_list_changed(tmp_path: Path) -> None:
    """A list_changed notification refreshes the cached tools and calls the hook."""
    hooked: list[list[str]] = []
    hook_called = trio.Event()

    async def on_tools_changed(tools: list[dict[str, Any]]) -> None:
        hooked.append([tool["name"] for tool in tools])
        hook_called.set()

    async with scripted_client(tmp_path, on_tools_changed=on_tools_changed) as client:
        await started(client)
        revision = client.tools_revision
        await client.call_tool("add_tool", {"name": "late-tool"})
        with trio.fail_after(10):
            tools = await client.wait_tools_changed(revision)
            await hook_called.wait()

    assert tools[-1]["name"] == "late-tool"
    assert client.tools_revision == revision + 1
    assert hooked == [[tool["name"] for tool in tools]]


async def test_client_answers_server_requests_in_the_middle_of_a_call(
    tmp_path: Path,
) -> None:
    """ping gets {}, roots/list and sampling get -32601, string ids included."""
    recorder = ListRecorder()

    async with scripted_client(tmp_path, recorder=recorder) as client:
        await started(client)
        result = await client.call_tool("ask")

    assert json.loads(text_of(result)) == {
        "1": {
            "id": 1,
            "error": {
                "code": -32601,
                "message": "method not supported by this client: roots/list",
            },
        },
        "2": {
            "id": 2,
            "error": {
                "code": -32601,
                "message": "method not supported by this client: "
                "sampling/createMessage",
            },
        },
        "srv-ping": {"id": "srv-ping", "result": {}},
    }
    assert {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "info", "data": "asking the client"},
    } in recorder.of("in")


async def test_client_matches_out_of_order_responses(tmp_path: Path) -> None:
    """Each response reaches its own request whatever order they come in."""
    recorder = ListRecorder()
    results: dict[str, str] = {}

    async def call(name: str) -> None:
        results[name] = text_of(await client.call_tool(name, {"key": "k"}))

    async with scripted_client(tmp_path, recorder=recorder) as client:
        await started(client)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, "hold")
            await recorder.wait_for(
                lambda: any(
                    frame.get("params", {}).get("name") == "hold"
                    for frame in recorder.of("out")
                )
            )
            nursery.start_soon(call, "release")

    assert results == {"hold": "held k", "release": "released k"}
    answers = [
        text_of(frame["result"])
        for frame in recorder.of("in")
        if "content" in frame.get("result", {})
    ]
    assert answers == ["released k", "held k"]


async def test_client_runs_concurrent_calls(tmp_path: Path) -> None:
    """Many calls in flight at once each get their own answer."""
    results: dict[int, str] = {}

    async def call(number: int) -> None:
        results[number] = text_of(await client.call_tool("echo", {"text": str(number)}))

    recorder = ListRecorder()

    async with scripted_client(tmp_path, recorder=recorder) as client:
        await started(client)
        async with trio.open_nursery() as nursery:
            for number in range(25):
                nursery.start_soon(call, number)

    assert results == {number: str(number) for number in range(25)}
    ids = [frame["id"] for frame in recorder.of("out") if "id" in frame]
    assert len(ids) == len(set(ids)) == 27


async def test_client_times_out_and_drops_late_response(tmp_path: Path) -> None:
    """A timed-out call raises, is cancelled on the server, its answer dropped."""
    recorder = ListRecorder()

    async with scripted_client(tmp_path, recorder=recorder) as client:
        await started(client)
        with pytest.raises(McpTimeoutError) as caught:
            await client.call_tool("hold", {"key": "late"}, timeout=0.3)
        [held_id] = [
            frame["id"]
            for frame in recorder.of("out")
            if frame.get("params", {}).get("name") == "hold"
        ]
        released = await client.call_tool("release", {"key": "late"})
        await recorder.wait_for(
            lambda: any(frame.get("id") == held_id for frame in recorder.of("in"))
        )
        echoed = await client.call_tool("echo", {"text": "still fine"})
        seen = json.loads(text_of(await client.call_tool("notifications")))

    assert str(caught.value) == "mcp tools/call timed out after 0.3s"
    assert text_of(released) == "released late"
    assert text_of(echoed) == "still fine"
    assert seen[-1] == {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": held_id, "reason": "request abandoned by the client"},
    }


async def test_client_returns_is_error_results(tmp_path: Path) -> None:
    """A tool result with isError is returned, not raised."""

    async with scripted_client(tmp_path) as client:
        await started(client)
        result = await client.call_tool("fail")

    assert result == {
        "content": [{"type": "text", "text": "failed on purpose"}],
        "isError": True,
    }


async def test_client_raises_json_rpc_errors(tmp_path: Path) -> None:
    """A JSON-RPC error response raises McpCallError with code and message."""

    async with scripted_client(tmp_path) as client:
        await started(client)
        with pytest.raises(McpCallError) as caught:
            await client.call_tool("nope")

    assert str(caught.value) == "mcp tools/call error -32602: Unknown tool: nope"
    assert caught.value.code == -32602
    assert caught.value.message == "Unknown tool: nope"


async def test_client_fails_every_call_when_server_crashes(tmp_path: Path) -> None:
    """A crash fails pending and later calls with the server's last stderr."""
    errors: list[str] = []
    expected = (
        "mcp server closed: its output ended; last stderr: fatal: crashing on purpose"
    )

    async def held() -> None:
        with pytest.raises(McpClosedError) as caught:
            await client.call_tool("hold", {"key": "never"})
        errors.append(str(caught.value))

    recorder = ListRecorder()

    async with scripted_client(tmp_path, recorder=recorder) as client:
        await started(client)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(held)
            await recorder.wait_for(
                lambda: recorder.of("out")[-1].get("params", {}).get("name") == "hold"
            )
            with pytest.raises(McpClosedError) as crashed:
                await client.call_tool("crash")
        with pytest.raises(McpClosedError) as later:
            await client.call_tool("echo", {"text": "x"})
        closed = await client.wait_closed()

    assert errors == [expected]
    assert str(crashed.value) == expected
    assert str(later.value) == expected
    assert str(closed) == expected
    assert client.closed


async def test_client_reads_huge_single_line_result(tmp_path: Path) -> None:
    """A result of several MB on one line is read when under the bound."""
    config = McpClientConfig(max_message_bytes=8 * MIB)

    async with scripted_client(tmp_path, config=config) as client:
        await started(client)
        result = await client.call_tool("huge", {"size": 5_000_000}, timeout=30)

    assert text_of(result) == "x" * 5_000_000


async def test_client_closes_session_on_message_over_bound(tmp_path: Path) -> None:
    """A message over max_message_bytes fails the call and ends the session."""
    config = McpClientConfig(max_message_bytes=1 * MIB)
    message = (
        "mcp server sent a message over the 1048576-byte limit "
        "(max_message_bytes); the session is closed"
    )

    async with scripted_client(tmp_path, config=config) as client:
        await started(client)
        with pytest.raises(McpMessageTooLargeError) as caught:
            await client.call_tool("huge", {"size": 5_000_000})
        with pytest.raises(McpMessageTooLargeError) as later:
            await client.call_tool("echo", {"text": "x"})

    assert str(caught.value) == message
    assert str(later.value) == message


async def test_client_drains_chatty_stderr(tmp_path: Path) -> None:
    """Thousands of stderr lines (far more than a pipe holds) never block."""
    recorder = ListRecorder()

    async with scripted_client(
        tmp_path, "--stderr-lines", "3000", recorder=recorder
    ) as client:
        await started(client)
        result = await client.call_tool("chatter", {"lines": 3000})
        await recorder.wait_for(lambda: len(recorder.of("stderr")) == 6000)

    assert text_of(result) == "chattered"
    lines = recorder.of("stderr")
    assert lines[0] == "startup line 00000 " + "." * 180
    assert lines[-1] == "chatter line 02999 " + "." * 180


async def test_client_keeps_reading_stdout_while_recorder_blocks_stderr(
    tmp_path: Path,
) -> None:
    """A recorder stuck on stderr lines does not stop the handshake or calls."""
    recorder = GatedRecorder()

    async with scripted_client(
        tmp_path, "--stderr-lines", "5000", recorder=recorder
    ) as client:
        await started(client)
        echoed = await client.call_tool("echo", {"text": "through"})
        recorded_before = len(recorder.of("stderr"))
        recorder.open_gate()
        await recorder.wait_for(lambda: len(recorder.of("stderr")) == 5000)

    assert text_of(echoed) == "through"
    assert recorded_before == 0


async def test_client_counts_stderr_lines_beyond_backlog(tmp_path: Path) -> None:
    """Past the stderr backlog, lines are counted and the count is recorded."""
    recorder = GatedRecorder()
    config = McpClientConfig(stderr_backlog_bytes=20_000)

    async with scripted_client(
        tmp_path, "--stderr-lines", "5000", recorder=recorder, config=config
    ) as client:
        await started(client)
        with pytest.raises(McpClosedError):
            await client.call_tool("crash")
        recorder.open_gate()
        await recorder.wait_for(
            lambda: "fatal: crashing on purpose" in recorder.of("stderr")
        )

    lines = recorder.of("stderr")
    counts = [DROPPED.fullmatch(line) for line in lines]
    dropped = [int(match.group(1)) for match in counts if match is not None]
    assert dropped
    assert len(lines) - len(dropped) + sum(dropped) == 5001
    assert lines[-1] == "fatal: crashing on purpose"
