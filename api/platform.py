"""Liveness, readiness, identity, capabilities and the contract itself."""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import resources
from typing import Any, Final

import trio
from quart import Blueprint, Response, jsonify

from api.context import ApiContext
from projections.errors import ProjectionLagError
from runtime.config import VERSION

RUNTIME_PROGRAMS: Final = {
    "node": ("node",),
    "python": ("python3", "python"),
    "ollama": ("ollama",),
    "vllm": ("vllm",),
    "sglang": ("sglang",),
}
READY_CATCH_UP_SECONDS: Final = 2.0
LOCAL_DEV_OPEN: Final = (
    "local-dev mode: no operator token is configured, so the API is open to "
    "requests without credentials"
)
LOCAL_DEV_WITH_TOKEN: Final = (
    "local-dev mode: an operator token is configured, so requests without "
    "credentials are refused"
)


def create_platform_blueprint(ctx: ApiContext) -> Blueprint:
    """Routes that describe the runtime itself; all of them are open."""
    blueprint = Blueprint("platform", __name__)
    contract = resources.files("api").joinpath("openapi.yaml").read_bytes()

    @blueprint.get("/v1/health")
    async def health() -> Response:
        return jsonify(
            {
                "status": "ok",
                "runtime_id": ctx.settings.runtime_id,
                "mode": ctx.settings.mode,
                "version": VERSION,
            }
        )

    @blueprint.get("/v1/version")
    async def version() -> Response:
        return jsonify(
            {
                "name": "matrix-runtime",
                "version": VERSION,
                "commit": os.environ.get("MATRIX_RUNTIME_COMMIT", "none"),
                "build_time": os.environ.get("MATRIX_RUNTIME_BUILD_TIME", "unknown"),
                "mode": ctx.settings.mode,
            }
        )

    @blueprint.get("/v1/ready")
    async def ready() -> tuple[Response, int]:
        checks = {
            "data_dir_writable": await trio.to_thread.run_sync(
                _data_dir_writable, str(ctx.settings.data_dir)
            ),
            "log_writable": _log_writable(ctx),
            "projections_caught_up": await _caught_up(ctx),
        }
        is_ready = all(checks.values())
        body = {"ready": is_ready, "checks": checks, "warnings": _warnings(ctx)}
        return jsonify(body), 200 if is_ready else 503

    @blueprint.get("/v1/capabilities")
    async def capabilities() -> Response:
        return jsonify(
            {
                "capabilities": sorted(ctx.supervisor.job_types),
                "runtimes": {
                    name: any(shutil.which(p) is not None for p in programs)
                    for name, programs in RUNTIME_PROGRAMS.items()
                },
                "isolation": ctx.isolation,
                "network": ctx.network,
                "limits": {
                    "max_ttl_seconds": ctx.settings.max_ttl_seconds,
                    "max_concurrent_jobs": ctx.settings.max_concurrent_jobs,
                },
            }
        )

    @blueprint.get("/openapi.yaml")
    async def openapi() -> Response:
        return Response(contract, mimetype="application/yaml")

    return blueprint


def _data_dir_writable(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".ready-"):
            pass
    except OSError:
        return False
    return True


def _log_writable(ctx: ApiContext) -> bool:
    if not ctx.log.is_running or ctx.log.storage.readonly:
        return False
    if ctx.log.commit_error is not None:
        return False
    usage = getattr(ctx.log.storage, "map_usage", None)
    if usage is not None:
        used, size = usage()
        # Small events may still fit into the last tenth, but a log that
        # full refuses ordinary requests: time to raise the map size.
        if used * 10 >= size * 9:
            return False
    stats = os.statvfs(ctx.settings.data_dir)
    return stats.f_bavail * stats.f_frsize > 0


async def _caught_up(ctx: ApiContext) -> bool:
    try:
        await ctx.jobs.wait_for(ctx.log.head, timeout=READY_CATCH_UP_SECONDS)
    except ProjectionLagError:
        return False
    return True


def _warnings(ctx: ApiContext) -> list[dict[str, Any]]:
    warnings = []
    if ctx.settings.mode != "local-dev" and not ctx.settings.api_token:
        warnings.append(
            {
                "code": "api_token_missing",
                "message": "no operator token is configured (MATRIX_RUNTIME_API_TOKEN)",
            }
        )
    if ctx.settings.mode == "local-dev":
        warnings.append(
            {
                "code": "local_dev_mode",
                "message": LOCAL_DEV_WITH_TOKEN
                if ctx.settings.api_token
                else LOCAL_DEV_OPEN,
            }
        )
    return warnings
