"""Refusing requests that a web page in the caller's browser could forge.

A page on any site can make the browser POST to ``http://localhost:8080``
without asking the server first, as long as the body is ``text/plain``,
``application/x-www-form-urlencoded`` or ``multipart/form-data``. A page can
also rebind its own DNS name to 127.0.0.1, after which the browser treats
the local runtime as that page's own origin. Three checks, run before the
door, close both ways in:

1. A request under ``/v1/`` that carries a body must declare it as
   ``application/json``: no form a page can send without a CORS preflight
   has that type, and the runtime answers no preflight.
2. A mutating request with an ``Origin`` header must come from the
   runtime's own origin (the request's scheme, host and port, or the
   configured public URL). Browsers send ``Origin`` on every cross-site
   POST, so a forged one is refused even if its body passed check 1.
3. In local-dev mode the ``Host`` header must name the loopback interface
   (``localhost``, a loopback address, or the configured listen host).
   After a DNS rebinding the browser still sends the attacker's name there.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import urlsplit

from quart import request
from quart_trio import QuartTrio

from api.errors import ApiError
from runtime.config import Settings

JSON_ONLY: Final = "Content-Type must be application/json"
JSON_UTF8_ONLY: Final = "a JSON body must be UTF-8; send charset=utf-8 or none"
CROSS_ORIGIN: Final = "cross-origin request refused"
HOST_NOT_ALLOWED: Final = "host not allowed"
MUTATING_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
LOOPBACK_NAMES: Final = frozenset({"localhost"})

Origin = tuple[str, str, int]
"""Scheme, lower-case host name (IPv6 without brackets), port."""

_HOST_HEADER: Final = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::(?P<port>\d{1,5}))?"
)


def install_csrf_checks(app: QuartTrio, settings: Settings) -> None:
    """Refuse forged requests before the door sees them."""
    allowed_hosts = local_hosts(settings.host) if settings.mode == "local-dev" else None
    public_origin = origin_of(settings.public_url) if settings.public_url else None

    @app.before_request
    async def refuse_forged() -> None:
        host = request.headers.get("Host", "")
        if allowed_hosts is not None and not host_allowed(host, allowed_hosts):
            raise ApiError(403, HOST_NOT_ALLOWED)
        if request.method not in MUTATING_METHODS:
            return
        origin = request.headers.get("Origin")
        if origin is not None:
            own = host_origin(request.scheme, host)
            given = origin_of(origin)
            if given is None or given not in (own, public_origin):
                raise ApiError(403, CROSS_ORIGIN)
        json_route = request.path.startswith("/v1/")
        if json_route and has_body():
            if request.mimetype != "application/json":
                raise ApiError(415, JSON_ONLY)
            # JSON is UTF-8 (RFC 8259); a body declared as anything else
            # would be read as UTF-8 regardless, and mean something else.
            charset = request.mimetype_params.get("charset", "utf-8")
            if charset.lower() not in ("utf-8", "utf8"):
                raise ApiError(415, JSON_UTF8_ONLY)


def local_hosts(listen_host: str) -> frozenset[str]:
    """The host names a local-dev server answers to besides loopback addresses."""
    return LOOPBACK_NAMES | {listen_host.strip("[]").lower()}


def host_allowed(host_header: str, extra_names: frozenset[str]) -> bool:
    """Whether ``host_header`` names the loopback interface or one of ``extra_names``.

    Any loopback address counts (127.0.0.0/8 and ::1); anything that is not
    a plain host with an optional port is refused.
    """
    parsed = _split_host(host_header)
    if parsed is None:
        return False
    name = parsed[0]
    if name in extra_names:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_origin(scheme: str, host_header: str) -> Origin | None:
    """The origin a request with this scheme and ``Host`` header was sent to."""
    parsed = _split_host(host_header)
    if parsed is None or scheme not in DEFAULT_PORTS:
        return None
    name, port = parsed
    return scheme, name, DEFAULT_PORTS[scheme] if port is None else port


def origin_of(url: str) -> Origin | None:
    """The origin of an ``Origin`` header or a base URL; None if it has none.

    ``null`` (what a sandboxed frame or a file page sends), other schemes,
    user names and malformed ports have no origin here and so match nothing.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    return (
        parts.scheme,
        parts.hostname,
        DEFAULT_PORTS[parts.scheme] if port is None else port,
    )


def has_body() -> bool:
    """Whether the current request announces a body."""
    # A body is announced by a non-zero length or by chunked transfer; a
    # POST without one (logout) has nothing a content type could describe.
    if request.headers.get("Transfer-Encoding"):
        return True
    length = request.headers.get("Content-Length", "").strip()
    return bool(length) and length.strip("0") != ""


# -- private helpers ----------------------------------------------------------


def _split_host(host_header: str) -> tuple[str, int | None] | None:
    match = _HOST_HEADER.fullmatch(host_header)
    if match is None:
        return None
    port = None if match["port"] is None else int(match["port"])
    if port is not None and port > 65535:
        return None
    name = match["ipv6"] or match["name"]
    return name.lower(), port
