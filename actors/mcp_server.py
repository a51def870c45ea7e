"""Starting an MCP server for a job and serving tool calls to it.

Shared by every job type that runs a server (``mcp.test``, ``mcp.run``,
``tool.run``). Each step a client can see is appended before the next begins.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
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
from actors.recorder import JobRecorder, OutputBudget
from eventlog.schemas import Payload
from eventlog.vocabulary.jobs import JobStep
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

ReadyFacts = Callable[["RunningServer"], Sequence[Payload]]
"""The facts a caller records once its server is ready (result, next step)."""


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
    before: Sequence[Payload] = (),
    when_ready: ReadyFacts | None = None,
    budget: OutputBudget | None = None,
) -> AsyncIterator[RunningServer]:
    """Create the sandbox, spawn the server, handshake and list its tools.

    The working directory and the whole process tree are gone when this
    exits, however it exits.

    Args:
        budget: The job's output budget (see :mod:`actors.recorder`); a job
            that restarts its server passes the same one to every start. A
            new one of ``env.max_output_bytes`` when ``None``.
        before: Facts the caller has ready (the accepted command), recorded
            in one append with the sandbox and start steps.
        when_ready: The caller's facts for a ready server (its result and
            its next step), recorded in one append with the handshake's
            steps, so a client sees them all at once.

    Raises:
        JobFailedError: the server could not be started or initialised.
    """
    work_dir = env.sandboxes_dir / ctx.spec.job_id
    sandbox_step = JobStep(
        step="sandbox",
        status="start",
        message="Creating temporary sandbox",
        data={
            "work_dir": str(work_dir.resolve()),
            "isolation": env.isolation,
            "network": env.network,
        },
    )
    if budget is None:
        budget = OutputBudget(env.max_output_bytes)
    try:
        _make_private_dir(work_dir)
    except JobFailedError:
        await ctx.record(*before, sandbox_step)
        raise
    process_spec = SandboxSpec(
        argv=argv,
        env=dict(spec.env),
        work_dir=work_dir,
        limits=env.limits,
        cache_dir=env.cache_dir,
        isolation=env.isolation,
        hidden_dirs=env.hidden_dirs,
        search_path=env.search_path,
        network=env.network,
    )
    # Known together, so one append instead of three. The directory exists
    # a moment before its step is durable; after a crash in between,
    # recovery removes it with the interrupted job's sandbox.
    steps = [
        *before,
        sandbox_step,
        JobStep(step="mcp_start", status="start", message="Starting MCP server"),
    ]
    process: SandboxedProcess | None = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            process = await _spawn_while_recording(ctx, stack, process_spec, steps)
            await ctx.record(
                McpProcessStarted(
                    argv=argv,
                    pid=process.pid,
                    isolation=process.isolation,
                    attempt=attempt,
                )
            )
            client = await stack.enter_async_context(
                open_mcp_client(process, JobRecorder(ctx, budget), env.client)
            )
            yield await _handshake(ctx, env, process, client, when_ready)
    finally:
        if process is not None:
            # Shielded: the exit code, and how much output went unrecorded,
            # belong in the record even when the job is ending because it
            # was cancelled.
            with trio.CancelScope(shield=True):
                await _record_exit(ctx, process, attempt, budget)
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
    when_ready: ReadyFacts | None,
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
    server = RunningServer(
        process, client, protocol_version, contract_tools(tools), revision
    )
    await ctx.record(
        JobStep(
            step="mcp_initialize",
            status="ok",
            message="MCP initialize succeeded",
            data={"protocol_version": protocol_version, "server": server_info},
        ),
        JobStep(
            step="tools_list",
            status="ok",
            message=f"Found {len(tools)} tools",
            data={"count": len(tools)},
        ),
        *(when_ready(server) if when_ready is not None else ()),
    )
    return server


async def _spawn_while_recording(
    ctx: JobContext,
    stack: contextlib.AsyncExitStack,
    spec: SandboxSpec,
    steps: Sequence[Payload],
) -> SandboxedProcess:
    """Start the process while its informational steps are being committed.

    The spawn overlaps the commit instead of waiting for it. Nothing else
    is recorded or shown before the steps are durable: this returns, or
    raises, only once their append is done.

    Raises:
        JobFailedError: the process could not be started.
    """
    failure: Exception | None = None
    record_error: Exception | None = None

    async def record_steps() -> None:
        nonlocal record_error
        # Kept and raised below: a failed append surfaces as itself, not
        # wrapped in the nursery's exception group.
        try:
            await ctx.record(*steps)
        except Exception as exc:
            record_error = exc

    async with trio.open_nursery() as recording:
        recording.start_soon(record_steps)
        try:
            process = await stack.enter_async_context(open_sandboxed_process(spec))
        except (SandboxError, ProgramNotFoundError) as exc:
            failure = exc
    if record_error is not None:
        raise record_error
    if failure is not None:
        raise JobFailedError(f"start mcp server: {failure}") from None
    return process


async def _record_exit(
    ctx: JobContext, process: SandboxedProcess, attempt: int, budget: OutputBudget
) -> None:
    """Record what went unrecorded (if anything) and the exit status."""
    facts: list[Payload] = []
    dropped = budget.take_dropped()
    if dropped is not None:
        facts.append(dropped)
    if process.returncode is not None:
        facts.append(McpProcessExited(returncode=process.returncode, attempt=attempt))
    if not facts:
        return
    with trio.move_on_after(FINAL_APPEND_TIMEOUT):
        await ctx.record(*facts)


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
