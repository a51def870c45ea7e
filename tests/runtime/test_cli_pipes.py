"""The printing commands stop quietly when their reader goes away (``| head``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.server_process import BIN_DIR, running_server


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A stopped runtime's data directory and the id of a job that ended in it."""
    data_dir = tmp_path_factory.mktemp("pipes") / "data"
    with running_server(data_dir) as server:
        created = httpx.post(
            f"{server.url}/v1/jobs",
            json={"type": "mcp.test", "payload": {"start_command": "node missing.js"}},
        )
        httpx.get(f"{server.url}{created.json()['events_url']}", timeout=30)
    return data_dir, created.json()["job_id"]


def _run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``matrix-runtime args`` with stdout a pipe nobody reads any more."""
    read_end, write_end = os.pipe()
    # Closed before the child starts, so its very first write fails with
    # EPIPE: the same as ``| head -1`` after head exited, without the race.
    os.close(read_end)
    try:
        return subprocess.run(
            [str(BIN_DIR / "matrix-runtime"), *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("command", ["replay", "events"])
def test_cli_closed_stdout_is_quiet(
    finished_job: tuple[Path, str], command: str
) -> None:
    """replay and events into a closed pipe: exit 0 and nothing on stderr."""
    data_dir, job_id = finished_job
    args = [command, job_id] if command == "replay" else [command]
    printed = subprocess.run(
        [str(BIN_DIR / "matrix-runtime"), *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    result = _run_into_closed_pipe(*args, "--data-dir", str(data_dir))

    assert len(printed.stdout.splitlines()) > 5
    assert (result.returncode, result.stderr) == (0, "")
