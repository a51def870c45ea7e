"""Rate limits over HTTP: per client, stricter for auth, per email address."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.auth_support import auth_server, error

LIMITED = error(429, "rate limit exceeded — slow down and retry")


@pytest.fixture
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data_dir = tmp_path_factory.mktemp("ratelimit") / "data"
    env = {
        "MATRIX_RUNTIME_RATE_LIMIT_RPM": "6",
        "MATRIX_RUNTIME_AUTH_RATE_LIMIT_RPM": "3",
        "MATRIX_RUNTIME_TRUSTED_PROXIES": "127.0.0.1",
    }
    with (
        auth_server(data_dir, env=env) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        yield http


def _login(client: httpx.Client, email: str, via: str) -> httpx.Response:
    return client.post(
        "/v1/auth/login",
        json={"email": email, "password": "whatever1"},
        headers={"X-Forwarded-For": via},
    )


def test_rate_limit_auth_routes_are_stricter(client: httpx.Client) -> None:
    """Three logins a minute per client, then 429 with Retry-After."""

    allowed = [
        _login(client, f"u{i}@x.io", "198.51.100.1").status_code for i in range(3)
    ]
    refused = _login(client, "u9@x.io", "198.51.100.1")
    other_client = _login(client, "u8@x.io", "198.51.100.2")

    assert allowed == [401, 401, 401]
    assert (refused.status_code, refused.json()) == (429, LIMITED)
    assert refused.headers["Retry-After"] == "20"
    assert other_client.status_code == 401


def test_rate_limit_per_email_across_clients(client: httpx.Client) -> None:
    """Logins for one address are limited however many clients send them."""

    allowed = [
        _login(client, "neo@x.io", f"198.51.100.{i}").status_code for i in range(3)
    ]
    refused = _login(client, "NEO@x.io", "198.51.100.77")

    assert allowed == [401, 401, 401]
    assert (refused.status_code, refused.json()) == (429, LIMITED)


def test_rate_limit_counts_mutating_requests_only(client: httpx.Client) -> None:
    """Six POSTs a minute per client, including refused ones; GETs are free."""
    headers = {"X-Forwarded-For": "203.0.113.5"}

    gets = {client.get("/v1/health", headers=headers).status_code for _ in range(20)}
    posts = [
        client.post("/v1/auth/logout", headers=headers).status_code for _ in range(7)
    ]

    assert gets == {200}
    assert posts == [200] * 6 + [429]
