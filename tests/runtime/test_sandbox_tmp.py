"""Programs kept under /tmp run in the sandbox: CI checkouts, venvs, tmp_path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.mcp import open_mcp_client
from runtime.sandbox import SandboxSpec, open_sandboxed_process
from tests.runtime.support import ListRecorder, private_dir, read_all
from tests.runtime.test_sandbox import ISOLATIONS

TINY_SERVER = Path(__file__).parents[1] / "api" / "programs" / "tiny_mcp.py"


def make_copied_venv(path: Path) -> Path:
    """A virtual environment whose interpreter is a copy living under ``path``."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--copies", "--without-pip", str(path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path / "bin" / "python"


@pytest.mark.parametrize("isolation", ISOLATIONS)
async def test_sandbox_runs_interpreter_and_server_under_tmp(
    tmp_path: Path, isolation: str
) -> None:
    """A venv interpreter and an MCP server script under tmp_path serve a call."""
    assert str(tmp_path).startswith("/tmp/")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    script = Path(shutil.copy(TINY_SERVER, checkout / "tiny_mcp.py"))
    python = make_copied_venv(tmp_path / "venv")
    data = tmp_path / "data"
    spec = SandboxSpec(
        argv=[str(python), str(script)],
        env={},
        work_dir=private_dir(data / "sandboxes" / "job-1"),
        cache_dir=data / "cache",
        isolation=isolation,
        hidden_dirs=(data,),
    )

    async with (
        open_sandboxed_process(spec) as process,
        open_mcp_client(process, ListRecorder()) as client,
    ):
        initialized = await client.initialize()
        tools = await client.list_tools()
        result = await client.call_tool("echo", {"text": "from /tmp"})

    assert process.command == [str(python), str(script)]
    assert initialized["serverInfo"] == {"name": "tiny", "version": "1.0"}
    assert [tool["name"] for tool in tools] == ["echo", "fail", "exit"]
    assert result == {"content": [{"type": "text", "text": "from /tmp"}]}


@pytest.mark.parametrize("isolation", ISOLATIONS)
async def test_sandbox_interpreter_under_tmp_is_the_one_that_runs(
    tmp_path: Path, isolation: str
) -> None:
    """The copied interpreter runs with its own prefix; TMPDIR is in the work dir."""
    python = make_copied_venv(tmp_path / "venv")
    work = private_dir(tmp_path / "work")
    code = (
        "import json, os, sys, tempfile; print(json.dumps([sys.executable, "
        "sys.prefix, tempfile.gettempdir()]))"
    )
    spec = SandboxSpec(
        argv=[str(python), "-c", code], env={}, work_dir=work, isolation=isolation
    )

    async with open_sandboxed_process(spec) as process:
        output = await read_all(process.stdout)
        status = await process.wait()

    assert status == 0
    assert json.loads(output) == [
        str(python),
        str(tmp_path / "venv"),
        str(work / "tmp"),
    ]
