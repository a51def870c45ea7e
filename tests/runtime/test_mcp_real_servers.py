"""The MCP client in the sandbox against real servers from PyPI and npm."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runtime.mcp import open_mcp_client
from runtime.sandbox import SandboxSpec, open_sandboxed_process
from tests.runtime.support import (
    EVERYTHING,
    SEARCH_PATH,
    TEST_CACHE_DIR,
    ListRecorder,
    private_dir,
)
from tests.runtime.test_sandbox import ISOLATIONS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("isolation", ISOLATIONS)
async def test_time_server_reports_paris_timezone(
    tmp_path: Path, isolation: str
) -> None:
    """python -m mcp_server_time answers get_current_time for Europe/Paris."""
    spec = SandboxSpec(
        argv=["python", "-m", "mcp_server_time"],
        env={},
        work_dir=private_dir(tmp_path / "work"),
        cache_dir=TEST_CACHE_DIR,
        isolation=isolation,
        search_path=SEARCH_PATH,
    )

    async with (
        open_sandboxed_process(spec) as process,
        open_mcp_client(process, ListRecorder()) as client,
    ):
        await client.initialize()
        tools = await client.list_tools()
        result = await client.call_tool(
            "get_current_time", {"timezone": "Europe/Paris"}
        )

    assert [tool["name"] for tool in tools] == ["get_current_time", "convert_time"]
    assert result.get("isError", False) is False
    assert json.loads(result["content"][0]["text"])["timezone"] == "Europe/Paris"


@pytest.mark.skipif(shutil.which("npx") is None, reason="npx is not installed")
async def test_everything_server_echoes(tmp_path: Path) -> None:
    """npx -y server-everything answers echo with the exact text."""
    recorder = ListRecorder()
    spec = SandboxSpec(
        argv=["npx", "-y", EVERYTHING],
        env={},
        work_dir=private_dir(tmp_path / "work"),
        cache_dir=TEST_CACHE_DIR,
        search_path=SEARCH_PATH,
        # npx -y may have to download the package.
        network="host",
    )

    async with (
        open_sandboxed_process(spec) as process,
        open_mcp_client(process, recorder) as client,
    ):
        await client.initialize()
        tools = await client.list_tools()
        result = await client.call_tool("echo", {"message": "hi"}, timeout=30)

    assert "echo" in [tool["name"] for tool in tools]
    assert result["content"] == [{"type": "text", "text": "Echo: hi"}]
    assert client.protocol_version == "2025-11-25"
