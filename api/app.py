"""The Quart-Trio application: blueprints, error shape, request logging."""

from __future__ import annotations

import logging
import time

import trio
from quart import Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import RequestEntityTooLarge

from api.auth import create_auth_blueprint
from api.context import ApiContext
from api.csrf import has_body, install_csrf_checks
from api.door import install_door
from api.errors import ApiError, install_error_handlers
from api.jobs import create_jobs_blueprint
from api.platform import create_platform_blueprint
from api.ratelimit import RateLimits, install_rate_limits
from api.sandboxes import create_sandboxes_blueprint
from runtime.control_chars import escape_control_characters

MAX_BODY_BYTES = 1 << 20
DRAIN_SECONDS = 5.0

log = logging.getLogger(__name__)


def create_app(ctx: ApiContext) -> QuartTrio:
    """Build the application around the services in ``ctx``."""
    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # No CORS is offered, so OPTIONS is not answered with an empty 200 that
    # looks like a successful preflight: it is a JSON 405 like any other
    # method a route does not take. Read when routes are registered below.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    # Werkzeug would answer ``/v1//jobs`` with an HTML redirect; an API
    # answers every path it does not serve with its JSON 404.
    app.url_map.merge_slashes = False
    install_error_handlers(app)

    # Registered first so the time of refused requests is measured too.
    @app.before_request
    async def start_timer() -> None:
        g.started = time.perf_counter()

    @app.before_request
    async def refuse_repeated_parameters() -> None:
        # Which of two values a handler would read is an accident of the
        # framework; a client that sent both must not get either silently.
        for name in request.args:
            if len(request.args.getlist(name)) > 1:
                raise ApiError(400, f"query parameter {name!r} is given more than once")

    # The limiter runs before the door, so refused and unauthenticated
    # requests count against their client too; so do forged ones, which are
    # refused before the door can admit them as the local caller.
    limits = RateLimits(ctx.settings)
    install_rate_limits(app, limits)
    install_csrf_checks(app, ctx.settings)
    install_door(app, ctx)
    app.register_blueprint(create_platform_blueprint(ctx))
    app.register_blueprint(create_auth_blueprint(ctx, limits))
    app.register_blueprint(create_jobs_blueprint(ctx))
    app.register_blueprint(create_sandboxes_blueprint(ctx))

    @app.after_request
    async def finish_reading_body(response: Response) -> Response:
        await _drain_body(response)
        return response

    @app.after_request
    async def log_request(response: Response) -> Response:
        elapsed_ms = time.perf_counter() - getattr(g, "started", time.perf_counter())
        # The path arrives percent-decoded: a client can put CR, LF or NUL in
        # it, which must not start a forged line of its own in the log.
        log.info(
            "request method=%s path=%s status=%s ms=%.1f",
            request.method,
            escape_control_characters(request.path),
            response.status_code,
            elapsed_ms * 1000,
        )
        return response

    return app


async def _drain_body(response: Response) -> None:
    """Receive what is left of a request body that no handler read.

    A request refused before its body was read (by the limiter, the forged
    request checks or the door) would otherwise be answered while the body
    is still arriving, and Hypercorn can then leave the kept-alive
    connection stalled: the client's next request on it gets no answer. A
    body that does not arrive in time, or is too large to read, closes the
    connection instead.
    """
    if not has_body():
        return
    with trio.move_on_after(DRAIN_SECONDS):
        try:
            await request.get_data(cache=False)
        except RequestEntityTooLarge:
            pass
        else:
            return
    response.headers["Connection"] = "close"
