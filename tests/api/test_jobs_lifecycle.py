"""MCP jobs over the real HTTP API: types, listing, TTL, limits, crashes, restarts."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.mcp_support import (
    BIN_DIR,
    BUBBLEWRAP_WORKS,
    TIME_COMMAND,
    Api,
    only_events,
    runtime_server,
    steps,
    tiny_command,
)
from tests.api.sse_client import (
    Frame,
    event_ids,
    open_sse,
    read_all_events,
    strictly_increasing,
)
from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow

ISOLATION = "bubblewrap" if BUBBLEWRAP_WORKS else "process-group"
NETWORK = "none" if BUBBLEWRAP_WORKS else "host"
"""The default network, as in force: only bubblewrap can take it away."""
TINY_TOOLS = [
    {
        "name": "echo",
        "description": "Answer the text",
        "input_schema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    },
    {"name": "fail", "input_schema": {"type": "object"}},
    {
        "name": "exit",
        "input_schema": {"type": "object", "properties": {"code": {"type": "integer"}}},
    },
]
QUEUE = {"step": "queue", "status": "queued", "message": "Job queued"}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One runtime for the module, with room for many jobs at once."""
    with runtime_server(tmp_path_factory.mktemp("lifecycle") / "data") as server:
        yield server


def _run(api: Api, job_type: str, payload: dict[str, Any]) -> tuple[str, list[Frame]]:
    """Submit a job and read its whole event stream, to its end."""
    job_id = api.submit(job_type, payload)
    return job_id, read_all_events(api.events_url(job_id))


def _server_start(data_dir: Path, job_id: str) -> list[dict[str, Any]]:
    """The steps of starting the tiny server for ``job_id``, up to its tools."""
    return [
        {
            "step": "sandbox",
            "status": "start",
            "message": "Creating temporary sandbox",
            "data": {
                "work_dir": str((data_dir / "sandboxes" / job_id).resolve()),
                "isolation": ISOLATION,
                "network": NETWORK,
            },
        },
        {"step": "mcp_start", "status": "start", "message": "Starting MCP server"},
        {
            "step": "mcp_initialize",
            "status": "ok",
            "message": "MCP initialize succeeded",
            "data": {
                "protocol_version": "2025-11-25",
                "server": {"name": "tiny", "version": "1.0"},
            },
        },
        {
            "step": "tools_list",
            "status": "ok",
            "message": "Found 3 tools",
            "data": {"count": 3},
        },
    ]


def _validated(job_type: str) -> list[dict[str, Any]]:
    return [
        {**QUEUE, "data": {"type": job_type}},
        {
            "step": "validate",
            "status": "ok",
            "message": "Command accepted",
            "data": {"program": "python"},
        },
    ]


def test_jobs_list_filters_newest_first(api: Api) -> None:
    """GET /v1/jobs filters by type and status, limits, and shows newest first."""
    created = api.client.post(
        "/v1/jobs",
        json={
            "type": "tool.run",
            "payload": {
                "start_command": tiny_command(),
                "tool": "echo",
                "arguments": {"text": "first"},
            },
        },
    )
    first = created.json()["job_id"]
    service = api.submit(
        "mcp.run", {"start_command": tiny_command("--exit-after-list", "0")}
    )
    sandbox = api.submit("mcp.test", {"start_command": tiny_command()})
    last = api.submit(
        "tool.run",
        {"start_command": tiny_command(), "tool": "echo", "arguments": {"text": "x"}},
    )
    for job_id in (first, service, last):
        api.wait_for_job(job_id)
    api.wait_for_job(sandbox, frozenset({"running"}))

    everything = api.client.get("/v1/jobs").json()["jobs"]
    tool_runs = api.client.get("/v1/jobs", params={"type": "tool.run"}).json()["jobs"]
    newest_tool_run = api.client.get(
        "/v1/jobs", params={"type": "tool.run", "limit": "1"}
    ).json()["jobs"]
    running = api.client.get("/v1/jobs", params={"status": "running"}).json()["jobs"]
    completed_service = api.client.get(
        "/v1/jobs", params={"type": "mcp.run", "status": "complete", "limit": "1"}
    ).json()["jobs"]
    api.client.delete(f"/v1/jobs/{sandbox}")

    assert created.status_code == 202
    assert created.json() == {
        "job_id": first,
        "status": "queued",
        "events_url": f"/v1/jobs/{first}/events",
    }
    assert [job["job_id"] for job in everything[:4]] == [last, sandbox, service, first]
    assert [job["job_id"] for job in tool_runs[:2]] == [last, first]
    assert {job["type"] for job in tool_runs} == {"tool.run"}
    assert newest_tool_run == [everything[0]]
    assert sandbox in [job["job_id"] for job in running]
    assert {job["status"] for job in running} == {"running"}
    assert [job["job_id"] for job in completed_service] == [service]
    snapshot = everything[0]
    assert set(snapshot) == {
        "job_id",
        "type",
        "status",
        "created_at",
        "expires_at",
        "result",
    }
    assert snapshot["type"] == "tool.run"
    assert snapshot["status"] == "complete"
    assert snapshot["result"] == {"content": [{"type": "text", "text": "x"}]}


