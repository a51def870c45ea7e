"""The Quart-Trio application: blueprints, error shape, request logging."""

from __future__ import annotations

import logging
import time

from quart import Response, g, request
from quart_trio import QuartTrio

from api.context import ApiContext
from api.errors import install_error_handlers
from api.platform import create_platform_blueprint

MAX_BODY_BYTES = 1 << 20

log = logging.getLogger(__name__)


def create_app(ctx: ApiContext) -> QuartTrio:
    """Build the application around the services in ``ctx``."""
    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    install_error_handlers(app)
    app.register_blueprint(create_platform_blueprint(ctx))

    @app.before_request
    async def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    async def log_request(response: Response) -> Response:
        elapsed_ms = time.perf_counter() - getattr(g, "started", time.perf_counter())
        log.info(
            "request method=%s path=%s status=%s ms=%.1f",
            request.method,
            request.path,
            response.status_code,
            elapsed_ms * 1000,
        )
        return response

    return app
