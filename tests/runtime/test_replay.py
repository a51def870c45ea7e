"""``matrix-runtime replay``: a job or sandbox session read back as a transcript."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.mcp_support import (
    BIN_DIR,
    BUBBLEWRAP_WORKS,
    TINY_SERVER,
    Api,
    runtime_server,
    tiny_command,
)
from tests.api.sse_client import open_sse

pytestmark = pytest.mark.slow

LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)  #(\d+) +(.*)")
ISOLATION = "bubblewrap" if BUBBLEWRAP_WORKS else "process-group"
NETWORK = "none" if BUBBLEWRAP_WORKS else "host"


@dataclass(frozen=True)
class Recorded:
    """A finished sandbox session in a stopped runtime's data directory."""

    data_dir: Path
    session_id: str
    job_id: str
    started: float
    ended: float


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """A sandbox that wrote to stderr, answered a tool call and was deleted."""
    data_dir = tmp_path_factory.mktemp("replay") / "data"
    started = time.time()
    with runtime_server(data_dir) as server:
        api = Api(server)
        opened = api.open_sandbox(tiny_command("--stderr", "tiny-says-hello"))
        with open_sse(f"{api.url}{opened['events_url']}") as stream:
            stream.until_step("ready")
            api.call_tool(opened["session_id"], "echo", {"text": "hi"})
            api.client.delete(f"/v1/sandbox/sessions/{opened['session_id']}")
            stream.rest()
        api.close()
    return Recorded(
        data_dir, opened["session_id"], opened["job_id"], started, time.time()
    )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN_DIR / "matrix-runtime"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _events(recorded: Recorded) -> list[dict[str, Any]]:
    listed = _cli(
        "events",
        "--data-dir",
        str(recorded.data_dir),
        "--stream",
        f"job-{recorded.job_id}",
    )
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def _parse(stdout: str) -> list[tuple[float, int, str]]:
    parsed = []
    for line in stdout.splitlines():
        match = LINE.fullmatch(line)
        assert match is not None, line
        moment = dt.datetime.fromisoformat(match.group(1)).timestamp()
        parsed.append((moment, int(match.group(2)), match.group(3)))
    return parsed


def test_replay_session_prints_steps_frames_and_stderr_with_times(
    recorded: Recorded,
) -> None:
    """Every event of the session's job is a timed line; frames show direction."""

    replayed = _cli("replay", recorded.session_id, "--data-dir", str(recorded.data_dir))
    events = _events(recorded)

    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stderr == ""
    lines = _parse(replayed.stdout)
    assert [position for _, position, _ in lines] == [e["position"] for e in events]
    times = [moment for moment, _, _ in lines]
    assert times == sorted(times)
    assert recorded.started - 0.001 <= times[0] and times[-1] <= recorded.ended
    for (moment, _, _), event in zip(lines, events, strict=True):
        recorded_at = dt.datetime.fromisoformat(event["time"]).timestamp()
        assert abs(moment - recorded_at) < 0.002
    texts = [text for _, _, text in lines]
    frames = [
        ("-> " if e["data"]["direction"] == "out" else "<- ")
        + json.dumps(e["data"]["message"], separators=(",", ":"))
        for e in events
        if e["type"] == "mcp.frame"
    ]
    assert [t for t in texts if t[:3] in ("-> ", "<- ")] == frames
    assert (
        '-> {"jsonrpc":"2.0","id":3,"method":"tools/call",'
        '"params":{"name":"echo","arguments":{"text":"hi"}}}'
    ) in frames
    assert (
        '<- {"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"hi"}]}}'
        in frames
    )
    assert [t for t in texts if t.startswith("stderr ")] == ["stderr tiny-says-hello"]
    command = f"python {TINY_SERVER} --stderr tiny-says-hello"
    work_dir = str((recorded.data_dir / "sandboxes" / recorded.job_id).resolve())
    others = [
        t for t in texts if t[:3] not in ("-> ", "<- ") and not t.startswith("stderr ")
    ]
    assert others[0] == (
        f"requested mcp.test job {recorded.job_id} by local ttl=120s payload="
        + json.dumps(
            {"env": {}, "runtime": "", "start_command": command, "transport": ""}
        )
    )
    assert re.fullmatch(
        rf"process started pid=\d+ isolation={ISOLATION} attempt=1: "
        + re.escape(command),
        others[7],
    )
    assert re.fullmatch(r"process exited code=-?\d+", others[13])
    assert others[1:7] + others[8:13] + others[14:] == [
        f"sandbox session {recorded.session_id} opened",
        'step queue [queued] Job queued {"type": "mcp.test"}',
        "started (left the queue)",
        'step validate [ok] Command accepted {"program": "python"}',
        "step sandbox [start] Creating temporary sandbox "
        + json.dumps(
            {"work_dir": work_dir, "isolation": ISOLATION, "network": NETWORK}
        ),
        "step mcp_start [start] Starting MCP server",
        "step mcp_initialize [ok] MCP initialize succeeded "
        + json.dumps(
            {
                "protocol_version": "2025-11-25",
                "server": {"name": "tiny", "version": "1.0"},
            }
        ),
        'step tools_list [ok] Found 3 tools {"count": 3}',
        "result " + json.dumps({"tools": _tiny_tools()}),
        "step ready [ok] Sandbox ready",
        "cancel requested by local",
        "step cancel [cancelled] Job cancelled",
        "finished cancelled",
    ]


def test_replay_job_id_prints_the_same_transcript(recorded: Recorded) -> None:
    """The job id and the session id name the same transcript."""

    by_session = _cli(
        "replay", recorded.session_id, "--data-dir", str(recorded.data_dir)
    )
    by_job = _cli("replay", recorded.job_id, "--data-dir", str(recorded.data_dir))

    assert by_job.returncode == 0
    assert by_job.stdout == by_session.stdout
    assert by_job.stdout != ""


@pytest.mark.parametrize("target", ["x", "sbx_000000000000000000", "job_missing"])
def test_replay_unknown_id_fails(recorded: Recorded, target: str) -> None:
    """An id that names nothing in the log exits 1 with the exact message."""

    replayed = _cli("replay", target, "--data-dir", str(recorded.data_dir))

    assert replayed.returncode == 1
    assert replayed.stdout == ""
    assert replayed.stderr == (
        f"matrix-runtime: no job or sandbox session '{target}' in the log\n"
    )


def _tiny_tools() -> list[dict[str, Any]]:
    return [
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
            "input_schema": {
                "type": "object",
                "properties": {"code": {"type": "integer"}},
            },
        },
    ]