def test_sandbox_with_short_ttl_expires(api: Api) -> None:
    """A sandbox with ttl_seconds 2 ends expired with the exact message."""
    opened = api.open_sandbox(tiny_command(), ttl_seconds=2)
    session = f"/v1/sandbox/sessions/{opened['session_id']}"

    with open_sse(f"{api.url}{opened['events_url']}") as stream:
        started = stream.until_step("ready")
        tail = stream.rest()
    shown = api.client.get(session).json()
    job = api.job(opened["job_id"])
    tools = api.client.get(f"{session}/tools")

    assert steps(started)[-1] == "ready"
    assert only_events(tail) == [
        {
            "step": "expire",
            "status": "expired",
            "message": "Job expired after 2 seconds",
        }
    ]
    assert shown["status"] == "expired"
    assert job["status"] == "expired"
    assert "error" not in job
    assert tools.status_code == 409
    assert tools.json() == {"error": "sandbox not running", "status": 409}


def test_server_exiting_mid_ttl_ends_job_with_its_exit_code(
    runtime: ServerProcess, api: Api
) -> None:
    """A sandbox whose server exits after a tool call ends error with its code."""
    opened = api.open_sandbox(tiny_command())

    with open_sse(f"{api.url}{opened['events_url']}") as stream:
        started = stream.until_step("ready")
        answered = api.call_tool(opened["session_id"], "exit", {"code": 7})
        tail = stream.rest()
    job = api.job(opened["job_id"])

    assert only_events(started) == [
        *_validated("mcp.test"),
        *_server_start(runtime.data_dir, opened["job_id"]),
        {"step": "ready", "status": "ok", "message": "Sandbox ready"},
    ]
    assert answered.json() == {
        "ok": True,
        "result": {"content": [{"type": "text", "text": "exiting with code 7"}]},
    }
    assert only_events(tail) == [
        {"step": "error", "status": "error", "message": "mcp server exited with code 7"}
    ]
    assert job["status"] == "error"
    assert job["error"] == "mcp server exited with code 7"
    assert job["result"] == {"tools": TINY_TOOLS}


def test_mcp_run_restarts_on_failure_then_gives_up(
    runtime: ServerProcess, api: Api
) -> None:
    """mcp.run restarts a crashing server max_restarts times, then ends error."""
    payload = {
        "start_command": tiny_command("--exit-after-list", "5"),
        "restart": "on-failure",
        "max_restarts": 2,
    }

    job_id, events = _run(api, "mcp.run", payload)
    job = api.job(job_id)

    start = _server_start(runtime.data_dir, job_id)
    reason = "mcp server exited with code 5"

    def ready(attempt: int) -> dict[str, Any]:
        return {
            "step": "ready",
            "status": "ok",
            "message": "Service ready",
            "data": {"attempt": attempt},
        }

    def restart(number: int, delay: str) -> dict[str, Any]:
        return {
            "step": "restart",
            "status": "running",
            "message": f"Restarting MCP server in {delay} (restart {number} of 2)",
            "data": {"exit_code": 5, "attempt": number + 1, "reason": reason},
        }

    assert only_events(events) == [
        *_validated("mcp.run"),
        *start,
        ready(1),
        restart(1, "0.5s"),
        *start,
        ready(2),
        restart(2, "1s"),
        *start,
        ready(3),
        {
            "step": "error",
            "status": "error",
            "message": f"{reason}; gave up after 2 restarts",
        },
    ]
    assert strictly_increasing(event_ids(events))
    assert job["status"] == "error"
    assert job["error"] == f"{reason}; gave up after 2 restarts"
    assert job["result"] == {"tools": TINY_TOOLS, "restarts": 2}


