"""A sandbox session from start to end against real MCP servers, over real HTTP."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from tests.api.mcp_support import (
    BUBBLEWRAP_WORKS,
    EVERYTHING_COMMAND,
    TIME_COMMAND,
    Api,
    only_events,
    runtime_server,
    steps,
    tiny_command,
)
from tests.api.sse_client import SseStream, event_ids, open_sse, strictly_increasing
from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow

ISOLATION = "bubblewrap" if BUBBLEWRAP_WORKS else "process-group"
START_STEPS = [
    "queue",
    "validate",
    "sandbox",
    "mcp_start",
    "mcp_initialize",
    "tools_list",
    "ready",
]
TTL = 90


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One runtime for the module; every test opens its own sandbox."""
    with runtime_server(
        tmp_path_factory.mktemp("walkthrough") / "data",
        # npx -y may have to download server-everything.
        MATRIX_RUNTIME_SANDBOX_NETWORK="host",
    ) as server:
        yield server


def _open(api: Api, command: str) -> tuple[dict[str, Any], float, float]:
    before = time.time()
    opened = api.open_sandbox(command, ttl_seconds=TTL)
    return opened, before, time.time()


def _check_opened(opened: dict[str, Any], before: float, after: float) -> None:
    session_id = opened["session_id"]
    assert re.fullmatch(r"sbx_[0-9a-f]{18}", session_id)
    assert re.fullmatch(r"job_[0-9a-f]{18}", opened["job_id"])
    assert opened["status"] == "starting"
    assert opened["events_url"] == f"/v1/sandbox/sessions/{session_id}/events"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", opened["expires_at"])
    expires = dt.datetime.fromisoformat(opened["expires_at"]).timestamp()
    assert before + TTL - 0.001 <= expires <= after + TTL


def _start_events(
    data_dir: Path, job_id: str, program: str, tool_count: int, server: dict[str, Any]
) -> list[dict[str, Any]]:
    work_dir = str((data_dir / "sandboxes" / job_id).resolve())
    return [
        {
            "step": "queue",
            "status": "queued",
            "message": "Job queued",
            "data": {"type": "mcp.test"},
        },
        {
            "step": "validate",
            "status": "ok",
            "message": "Command accepted",
            "data": {"program": program},
        },
        {
            "step": "sandbox",
            "status": "start",
            "message": "Creating temporary sandbox",
            "data": {"work_dir": work_dir, "isolation": ISOLATION, "network": "host"},
        },
        {"step": "mcp_start", "status": "start", "message": "Starting MCP server"},
        {
            "step": "mcp_initialize",
            "status": "ok",
            "message": "MCP initialize succeeded",
            "data": {"protocol_version": "2025-11-25", "server": server},
        },
        {
            "step": "tools_list",
            "status": "ok",
            "message": f"Found {tool_count} tools",
            "data": {"count": tool_count},
        },
        {"step": "ready", "status": "ok", "message": "Sandbox ready"},
    ]


def _end_session(api: Api, stream: SseStream, opened: dict[str, Any]) -> list[Any]:
    """DELETE the session and check everything after its end; the last frames."""
    session_id = opened["session_id"]
    path = f"/v1/sandbox/sessions/{session_id}"

    deleted = api.client.delete(path)
    shown = api.client.get(path)
    tools_after = api.client.get(f"{path}/tools")
    call_after = api.call_tool(session_id, "anything", {})
    tail = stream.rest()

    assert deleted.status_code == 200
    assert deleted.json() == {"ok": True, "status": "cancelled"}
    assert shown.status_code == 200
    assert shown.json()["status"] == "cancelled"
    assert shown.json()["ready"] is False
    assert shown.json()["job_id"] == opened["job_id"]
    assert shown.json()["expires_at"] == opened["expires_at"]
    assert tools_after.status_code == 409
    assert tools_after.json() == {"error": "sandbox not running", "status": 409}
    assert call_after.status_code == 409
    assert call_after.json() == {"error": "sandbox not running", "status": 409}
    assert tail[-1].data == {
        "step": "cancel",
        "status": "cancelled",
        "message": "Job cancelled",
    }
    assert stream.ended
    return tail


