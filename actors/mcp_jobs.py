"""The handlers of the MCP job types: ``mcp.test``, ``mcp.run``, ``tool.run``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio

from actors.errors import JobFailedError
from actors.job_actor import Handler, JobContext, Outcome
from actors.mcp_environment import McpEnvironment
from actors.mcp_server import (
    ReadyFacts,
    RunningServer,
    contract_tools,
    serve_calls,
    start_server,
    validate_command,
)
from actors.payloads import McpRunPayload, ServerSpec, ToolRunPayload, decode_payload
from actors.recorder import OutputBudget
from eventlog.schemas import Payload
from eventlog.vocabulary.jobs import JobResult, JobStep
from runtime.mcp import McpClosedError, McpError

MAX_BACKOFF_SECONDS: Final = 30.0
FIRST_BACKOFF_SECONDS: Final = 0.5
ANSWER_GRACE_SECONDS: Final = 2.0

log = logging.getLogger(__name__)

CallOnJob = Callable[[str, str, str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""``(job_id, workspace, tool name, arguments)`` -> the tool's raw result."""


def mcp_handlers(env: McpEnvironment, call_on_job: CallOnJob) -> dict[str, Handler]:
    """The handler of each MCP job type, bound to the runtime's environment."""

    async def mcp_test(ctx: JobContext) -> None:
        spec = _payload(ctx)
        argv, accepted = _validate(env, spec)
        async with start_server(
            ctx, env, spec, argv, before=[accepted], when_ready=_ready("Sandbox ready")
        ) as server:
            returncode = await _serve_until_exit(ctx, server)
        raise JobFailedError(f"mcp server exited with code {returncode}")

    async def mcp_run(ctx: JobContext) -> Outcome | None:
        spec = _payload(ctx)
        assert isinstance(spec, McpRunPayload)
        argv, accepted = _validate(env, spec)
        return await _supervise(ctx, env, spec, argv, accepted)

    async def tool_run(ctx: JobContext) -> None:
        spec = _payload(ctx)
        assert isinstance(spec, ToolRunPayload)
        if spec.job_id:
            await ctx.step(
                "tool_call",
                "start",
                f"Calling tool {spec.tool_name} on job {spec.job_id}",
                {"job_id": spec.job_id},
            )
            result = await call_on_job(
                spec.job_id, ctx.spec.workspace, spec.tool_name, spec.arguments
            )
        else:
            argv, accepted = _validate(env, spec)
            calling = JobStep(
                step="tool_call",
                status="start",
                message=f"Calling tool {spec.tool_name}",
            )
            async with start_server(
                ctx, env, spec, argv, before=[accepted], when_ready=lambda _: [calling]
            ) as server:
                try:
                    result = await server.client.call_tool(
                        spec.tool_name, spec.arguments
                    )
                except McpError as exc:
                    raise JobFailedError(str(exc)) from None
        await ctx.set_result(result)
        if result.get("isError"):
            raise JobFailedError(tool_error_text(result))
        await ctx.step("tool_call", "ok", f"Tool {spec.tool_name} returned")

    return {"mcp.test": mcp_test, "mcp.run": mcp_run, "tool.run": tool_run}


def tool_error_text(result: dict[str, Any]) -> str:
    """The message of a tool result with ``isError``: its text content, joined."""
    texts = [
        str(item.get("text", ""))
        for item in result.get("content") or []
        if isinstance(item, dict) and item.get("type") == "text"
    ]
    return "\n".join(t for t in texts if t) or "tool call failed"


def _payload(ctx: JobContext) -> ServerSpec:
    try:
        return decode_payload(ctx.spec.type, ctx.spec.payload)
    except ValueError as exc:
        raise JobFailedError(str(exc)) from None


def _validate(env: McpEnvironment, spec: ServerSpec) -> tuple[list[str], JobStep]:
    """The argv for ``spec`` and the step saying it was accepted.

    The step is recorded by :func:`start_server`, with its own first steps.
    """
    argv = validate_command(env, spec)
    accepted = JobStep(
        step="validate",
        status="ok",
        message="Command accepted",
        data={"program": argv[0]},
    )
    return argv, accepted


def _ready(
    message: str,
    result: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> ReadyFacts:
    """The job's result (the tools, plus ``result``) and its ``ready`` step."""

    def facts(server: RunningServer) -> list[Payload]:
        return [
            JobResult(result={"tools": server.tools, **(result or {})}),
            JobStep(step="ready", status="ok", message=message, data=data or {}),
        ]

    return facts


async def _serve_until_exit(ctx: JobContext, server: RunningServer) -> int:
    """Serve calls and follow tool changes until the server process exits."""
    actor = ctx.actor
    actor.services["server"] = server
    try:
        async with trio.open_nursery() as answers:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve_calls, actor.calls, server, answers)
                nursery.start_soon(_follow_tool_changes, ctx, server)
                returncode = await server.process.wait()
                nursery.cancel_scope.cancel()
            # A server may answer a call and then exit: that answer still
            # reaches its caller. Calls without one fail as soon as the
            # client sees the output close; the grace bounds a pipe that a
            # leftover grandchild keeps open.
            answers.cancel_scope.deadline = trio.current_time() + ANSWER_GRACE_SECONDS
    finally:
        actor.services.pop("server", None)
    return returncode


async def _follow_tool_changes(ctx: JobContext, server: RunningServer) -> None:
    # From the handshake's revision, not the current one: a listing that
    # finished while the ready step was being recorded is still published.
    revision = server.tools_revision
    while True:
        try:
            listed = await server.client.wait_tools_changed(revision)
        except McpClosedError:
            # The server is gone; waiting on its exit ends the job.
            return
        revision = server.client.tools_revision
        tools = contract_tools(listed)
        server.tools = tools
        await ctx.set_result({"tools": tools})
        await ctx.step(
            "tools_changed",
            "ok",
            f"Tool list changed: {len(tools)} tools",
            {"tools": tools},
        )


async def _supervise(
    ctx: JobContext,
    env: McpEnvironment,
    spec: McpRunPayload,
    argv: list[str],
    accepted: JobStep,
) -> Outcome | None:
    """Run the server as a service, restarting it as the policy says."""
    restarts = 0
    # One budget for the job, not per start: restarting does not refill it.
    budget = OutputBudget(env.max_output_bytes)
    while True:
        attempt = restarts + 1
        try:
            async with start_server(
                ctx,
                env,
                spec,
                argv,
                attempt=attempt,
                before=[accepted] if attempt == 1 else [],
                when_ready=_ready(
                    "Service ready", {"restarts": restarts}, {"attempt": attempt}
                ),
                budget=budget,
            ) as server:
                returncode = await _serve_until_exit(ctx, server)
            failure = (
                "" if returncode == 0 else f"mcp server exited with code {returncode}"
            )
        except JobFailedError as exc:
            returncode, failure = -1, str(exc)

        wants_restart = spec.restart == "always" or (
            spec.restart == "on-failure" and failure
        )
        if not wants_restart:
            if failure:
                raise JobFailedError(failure)
            await ctx.set_result({"exit_code": 0, "restarts": restarts})
            return Outcome("complete", "Job complete")
        if restarts >= spec.max_restarts:
            reason = failure or "mcp server exited with code 0"
            raise JobFailedError(f"{reason}; gave up after {restarts} restarts")

        restarts += 1
        delay = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (restarts - 1))
        await ctx.step(
            "restart",
            "running",
            f"Restarting MCP server in {delay:g}s (restart {restarts} of "
            f"{spec.max_restarts})",
            {"exit_code": returncode, "attempt": attempt + 1, "reason": failure},
        )
        await trio.sleep(delay)
