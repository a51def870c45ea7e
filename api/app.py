"""The Quart-Trio application: blueprints, error shape, request logging."""

from __future__ import annotations

import logging
import time

from quart import Response, g, request
from quart_trio import QuartTrio

from api.auth import create_auth_blueprint
from api.context import ApiContext
from api.door import install_door
from api.errors import install_error_handlers
from api.jobs import create_jobs_blueprint
from api.platform import create_platform_blueprint
from api.ratelimit import RateLimits, install_rate_limits
from api.sandboxes import create_sandboxes_blueprint

MAX_BODY_BYTES = 1 << 20

log = logging.getLogger(__name__)


def create_app(ctx: ApiContext) -> QuartTrio:
    """Build the application around the services in ``ctx``."""
    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    install_error_handlers(app)

    # Registered first so the time of refused requests is measured too.
    @app.before_request
    async def start_timer() -> None:
        g.started = time.perf_counter()

    # The limiter runs before the door, so refused and unauthenticated
    # requests count against their client too.
    limits = RateLimits(ctx.settings)
    install_rate_limits(app, limits)
    install_door(app, ctx)
    app.register_blueprint(create_platform_blueprint(ctx))
    app.register_blueprint(create_auth_blueprint(ctx, limits))
    app.register_blueprint(create_jobs_blueprint(ctx))
    app.register_blueprint(create_sandboxes_blueprint(ctx))

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