def test_sandbox_walkthrough_time_server(runtime: ServerProcess, api: Api) -> None:
    """python -m mcp_server_time: start, list, call, bad call, delete, stream end."""
    opened, before, after = _open(api, TIME_COMMAND)
    session_id = opened["session_id"]
    _check_opened(opened, before, after)

    with open_sse(f"{api.url}{opened['events_url']}") as stream:
        started = stream.until_step("ready")
        tools = api.client.get(f"/v1/sandbox/sessions/{session_id}/tools")
        shown = api.client.get(f"/v1/sandbox/sessions/{session_id}").json()
        called = api.call_tool(
            session_id, "get_current_time", {"timezone": "Europe/Paris"}
        )
        bad = api.call_tool(session_id, "no_such_tool", {})
        tail = _end_session(api, stream, opened)

    assert steps(started) == START_STEPS
    assert only_events(started) == _start_events(
        runtime.data_dir,
        opened["job_id"],
        "python",
        2,
        {"name": "mcp-time", "version": metadata.version("mcp-server-time")},
    )
    assert strictly_increasing(event_ids(started + tail))
    assert tools.status_code == 200
    assert {key: shown[key] for key in shown if key != "result"} == {
        "session_id": session_id,
        "job_id": opened["job_id"],
        "status": "running",
        "ready": True,
        "expires_at": opened["expires_at"],
    }
    listed = tools.json()["tools"]
    assert [tool["name"] for tool in listed] == ["get_current_time", "convert_time"]
    assert listed[0]["input_schema"]["required"] == ["timezone"]
    assert listed[0]["input_schema"]["type"] == "object"
    assert listed[1]["input_schema"]["required"] == [
        "source_timezone",
        "time",
        "target_timezone",
    ]
    assert called.status_code == 200
    assert called.json()["ok"] is True
    result = called.json()["result"]
    assert result["isError"] is False
    assert json.loads(result["content"][0]["text"])["timezone"] == "Europe/Paris"
    assert bad.status_code == 409
    assert bad.json() == {
        "error": "mcp tools/call error -32602: Unknown tool: no_such_tool",
        "status": 409,
    }
    assert steps(tail) == ["cancel"]


@pytest.mark.skipif(shutil.which("npx") is None, reason="npx is not installed")
def test_sandbox_walkthrough_everything_server(api: Api) -> None:
    """npx server-everything: ready despite list_changed, echo, bad tool, delete."""
    opened, before, after = _open(api, EVERYTHING_COMMAND)
    session_id = opened["session_id"]
    _check_opened(opened, before, after)

    with open_sse(f"{api.url}{opened['events_url']}") as stream:
        started = stream.until_step("ready")
        tools = api.client.get(f"/v1/sandbox/sessions/{session_id}/tools")
        echoed = api.call_tool(session_id, "echo", {"message": "hi"})
        bad = api.call_tool(session_id, "no_such_tool", {})
        tools_before_end = api.client.get(f"/v1/sandbox/sessions/{session_id}/tools")
        tail = _end_session(api, stream, opened)

    assert steps(started) == START_STEPS
    initialized = started[4].data
    assert initialized is not None
    assert initialized["data"]["server"]["name"] == "mcp-servers/everything"
    assert strictly_increasing(event_ids(started + tail))
    assert tools.status_code == 200
    names = [tool["name"] for tool in tools.json()["tools"]]
    assert "echo" in names
    assert started[5].data == {
        "step": "tools_list",
        "status": "ok",
        "message": f"Found {len(names)} tools",
        "data": {"count": len(names)},
    }
    echo = next(tool for tool in tools.json()["tools"] if tool["name"] == "echo")
    assert echo["input_schema"]["properties"]["message"]["type"] == "string"
    assert echoed.status_code == 200
    assert echoed.json() == {
        "ok": True,
        "result": {"content": [{"type": "text", "text": "Echo: hi"}]},
    }
    assert bad.status_code == 200
    assert bad.json() == {
        "ok": True,
        "result": {
            "content": [
                {
                    "type": "text",
                    "text": "MCP error -32602: Tool no_such_tool not found",
                }
            ],
            "isError": True,
        },
    }
    changes = [frame.data for frame in tail if frame.step == "tools_changed"]
    for change in changes:
        listed = change["data"]["tools"]
        assert change["message"] == f"Tool list changed: {len(listed)} tools"
        assert "echo" in [tool["name"] for tool in listed]
    assert steps(tail) == ["tools_changed"] * len(changes) + ["cancel"]
    assert tools_before_end.json()["tools"] == (
        changes[-1]["data"]["tools"] if changes else tools.json()["tools"]
    )


def test_sandbox_tool_list_change_after_handshake_is_published(api: Api) -> None:
    """A tool added right after the handshake shows up in a step and in /tools."""
    opened = api.open_sandbox(tiny_command("--add-tool-after-list", "late_tool"))
    session_id = opened["session_id"]

    with open_sse(f"{api.url}{opened['events_url']}") as stream:
        started = stream.until_step("ready")
        changed = stream.until_step("tools_changed")
        tools = api.client.get(f"/v1/sandbox/sessions/{session_id}/tools")
        called = api.call_tool(session_id, "late_tool", {})
        _end_session(api, stream, opened)

    assert steps(started) == START_STEPS
    assert started[5].data == {
        "step": "tools_list",
        "status": "ok",
        "message": "Found 3 tools",
        "data": {"count": 3},
    }
    assert steps(changed) == ["tools_changed"]
    assert changed[0].data is not None
    listed = changed[0].data["data"]["tools"]
    assert [tool["name"] for tool in listed] == ["echo", "fail", "exit", "late_tool"]
    assert changed[0].data["message"] == "Tool list changed: 4 tools"
    assert tools.json()["tools"] == listed
    assert called.status_code == 409
    assert called.json() == {
        "error": "mcp tools/call error -32602: Unknown tool: late_tool",
        "status": 409,
    }