def test_mcp_run_clean_exit_without_restart_completes(
    runtime: ServerProcess, api: Api
) -> None:
    """mcp.run with restart never against a server exiting 0 ends complete."""
    payload = {
        "start_command": tiny_command("--exit-after-list", "0"),
        "restart": "never",
    }

    job_id, events = _run(api, "mcp.run", payload)
    job = api.job(job_id)

    assert only_events(events) == [
        *_validated("mcp.run"),
        *_server_start(runtime.data_dir, job_id),
        {
            "step": "ready",
            "status": "ok",
            "message": "Service ready",
            "data": {"attempt": 1},
        },
        {"step": "complete", "status": "complete", "message": "Job complete"},
    ]
    assert job["status"] == "complete"
    assert job["result"] == {"exit_code": 0, "restarts": 0}
    assert "error" not in job


def test_tool_run_with_start_command_returns_the_tool_result(api: Api) -> None:
    """tool.run starts the time server, calls it, and keeps the raw result."""
    payload = {
        "start_command": TIME_COMMAND,
        "tool": "get_current_time",
        "arguments": {"timezone": "Europe/Paris"},
    }

    job_id, events = _run(api, "tool.run", payload)
    job = api.job(job_id)

    assert steps(events) == [
        "queue",
        "validate",
        "sandbox",
        "mcp_start",
        "mcp_initialize",
        "tools_list",
        "tool_call",
        "tool_call",
        "complete",
    ]
    assert only_events(events)[6:] == [
        {
            "step": "tool_call",
            "status": "start",
            "message": "Calling tool get_current_time",
        },
        {
            "step": "tool_call",
            "status": "ok",
            "message": "Tool get_current_time returned",
        },
        {"step": "complete", "status": "complete", "message": "Job complete"},
    ]
    assert job["status"] == "complete"
    assert job["result"]["isError"] is False
    text = json.loads(job["result"]["content"][0]["text"])
    assert text["timezone"] == "Europe/Paris"
    assert job["result"]["structuredContent"] == text


def test_tool_run_on_a_running_job_uses_its_server(
    runtime: ServerProcess, api: Api
) -> None:
    """tool.run with job_id calls the running mcp.test job's own server."""
    sandbox = api.submit("mcp.test", {"start_command": tiny_command()})
    with open_sse(api.events_url(sandbox)) as stream:
        stream.until_step("ready")
        payload = {"job_id": sandbox, "tool": "echo", "arguments": {"text": "via job"}}

        job_id, events = _run(api, "tool.run", payload)
        sandbox_status = api.job(sandbox)["status"]
        api.client.delete(f"/v1/jobs/{sandbox}")
        stream.rest()
    frames = _frames_of(runtime.data_dir, sandbox)

    assert only_events(events) == [
        {**QUEUE, "data": {"type": "tool.run"}},
        {
            "step": "tool_call",
            "status": "start",
            "message": f"Calling tool echo on job {sandbox}",
            "data": {"job_id": sandbox},
        },
        {"step": "tool_call", "status": "ok", "message": "Tool echo returned"},
        {"step": "complete", "status": "complete", "message": "Job complete"},
    ]
    assert api.job(job_id)["result"] == {
        "content": [{"type": "text", "text": "via job"}]
    }
    assert sandbox_status == "running"
    calls = [f for f in frames if f["message"].get("method") == "tools/call"]
    assert [c["message"]["params"] for c in calls] == [
        {"name": "echo", "arguments": {"text": "via job"}}
    ]


def test_tool_run_whose_tool_fails_ends_error_with_its_text(api: Api) -> None:
    """A tool result with isError ends the tool.run job error with its message."""
    payload = {"start_command": tiny_command(), "tool": "fail"}

    job_id, events = _run(api, "tool.run", payload)
    job = api.job(job_id)

    assert only_events(events)[-2:] == [
        {"step": "tool_call", "status": "start", "message": "Calling tool fail"},
        {"step": "error", "status": "error", "message": "failed on purpose"},
    ]
    assert job["status"] == "error"
    assert job["error"] == "failed on purpose"
    assert job["result"] == {
        "content": [{"type": "text", "text": "failed on purpose"}],
        "isError": True,
    }


