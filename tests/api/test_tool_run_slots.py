"""tool.run against a live job needs no concurrency slot of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.mcp_support import Api, runtime_server, tiny_command
from tests.api.sse_client import open_sse
from tests.server_process import ServerProcess


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ServerProcess]:
    """A runtime with a single concurrency slot."""
    with runtime_server(
        tmp_path / "data", MATRIX_RUNTIME_MAX_CONCURRENT_JOBS="1"
    ) as server:
        yield server


def test_tool_run_on_live_job_runs_while_the_sandbox_holds_the_only_slot(
    api: Api,
) -> None:
    """The sandbox keeps the one slot; a tool.run calling into it still runs."""
    sandbox = api.submit("mcp.test", {"start_command": tiny_command()})
    with open_sse(api.events_url(sandbox)) as stream:
        stream.until_step("ready")

        tool_run = api.submit(
            "tool.run",
            {"job_id": sandbox, "tool": "echo", "arguments": {"text": "one slot"}},
        )
        finished = api.wait_for_job(tool_run)
        sandbox_status = api.job(sandbox)["status"]
        api.client.delete(f"/v1/jobs/{sandbox}")
        stream.rest()

    assert finished["status"] == "complete"
    assert finished["result"] == {"content": [{"type": "text", "text": "one slot"}]}
    assert sandbox_status == "running"


def test_tool_run_with_its_own_server_still_queues_for_the_slot(
    api: Api,
) -> None:
    """A tool.run that starts a server waits while the sandbox holds the slot."""
    sandbox = api.submit("mcp.test", {"start_command": tiny_command()})
    with open_sse(api.events_url(sandbox)) as stream:
        stream.until_step("ready")

        tool_run = api.submit(
            "tool.run",
            {
                "start_command": tiny_command(),
                "tool": "echo",
                "arguments": {"text": "x"},
            },
        )
        queued = api.job(tool_run)["status"]
        api.client.delete(f"/v1/jobs/{sandbox}")
        stream.rest()
    finished = api.wait_for_job(tool_run)

    assert queued == "queued"
    assert finished["status"] == "complete"
