"""The door: decides who the caller is before any handler runs.

A bearer token is the operator token (compared in constant time) or the
token of a live session (looked up by its SHA-256 in the accounts read
model). A token that is neither is refused on every route that needs
credentials, even in local-dev: a client whose session expired must learn
so, not be served as the local caller. On an open route such a token is
treated as no credentials at all.

Open routes (health, ready, version, capabilities, everything under
``/v1/auth/``, and anything outside ``/v1/``) pass without credentials; their
handlers check what they need. Every other route needs credentials, except
in local-dev mode with no operator token configured, where a request without
any is the local caller.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Final

from quart import g, request
from quart_trio import QuartTrio

from api.context import ApiContext
from api.errors import ApiError
from api.principal import ANONYMOUS, LOCAL, Principal, current_principal
from runtime.tokens import token_hash

OPEN_PATHS: Final = frozenset(
    {
        "/v1/health",
        "/v1/ready",
        "/v1/version",
        "/v1/capabilities",
    }
)
OPEN_PREFIXES: Final = ("/v1/auth/",)
OPERATOR: Final = Principal(kind="operator")
INVALID_TOKEN: Final = "missing or invalid bearer token"
NOT_AUTHENTICATED: Final = "not authenticated"


def install_door(app: QuartTrio, ctx: ApiContext) -> None:
    """Attach the principal of every request to ``g.principal`` or refuse it."""

    @app.before_request
    async def admit() -> None:
        g.principal = identify(
            ctx,
            request.path,
            request.headers.get("Authorization"),
            peer_is_loopback(request.scope.get("client")),
        )


def identify(
    ctx: ApiContext, path: str, authorization: str | None, from_loopback: bool
) -> Principal:
    """Decide who is calling ``path`` with the given Authorization header.

    The local caller of local-dev is admitted only over a loopback
    connection: a server bound to a network address still serves strangers
    nothing without credentials, whatever ``Host`` header they send.

    Raises:
        ApiError: 401 when the route needs credentials that were not given
            or are not valid.
    """
    open_route = is_open(path)
    if authorization is not None and authorization.strip():
        token = bearer_token(authorization)
        principal = None if token is None else _resolve(ctx, token)
        if principal is not None:
            return principal
        if open_route:
            return ANONYMOUS
        raise ApiError(401, INVALID_TOKEN)
    local = from_loopback and _open_mode(ctx)
    if open_route:
        return LOCAL if local else ANONYMOUS
    if local:
        return LOCAL
    raise ApiError(401, "authentication required")


def is_open(path: str) -> bool:
    """Whether ``path`` passes the door without credentials."""
    return (
        path in OPEN_PATHS
        or path.startswith(OPEN_PREFIXES)
        or not path.startswith("/v1/")
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if well formed."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_user(role: str | None = None) -> Principal:
    """The current caller if it is a signed-in user (with ``role``, if given).

    For what a workspace owns and only its members may change (join tokens,
    provider credentials): the operator and the local caller are members of
    no user's workspace, so they are refused like anonymous callers.

    Raises:
        ApiError: 401 without a session; 403 when the user lacks ``role``.
    """
    principal = current_principal()
    if principal.kind != "user":
        raise ApiError(401, NOT_AUTHENTICATED)
    if role is not None and principal.role != role:
        raise ApiError(403, f"only a workspace {role} can do this")
    return principal


def _resolve(ctx: ApiContext, token: str) -> Principal | None:
    operator_token = ctx.settings.api_token
    if operator_token and _same(token, operator_token):
        return OPERATOR
    session_hash = token_hash(token)
    user = ctx.accounts.state.live_session(session_hash, ctx.accounts.clock())
    if user is None:
        return None
    return Principal(
        kind="user",
        workspace_id=user.workspace_id,
        user_id=user.id,
        role=user.role,
        session_id=session_hash,
    )


def peer_is_loopback(client: object) -> bool:
    """Whether the ASGI ``client`` (host, port) is on the loopback interface."""
    if not isinstance(client, (tuple, list)) or not client:
        return False
    return is_loopback_address(str(client[0]))


def is_loopback_address(text: str) -> bool:
    """Whether ``text`` is an IP address on the loopback interface."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _open_mode(ctx: ApiContext) -> bool:
    return ctx.settings.mode == "local-dev" and not ctx.settings.api_token


def _same(given: str, expected: str) -> bool:
    # compare_digest on bytes: a str with non-ASCII characters would raise
    # TypeError there, which must be a 401, never a 500. surrogatepass keeps
    # a lone surrogate from raising during the encoding itself.
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"),
        expected.encode("utf-8", "surrogatepass"),
    )
