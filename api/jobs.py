"""``/v1/jobs``: create, list, read, cancel and stream jobs."""

from __future__ import annotations

from typing import Final

from quart import Blueprint, Response, jsonify, request

from actors.errors import InvalidJobError, UnprocessableJobError
from actors.supervisor import SubmittedJob
from api.bodies import CreateJobRequest, read_body
from api.context import ApiContext
from api.errors import ApiError
from api.principal import Principal, current_principal
from api.sse import job_events_response, resume_position
from eventlog.vocabulary.jobs import JOB_STATUSES
from projections.jobs import JobView, job_snapshot, list_jobs
from runtime.whole_number import parse_whole_number

MAX_LIST_LIMIT: Final = 1000


def create_jobs_blueprint(ctx: ApiContext) -> Blueprint:
    """Routes under ``/v1/jobs``."""
    blueprint = Blueprint("jobs", __name__)

    @blueprint.post("/v1/jobs")
    async def create_job() -> tuple[Response, int]:
        body = await read_body(CreateJobRequest)
        principal = current_principal()
        submitted = await submit_job(
            ctx, principal, body.type, body.ttl_seconds, body.payload, sandbox=False
        )
        return jsonify(
            {
                "job_id": submitted.job_id,
                "status": "queued",
                "events_url": f"/v1/jobs/{submitted.job_id}/events",
            }
        ), 202

    @blueprint.get("/v1/jobs")
    async def get_jobs() -> Response:
        principal = current_principal()
        job_type = request.args.get("type") or None
        status = request.args.get("status") or None
        if status is not None and status not in JOB_STATUSES:
            raise ApiError(
                400, f"status must be one of {', '.join(JOB_STATUSES)}, not {status!r}"
            )
        limit = _limit(request.args.get("limit"))
        jobs = list_jobs(
            ctx.jobs.state,
            workspace=None if principal.sees_all_workspaces else principal.workspace_id,
            type=job_type,
            status=status,
            limit=limit,
        )
        return jsonify({"jobs": [job_snapshot(job) for job in jobs]})

    @blueprint.get("/v1/jobs/<job_id>")
    async def get_job(job_id: str) -> Response:
        return jsonify(job_snapshot(visible_job(ctx, current_principal(), job_id)))

    @blueprint.delete("/v1/jobs/<job_id>")
    async def delete_job(job_id: str) -> Response:
        principal = current_principal()
        visible_job(ctx, principal, job_id)
        status = await ctx.supervisor.cancel(job_id, caused_by=principal.actor)
        return jsonify({"ok": True, "status": status})

    @blueprint.get("/v1/jobs/<job_id>/events")
    async def job_events(job_id: str) -> Response:
        visible_job(ctx, current_principal(), job_id)
        after = resume_position(ctx.log.head)
        return job_events_response(ctx.log, job_id, after, ctx.sse_keepalive_seconds)

    return blueprint


async def submit_job(
    ctx: ApiContext,
    principal: Principal,
    job_type: str,
    ttl_seconds: int | None,
    payload: object,
    *,
    sandbox: bool,
) -> SubmittedJob:
    """Submit a job for the caller, mapping refusals to API errors."""
    try:
        return await ctx.supervisor.submit(
            job_type,
            ttl_seconds,
            payload,
            workspace=principal.workspace_id,
            caused_by=principal.actor,
            sandbox=sandbox,
        )
    except InvalidJobError as exc:
        raise ApiError(400, str(exc)) from None
    except UnprocessableJobError as exc:
        raise ApiError(422, str(exc)) from None


def visible_job(
    ctx: ApiContext, principal: Principal, job_id: str, not_found: str = "job not found"
) -> JobView:
    """The job, if it exists and the caller may see it; 404 otherwise."""
    view = ctx.jobs.state.jobs.get(job_id)
    if view is None or not principal.can_see(view.workspace):
        # Another workspace's job answers exactly like an unknown one.
        raise ApiError(404, not_found)
    return view


def _limit(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    limit = parse_whole_number(raw)
    if limit is None:
        raise ApiError(400, "limit must be a whole number")
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise ApiError(400, f"limit must be between 1 and {MAX_LIST_LIMIT}")
    return limit
