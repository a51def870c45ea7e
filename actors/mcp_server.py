"""Starting an MCP server for a job and serving tool calls to it.

Shared by every job type that runs a server (``mcp.test``, ``mcp.run``,
``tool.run``). Each step a client can see is appended before the next begins.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from actors.errors import JobFailedError
from actors.job_actor import FINAL_APPEND_TIMEOUT, JobContext
from actors.mailbox import ToolCall, ToolCallOutcome
from actors.mcp_environment import McpEnvironment
from actors.payloads import ServerSpec
from actors.recorder import JobRecorder
from eventlog.vocabulary.mcp import McpProcessExited, McpProcessStarted
from runtime.command_policy import CommandRejectedError, ProgramNotFoundError
from runtime.mcp import McpClient, McpError, open_mcp_client
from runtime.sandbox import (
    SandboxedProcess,
    SandboxError,
    SandboxSpec,
    open_sandboxed_process,
)

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class RunningServer:
    """A live, initialised MCP server owned by one job."""

    process: SandboxedProcess
    client: McpClient
    protocol_version: str
    tools: list[dict[str, Any]] = field(default_factory=list)
    tools_revision: int = 0
    """The client's tools revision that :attr:`tools` comes from."""


def validate_command(env: McpEnvironment, spec: ServerSpec) -> list[str]:
    """The argv for ``spec``, or the job failure the policy's refusal means."""
    try:
        return env.policy.validate(spec.start_command, spec.env)
    except CommandRejectedError as exc:
        raise JobFailedError(str(exc)) from None


def contract_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tools in the API's shape: ``name``, ``description``?, ``input_schema``?."""
    shaped = []
    for tool in tools:
        item: dict[str, Any] = {"name": tool.get("name", "")}
        if tool.get("description"):
            item["description"] = tool["description"]
        if "inputSchema" in tool:
            item["input_schema"] = tool["inputSchema"]
        shaped.append(item)
    return shaped


@asynccontextmanager
async def start_server(
    ctx: JobContext,
    env: McpEnvironment,
    spec: ServerSpec,
    argv: list[str],
    *,
    attempt: int = 1,
) -> AsyncIterator[RunningServer]:
    """Create the sandbox, spawn the server, handshake and list its tools.

    The working directory and the whole process tree are gone when this
    exits, however it exits.

    Raises:
        JobFailedError: the server could not be started or initialised.
    """
    work_dir = env.sandboxes_dir / ctx.spec.job_id
    await ctx.step(
        "sandbox",
        "start",
        "Creating temporary sandbox",
        {"work_dir": str(work_dir.resolve()), "isolation": env.isolation},
    )
    _make_private_dir(work_dir)
    process_spec = SandboxSpec(
        argv=argv,
        env=dict(spec.env),
        work_dir=work_dir,
        limits=env.limits,
        cache_dir=env.cache_dir,
        isolation=env.isolation,
        hidden_dirs=env.hidden_dirs,
        search_path=env.search_path,
    )
    process: SandboxedProcess | None = None
    try:
        await ctx.step("mcp_start", "start", "Starting MCP server")
        try:
            async with open_sandboxed_process(process_spec) as process:
                await ctx.record(
                    McpProcessStarted(
                        argv=argv,
                        pid=process.pid,
                        isolation=process.isolation,
                        attempt=attempt,
                    )
                )
                async with open_mcp_client(
                    process, JobRecorder(ctx), env.client
                ) as client:
                    yield await _handshake(ctx, env, process, client)
        except (SandboxError, ProgramNotFoundError) as exc:
            raise JobFailedError(f"start mcp server: {exc}") from None
    finally:
        if process is not None:
            # Shielded: the exit code belongs in the record even when the
            # job is ending because it was cancelled.
            with trio.CancelScope(shield=True):
                await _record_exit(ctx, process, attempt)
        shutil.rmtree(work_dir, ignore_errors=True)


async def serve_calls(
    calls: trio.MemoryReceiveChannel[ToolCall],
    server: RunningServer,
    answers: trio.Nursery,
) -> None:
    """Take tool calls from the mailbox until cancelled; answer each in ``answers``.

    The answers run in a nursery of the caller's, so that stopping the intake
    (the server exited) does not cancel a call whose answer already came.
    """
    async for call in calls:
        answers.start_soon(_answer, call, server.client)


async def _answer(call: ToolCall, client: McpClient) -> None:
    async with call.reply:
        outcome = ToolCallOutcome()
        try:
            outcome.result = await client.call_tool(call.name, call.arguments)
        except McpError as exc:
            outcome.error = exc
        # The caller may have given up (timeout or disconnect); the frames
        # are recorded, so nothing is lost by dropping the answer.
        with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
            call.reply.send_nowait(outcome)


async def _handshake(
    ctx: JobContext,
    env: McpEnvironment,
    process: SandboxedProcess,
    client: McpClient,
) -> RunningServer:
    try:
        with trio.fail_after(env.client.startup_timeout):
            initialized = await client.initialize()
            await client.list_tools()
    except trio.TooSlowError:
        raise JobFailedError(
            f"mcp handshake failed: no answer within {env.client.startup_timeout:g} "
            "seconds"
        ) from None
    except McpError as exc:
        raise JobFailedError(f"mcp handshake failed: {exc}") from None
    # The client's newest listing, not the one this call returned: a
    # list_changed sent right after initialized starts a refresh that can
    # overtake it, and the job must publish what the server offers now.
    tools = client.tools
    revision = client.tools_revision
    protocol_version = str(initialized.get("protocolVersion", ""))
    server_info = initialized.get("serverInfo") or {}
    await ctx.step(
        "mcp_initialize",
        "ok",
        "MCP initialize succeeded",
        {"protocol_version": protocol_version, "server": server_info},
    )
    await ctx.step(
        "tools_list", "ok", f"Found {len(tools)} tools", {"count": len(tools)}
    )
    return RunningServer(
        process, client, protocol_version, contract_tools(tools), revision
    )


async def _record_exit(
    ctx: JobContext, process: SandboxedProcess, attempt: int
) -> None:
    returncode = process.returncode
    if returncode is None:
        return
    with trio.move_on_after(FINAL_APPEND_TIMEOUT):
        await ctx.record(McpProcessExited(returncode=returncode, attempt=attempt))


def _make_private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=False)
    except FileExistsError:
        # Left by a runtime that crashed while this job ran; start clean.
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o700, parents=True)
    except OSError as exc:
        raise JobFailedError(f"create sandbox dir: {exc.strerror or exc}") from None
    path.chmod(0o700)
