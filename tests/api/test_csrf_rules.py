"""The host and origin rules of the forged-request checks, without a server."""

from __future__ import annotations

import pytest

from api.csrf import host_allowed, host_origin, local_hosts, origin_of


@pytest.mark.parametrize(
    ("listen_host", "host_header", "allowed"),
    [
        ("127.0.0.1", "localhost:8080", True),
        ("127.0.0.1", "127.0.0.1:8080", True),
        ("127.0.0.1", "127.255.0.1", True),
        ("127.0.0.1", "[::1]:8080", True),
        ("devbox", "devbox:8080", True),
        ("devbox", "DEVBOX", True),
        ("::1", "[::1]", True),
        ("0.0.0.0", "0.0.0.0:8080", True),
        ("0.0.0.0", "192.168.1.20:8080", False),
        ("127.0.0.1", "devbox:8080", False),
        ("127.0.0.1", "", False),
        ("127.0.0.1", "localhost.", False),
        ("127.0.0.1", "a.localhost", False),
        ("127.0.0.1", "localhost:8080:80", False),
        ("127.0.0.1", "[::1", False),
        ("127.0.0.1", " localhost", False),
    ],
)
def test_host_allowed_in_local_dev(
    listen_host: str, host_header: str, allowed: bool
) -> None:
    """Loopback names and addresses and the configured listen host pass."""

    result = host_allowed(host_header, local_hosts(listen_host))

    assert result is allowed


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://localhost:8080", ("http", "localhost", 8080)),
        ("http://LOCALHOST", ("http", "localhost", 80)),
        ("https://runtime.example.com", ("https", "runtime.example.com", 443)),
        ("https://runtime.example.com/", ("https", "runtime.example.com", 443)),
        ("http://[::1]:9", ("http", "::1", 9)),
        ("null", None),
        ("", None),
        ("file://", None),
        ("ftp://localhost", None),
        ("http://localhost:99999", None),
        ("http://a@localhost", None),
    ],
)
def test_origin_of_parses_origins_and_base_urls(
    url: str, origin: tuple[str, str, int] | None
) -> None:
    """Scheme, host and port with default ports filled in; None without one."""

    assert origin_of(url) == origin


@pytest.mark.parametrize(
    ("scheme", "host_header", "origin"),
    [
        ("http", "127.0.0.1:8080", ("http", "127.0.0.1", 8080)),
        ("http", "Example.com", ("http", "example.com", 80)),
        ("https", "example.com", ("https", "example.com", 443)),
        ("http", "[::1]:8080", ("http", "::1", 8080)),
        ("http", "", None),
        ("ws", "example.com", None),
    ],
)
def test_host_origin_is_where_the_request_was_sent(
    scheme: str, host_header: str, origin: tuple[str, str, int] | None
) -> None:
    """The request's own origin comes from its scheme and Host header."""

    assert host_origin(scheme, host_header) == origin
