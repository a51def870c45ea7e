"""A runtime killed with SIGKILL and started again on the same data directory."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.api.mcp_support import (
    BIN_DIR,
    ISOLATIONS,
    Api,
    only_events,
    prepare_data_dir,
    sandbox_pids,
    server_env,
    start_time,
    steps,
    tiny_command,
    wait_until,
)
from tests.api.sse_client import open_sse, read_all_events
from tests.server_process import ServerProcess, start_server

pytestmark = pytest.mark.slow

INTERRUPTED = "Job interrupted: the runtime restarted"


def _verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN_DIR / "matrix-runtime"), "verify", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _stop(server: ServerProcess) -> None:
    if server.process.poll() is None:
        server.stop()


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_restart_after_sigkill_recovers_jobs_streams_and_processes(
    tmp_path: Path, isolation: str
) -> None:
    """Jobs survive, running ones end interrupted, queued ones run, SSE resumes."""
    data_dir = prepare_data_dir(tmp_path / "data")
    env = server_env(
        MATRIX_RUNTIME_MAX_CONCURRENT_JOBS="1", MATRIX_RUNTIME_SANDBOX=isolation
    )
    first = start_server(data_dir, env)
    try:
        api = Api(first)
        sandbox = api.open_sandbox(tiny_command("--linger"))
        session_id, running_job = sandbox["session_id"], sandbox["job_id"]
        with open_sse(f"{api.url}{sandbox['events_url']}") as stream:
            seen = stream.until_step("mcp_start")
        tools_url = f"/v1/sandbox/sessions/{session_id}/tools"
        ready = wait_until(
            lambda: (answer := api.client.get(tools_url)).status_code == 200 and answer,
            what="the sandbox never became ready",
        )
        queued_job = api.submit("mcp.test", {"start_command": tiny_command()})
        with open_sse(api.events_url(queued_job)) as stream:
            queued_seen = stream.until_step("queue")
        queued_status = api.job(queued_job)["status"]
        leftovers = {pid: start_time(pid) for pid in sandbox_pids(data_dir)}
        api.close()
    finally:
        first.stop(signal.SIGKILL)
    survived = {pid for pid, started in leftovers.items() if start_time(pid) == started}
    verified = _verify(data_dir)

    second = start_server(data_dir, env)
    try:
        still_running = {
            pid for pid, started in leftovers.items() if start_time(pid) == started
        }
        api = Api(second)
        listed = [job["job_id"] for job in api.client.get("/v1/jobs").json()["jobs"]]
        session = api.client.get(f"/v1/sandbox/sessions/{session_id}").json()
        interrupted = api.job(running_job)
        resumed = read_all_events(
            f"{api.url}{sandbox['events_url']}", last_event_id=seen[-1].id
        )
        history = read_all_events(f"{api.url}{sandbox['events_url']}")
        with open_sse(
            api.events_url(queued_job), last_event_id=queued_seen[-1].id
        ) as stream:
            restarted = stream.until_step("ready")
        with open_sse(api.events_url(queued_job)) as stream:
            queued_history = stream.until_step("ready")
        api.client.delete(f"/v1/jobs/{queued_job}")
        api.close()
    finally:
        _stop(second)

    assert ready.status_code == 200
    assert queued_status == "queued"
    assert leftovers
    assert survived == set(leftovers)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.splitlines()[-1].endswith(
        "events, chain, indexes and pages verified"
    )
    assert still_running == set()
    assert sandbox_pids(data_dir) == set()
    assert listed == [queued_job, running_job]
    assert session["status"] == "error"
    assert interrupted["status"] == "error"
    assert interrupted["error"] == INTERRUPTED
    assert steps(resumed) == ["mcp_initialize", "tools_list", "ready", "error"]
    assert resumed[-1].data == {
        "step": "error",
        "status": "error",
        "message": INTERRUPTED,
    }
    assert seen + resumed == history
    assert steps(restarted) == [
        "validate",
        "sandbox",
        "mcp_start",
        "mcp_initialize",
        "tools_list",
        "ready",
    ]
    assert queued_seen + restarted == queued_history
    assert only_events(queued_seen) == [
        {
            "step": "queue",
            "status": "queued",
            "message": "Job queued",
            "data": {"type": "mcp.test"},
        }
    ]
