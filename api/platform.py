"""Liveness, identity and the contract: the routes every client may call."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify

from api.context import ApiContext
from runtime.config import VERSION


def create_platform_blueprint(ctx: ApiContext) -> Blueprint:
    """Routes under ``/v1`` that describe the runtime itself."""
    blueprint = Blueprint("platform", __name__)

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

    return blueprint
