"""The token-bucket limiter and how the client address is decided."""

from __future__ import annotations

import ipaddress

import pytest

from api.errors import ApiError
from api.ratelimit import RateLimiter, client_address


class FakeClock:
    """Monotonic seconds moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_allows_a_burst_then_refills_evenly() -> None:
    """Exactly ``per_minute`` at once, then one more every 60/limit seconds."""
    clock = FakeClock()
    limiter = RateLimiter(6, clock=clock)

    burst = [limiter.acquire("a") for _ in range(6)]
    refused = limiter.acquire("a")
    clock.now += 10
    refilled = limiter.acquire("a")
    again = limiter.acquire("a")

    assert burst == [0.0] * 6
    assert refused == pytest.approx(10.0)
    assert refilled == 0.0
    assert again == pytest.approx(10.0)


def test_rate_limiter_keeps_clients_apart() -> None:
    """One client's exhausted bucket does not affect another's."""
    limiter = RateLimiter(1, clock=FakeClock())

    first = limiter.acquire("a")
    second = limiter.acquire("a")
    other = limiter.acquire("b")

    assert (first, other) == (0.0, 0.0)
    assert second == pytest.approx(60.0)


def test_rate_limiter_check_answers_429_with_retry_after() -> None:
    """A refusal is the 429 error with whole seconds to wait, rounded up."""
    clock = FakeClock()
    limiter = RateLimiter(2, clock=clock)
    limiter.check("a")
    limiter.check("a")
    clock.now += 0.5

    with pytest.raises(ApiError) as caught:
        limiter.check("a")

    error = caught.value
    assert (error.status, error.message) == (
        429,
        "rate limit exceeded — slow down and retry",
    )
    assert error.headers == {"Retry-After": "30"}


def test_rate_limiter_zero_turns_it_off() -> None:
    """A limit of 0 allows everything."""
    limiter = RateLimiter(0, clock=FakeClock())

    results = {limiter.acquire("a") for _ in range(1000)}

    assert results == {0.0}
    assert limiter.enabled is False


def test_rate_limiter_stays_bounded_in_keys() -> None:
    """Past ``max_keys`` full buckets are forgotten, then the oldest."""
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, max_keys=3)

    for key in "abcdef":
        limiter.acquire(key)

    assert len(limiter._full_at) == 3


TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("203.0.113.9", "1.2.3.4", (), "203.0.113.9"),
        ("203.0.113.9", "1.2.3.4", TRUSTED, "203.0.113.9"),
        ("10.0.0.2", "", TRUSTED, "10.0.0.2"),
        ("10.0.0.2", "1.2.3.4", TRUSTED, "1.2.3.4"),
        ("10.0.0.2", "6.6.6.6, 1.2.3.4, 10.0.0.5", TRUSTED, "1.2.3.4"),
        ("10.0.0.2", "10.0.0.7, 10.0.0.5", TRUSTED, "10.0.0.7"),
        ("::ffff:10.0.0.2", "1.2.3.4", TRUSTED, "1.2.3.4"),
        ("::1", "garbage, 10.0.0.5", TRUSTED, "garbage"),
    ],
)
def test_client_address_reads_forwarding_only_from_trusted_proxies(
    peer: str, forwarded: str, trusted: tuple[ipaddress.IPv4Network, ...], client: str
) -> None:
    """The rightmost hop that is not a trusted proxy is the client."""

    assert client_address(peer, forwarded, trusted) == client
