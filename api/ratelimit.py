"""Per-client rate limits, applied before the door.

Every request under ``/v1/`` that is not a GET or HEAD draws from the
client's general bucket; signup, login, forgot and reset also draw from a
stricter one. Login and forgot additionally draw from a bucket per email
address, so spreading attempts over many clients does not help against one
account, and nobody can flood one mailbox with reset links.

The client is the socket's peer address. Only when the peer is one of the
configured trusted proxies is ``X-Forwarded-For`` read, from the right, and
the first address that is not a trusted proxy is the client: a client can
prepend anything to that header, but cannot remove what the proxies append.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Iterable
from typing import Final

from quart import g, request
from quart_trio import QuartTrio

from api.errors import ApiError
from runtime.config import Settings
from runtime.control_chars import escape_control_characters

RATE_LIMITED: Final = "rate limit exceeded — slow down and retry"
STRICT_PATHS: Final = frozenset(
    {"/v1/auth/signup", "/v1/auth/login", "/v1/auth/forgot", "/v1/auth/reset"}
)
UNLIMITED_METHODS: Final = frozenset({"GET", "HEAD"})
MAX_KEYS: Final = 65536

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests, refilled evenly.

    Implemented as a generic cell rate algorithm: each key stores only the
    time at which its bucket will be full again, so a key costs one float.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        """A limiter allowing bursts of ``per_minute``; 0 or less allows all."""
        self.per_minute = per_minute
        self._interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self._tolerance = self._interval * (per_minute - 1)
        self._clock = clock
        self._max_keys = max_keys
        self._full_at: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        """False when the limit is 0 or less."""
        return self.per_minute > 0

    def acquire(self, key: str) -> float:
        """Take one request for ``key``.

        Returns:
            0.0 when the request is allowed, else the seconds until it would be.
        """
        if not self.enabled:
            return 0.0
        now = self._clock()
        full_at = max(self._full_at.get(key, now), now)
        wait = full_at - now - self._tolerance
        if wait > 0:
            return wait
        if key not in self._full_at and len(self._full_at) >= self._max_keys:
            self._evict(now)
        self._full_at[key] = full_at + self._interval
        return 0.0

    def check(self, key: str) -> None:
        """Like :meth:`acquire`, raising the 429 answer when refused.

        Raises:
            ApiError: 429 with a ``Retry-After`` header in whole seconds.
        """
        wait = self.acquire(key)
        if wait > 0:
            raise ApiError(
                429, RATE_LIMITED, headers={"Retry-After": str(max(1, math.ceil(wait)))}
            )

    def _evict(self, now: float) -> None:
        # Full buckets carry no information; dropping them is exact. If every
        # bucket is still draining, drop the oldest insertions to stay bounded.
        for key in [k for k, t in self._full_at.items() if t <= now]:
            del self._full_at[key]
        while len(self._full_at) >= self._max_keys:
            del self._full_at[next(iter(self._full_at))]


class RateLimits:
    """The general and the strict limiter of one application."""

    def __init__(
        self, settings: Settings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.general = RateLimiter(settings.rate_limit_rpm, clock=clock)
        self.strict = RateLimiter(settings.auth_rate_limit_rpm, clock=clock)
        self.trusted_proxies = settings.trusted_proxies

    def check_email(self, email_digest: str) -> None:
        """Draw from the strict bucket of one email address.

        Raises:
            ApiError: 429 when that address had too many attempts.
        """
        self.strict.check("email:" + email_digest)


def install_rate_limits(app: QuartTrio, limits: RateLimits) -> None:
    """Decide every request's client and refuse it when over its limits."""

    @app.before_request
    async def limit() -> None:
        client = client_address(
            request.remote_addr or "",
            request.headers.get("X-Forwarded-For", ""),
            limits.trusted_proxies,
        )
        # The address reaches log lines and login-failure events; a trusted
        # proxy may still forward whatever a client wrote in that header.
        g.client = escape_control_characters(client)
        if not request.path.startswith("/v1/") or request.method in UNLIMITED_METHODS:
            return
        limits.general.check("client:" + client)
        if request.path in STRICT_PATHS:
            limits.strict.check("client:" + client)


def current_client() -> str:
    """The client address the rate limiter decided for this request."""
    return str(getattr(g, "client", ""))


def client_address(peer: str, forwarded_for: str, trusted: Iterable[Network]) -> str:
    """The address a request is attributed to.

    Args:
        peer: The socket's peer address.
        forwarded_for: The ``X-Forwarded-For`` header, possibly empty.
        trusted: Proxies whose forwarding header is believed.
    """
    trusted = tuple(trusted)
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    # Every hop is a trusted proxy: the leftmost is the closest to the client.
    return hops[0] if hops else peer


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
        return any(ip.ipv4_mapped in n or ip in n for n in trusted)
    return any(ip in network for network in trusted)