def test_crash_of_one_job_leaves_another_running(api: Api) -> None:
    """One sandbox's server exiting 3 does not disturb a second sandbox."""
    crashing = api.open_sandbox(tiny_command())
    steady = api.open_sandbox(tiny_command())
    for opened in (crashing, steady):
        with open_sse(f"{api.url}{opened['events_url']}") as stream:
            stream.until_step("ready")

    api.call_tool(crashing["session_id"], "exit", {"code": 3})
    crashed = api.wait_for_job(crashing["job_id"])
    steady_status = api.job(steady["job_id"])["status"]
    answered = api.call_tool(steady["session_id"], "echo", {"text": "still here"})
    api.client.delete(f"/v1/sandbox/sessions/{steady['session_id']}")

    assert crashed["status"] == "error"
    assert crashed["error"] == "mcp server exited with code 3"
    assert steady_status == "running"
    assert answered.json() == {
        "ok": True,
        "result": {"content": [{"type": "text", "text": "still here"}]},
    }


def test_concurrency_limit_queues_jobs_in_order(tmp_path: Path) -> None:
    """With one slot, later jobs stay queued and then run one by one, in order."""
    with runtime_server(
        tmp_path / "data", MATRIX_RUNTIME_MAX_CONCURRENT_JOBS="1"
    ) as server:
        api = Api(server)
        first = api.open_sandbox(tiny_command())
        with open_sse(f"{api.url}{first['events_url']}") as first_stream:
            first_stream.until_step("ready")
            second = api.submit(
                "mcp.run",
                {
                    "start_command": tiny_command("--exit-after-list", "0"),
                    "restart": "never",
                },
            )
            third = api.submit(
                "tool.run",
                {
                    "start_command": tiny_command(),
                    "tool": "echo",
                    "arguments": {"text": "3"},
                },
            )
            with open_sse(api.events_url(second)) as second_stream:
                waiting = _frames_over_keepalives(second_stream, 3)
                statuses = [
                    api.job(j)["status"] for j in (first["job_id"], second, third)
                ]

                api.client.delete(f"/v1/sandbox/sessions/{first['session_id']}")
                first_tail = first_stream.rest()
                second_tail = second_stream.rest()
        third_events = read_all_events(api.events_url(third))
        final = [api.job(j)["status"] for j in (second, third)]
        api.close()

    assert statuses == ["running", "queued", "queued"]
    assert only_events(waiting) == [{**QUEUE, "data": {"type": "mcp.run"}}]
    assert steps(first_tail) == ["cancel"]
    assert steps(second_tail)[0] == "validate"
    assert steps(second_tail)[-1] == "complete"
    assert steps(third_events)[-1] == "complete"
    # Global positions: the second job started only after the first ended,
    # and the third only after the second ended.
    assert event_ids(second_tail)[0] > event_ids(first_tail)[-1]
    assert event_ids(third_events)[1] > event_ids(second_tail)[-1]
    assert final == ["complete", "complete"]


def _frames_over_keepalives(stream: Any, keepalives: int) -> list[Frame]:
    """Event frames read until ``keepalives`` keepalive comments have passed."""
    events: list[Frame] = []
    seen = 0
    for frame in stream.frames():
        if frame.is_event:
            events.append(frame)
        else:
            seen += 1
            if seen == keepalives:
                return events
    raise AssertionError(f"the stream ended; events: {events}")


def _frames_of(data_dir: Path, job_id: str) -> list[dict[str, Any]]:
    """The ``mcp.frame`` payloads of a job, read with ``matrix-runtime events``."""
    completed = subprocess.run(
        [
            str(BIN_DIR / "matrix-runtime"),
            "events",
            "--data-dir",
            str(data_dir),
            "--stream",
            f"job-{job_id}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    events = [json.loads(line) for line in completed.stdout.splitlines()]
    return [event["data"] for event in events if event["type"] == "mcp.frame"]
