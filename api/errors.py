"""One error shape for every failure: ``{"error": str, "status": int}``."""

from __future__ import annotations

import logging
from typing import Final

from quart import Response, jsonify
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from eventlog import CorruptLogError, EventLogError, StorageFullError

log = logging.getLogger(__name__)

_MESSAGES = {
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
}


class ApiError(Exception):
    """An expected failure that becomes a JSON error response."""

    def __init__(
        self, status: int, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


MAX_MESSAGE_CHARS: Final = 500
"""Longest error text sent; longer ones end in :data:`TRUNCATED`."""
TRUNCATED: Final = "… (truncated)"


def error_response(status: int, message: str) -> Response:
    """Build the JSON error response every endpoint uses.

    Messages quote what the client sent (a job type, a program name), and a
    client can send a megabyte of it: the answer never echoes more than
    :data:`MAX_MESSAGE_CHARS` characters back.
    """
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - len(TRUNCATED)] + TRUNCATED
    response = jsonify({"error": message, "status": status})
    response.status_code = status
    return response


def install_error_handlers(app: QuartTrio) -> None:
    """Make every error, including unknown routes and crashes, JSON."""

    @app.errorhandler(ApiError)
    async def on_api_error(error: ApiError) -> Response:
        response = error_response(error.status, error.message)
        response.headers.update(error.headers)
        return response

    @app.errorhandler(HTTPException)
    async def on_http_exception(error: HTTPException) -> Response:
        status = error.code or 500
        response = error_response(status, _MESSAGES.get(status, error.name.lower()))
        allowed = getattr(error, "valid_methods", None)
        if status == 405 and allowed:
            response.headers["Allow"] = ", ".join(sorted(allowed))
        return response

    @app.errorhandler(EventLogError)
    async def on_log_error(error: EventLogError) -> Response:
        # The detail names the server's files: it goes to the operator's
        # log, and the client learns only what kind of failure it met.
        log.error("request failed: the event log refused it: %s", error)
        if isinstance(error, StorageFullError):
            return error_response(507, "the event log is full; nothing was recorded")
        if isinstance(error, CorruptLogError):
            return error_response(503, "the event log is damaged; nothing was recorded")
        return error_response(503, "the event log is unavailable; nothing was recorded")

    @app.errorhandler(Exception)
    async def on_unexpected(error: Exception) -> Response:
        log.exception("request failed", exc_info=error)
        return error_response(500, "internal error")
