"""Clients that hang up in the middle of a request harm nobody else."""

from __future__ import annotations

import contextlib
import socket
import struct
from urllib.parse import urlsplit

import httpx

from tests.server_process import ServerProcess

ATTEMPTS = 300
ANNOUNCED = 2_000_000
"""A body length over the 1 MiB limit, so the server answers 413 at once."""


def _cut_short(host: str, port: int, attempt: int) -> None:
    """Announce a large body, send part of it, and hang up in one of three ways."""
    with socket.create_connection((host, port), timeout=5) as conn:
        head = (
            f"POST /v1/jobs HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {ANNOUNCED}\r\n\r\n"
        ).encode()
        sent = (0, 10, 5_000, 100_000)[attempt % 4]
        try:
            conn.sendall(head + b"x" * sent)
        except OSError:
            return
        match attempt % 3:
            case 0:
                # Close with a reset instead of a FIN.
                conn.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            case 1:
                with contextlib.suppress(OSError):
                    conn.recv(16)
            case _:
                pass


def test_requests_cut_short_leave_the_server_serving(server: ServerProcess) -> None:
    """Hundreds of abandoned oversized bodies: still serving, no error logged."""
    address = urlsplit(server.url)
    assert address.hostname is not None and address.port is not None

    for attempt in range(ATTEMPTS):
        _cut_short(address.hostname, address.port, attempt)
    health = httpx.get(f"{server.url}/v1/health", timeout=10)

    assert (health.status_code, health.json()["status"]) == (200, "ok")
    assert "Traceback" not in server.log_text()
    assert " ERROR " not in server.log_text()
