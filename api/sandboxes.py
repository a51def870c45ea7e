"""``/v1/sandbox/sessions``: MCP sandboxes, a thin alias over ``mcp.test`` jobs."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify

from actors.errors import SandboxNotReadyError, SandboxNotRunningError
from api.bodies import SandboxRequest, ToolCallRequest, read_body
from api.context import ApiContext
from api.errors import ApiError
from api.jobs import submit_job, visible_job
from api.principal import Principal, current_principal
from api.sse import job_events_response, resume_position
from eventlog.vocabulary.jobs import TERMINAL_STATUSES
from projections.jobs import JobView, SessionView, session_snapshot
from projections.timefmt import format_timestamp
from runtime.mcp import McpError

NOT_FOUND = "sandbox session not found"


def create_sandboxes_blueprint(ctx: ApiContext) -> Blueprint:
    """Routes under ``/v1/sandbox/sessions``."""
    blueprint = Blueprint("sandboxes", __name__)

    @blueprint.post("/v1/sandbox/sessions")
    async def open_sandbox() -> tuple[Response, int]:
        body = await read_body(SandboxRequest)
        payload: dict[str, Any] = {
            "start_command": body.start_command,
            "transport": body.transport,
            "runtime": body.runtime,
            "env": body.env,
        }
        submitted = await submit_job(
            ctx,
            current_principal(),
            "mcp.test",
            body.ttl_seconds,
            payload,
            sandbox=True,
        )
        session_id = submitted.session_id
        return jsonify(
            {
                "session_id": session_id,
                "job_id": submitted.job_id,
                "status": "starting",
                "expires_at": format_timestamp(submitted.expires_at_ns),
                "events_url": f"/v1/sandbox/sessions/{session_id}/events",
            }
        ), 202

    @blueprint.get("/v1/sandbox/sessions/<session_id>")
    async def get_sandbox(session_id: str) -> Response:
        session, job = _visible(ctx, current_principal(), session_id)
        return jsonify(session_snapshot(session, job))

    @blueprint.delete("/v1/sandbox/sessions/<session_id>")
    async def delete_sandbox(session_id: str) -> Response:
        principal = current_principal()
        session, _ = _visible(ctx, principal, session_id)
        status = await ctx.supervisor.cancel(session.job_id, caused_by=principal.actor)
        return jsonify({"ok": True, "status": status})

    @blueprint.get("/v1/sandbox/sessions/<session_id>/events")
    async def sandbox_events(session_id: str) -> Response:
        session, _ = _visible(ctx, current_principal(), session_id)
        after = resume_position(ctx.log.head)
        return job_events_response(
            ctx.log, session.job_id, after, ctx.sse_keepalive_seconds
        )

    @blueprint.get("/v1/sandbox/sessions/<session_id>/tools")
    async def list_tools(session_id: str) -> Response:
        _, job = _visible(ctx, current_principal(), session_id)
        if job.status in TERMINAL_STATUSES:
            raise ApiError(409, "sandbox not running")
        if not job.ready:
            raise ApiError(409, "sandbox not ready")
        return jsonify({"tools": job.tools})

    @blueprint.post("/v1/sandbox/sessions/<session_id>/tools/call")
    async def call_tool(session_id: str) -> Response:
        body = await read_body(ToolCallRequest)
        if not body.name.strip():
            raise ApiError(400, "tool name is required")
        session, _ = _visible(ctx, current_principal(), session_id)
        try:
            result = await ctx.supervisor.call_tool(
                session.job_id, body.name, body.arguments or {}
            )
        except (SandboxNotReadyError, SandboxNotRunningError, McpError) as exc:
            raise ApiError(409, str(exc)) from None
        return jsonify({"ok": True, "result": result})

    return blueprint


def _visible(
    ctx: ApiContext, principal: Principal, session_id: str
) -> tuple[SessionView, JobView]:
    session = ctx.jobs.state.sessions.get(session_id)
    if session is None:
        raise ApiError(404, NOT_FOUND)
    job = visible_job(ctx, principal, session.job_id, not_found=NOT_FOUND)
    return session, job
