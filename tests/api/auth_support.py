"""Running the real server for the account tests, with mail to a local sink."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.accounts.smtp_sink import SmtpSink
from tests.server_process import ServerProcess, running_server

PASSWORD = "correct horse"
NEW_PASSWORD = "battery staple"
PUBLIC_URL = "http://console.test"
JSON = {"Content-Type": "application/json"}
"""The header every request with a JSON body needs."""

FAST_ENV = {
    "MATRIX_RUNTIME_ARGON2_TIME_COST": "1",
    "MATRIX_RUNTIME_ARGON2_MEMORY_KIB": "8192",
    "MATRIX_RUNTIME_ARGON2_PARALLELISM": "1",
    "MATRIX_RUNTIME_RATE_LIMIT_RPM": "10000",
    "MATRIX_RUNTIME_AUTH_RATE_LIMIT_RPM": "10000",
    "MATRIX_RUNTIME_PUBLIC_URL": PUBLIC_URL,
    "MATRIX_RUNTIME_MAIL_RETRY_SECONDS": "0.05",
}


def smtp_env(sink: SmtpSink) -> dict[str, str]:
    """Settings that send the server's mail to ``sink``."""
    return {
        "MATRIX_RUNTIME_SMTP_HOST": "127.0.0.1",
        "MATRIX_RUNTIME_SMTP_PORT": str(sink.port),
        "MATRIX_RUNTIME_SMTP_SECURITY": "none",
        "MATRIX_RUNTIME_SMTP_FROM": "Matrix Runtime <noreply@example.com>",
    }


@contextmanager
def auth_server(
    data_dir: Path, sink: SmtpSink | None = None, env: Mapping[str, str] | None = None
) -> Iterator[ServerProcess]:
    """A server with fast hashing, generous limits and mail to ``sink``."""
    merged = {**FAST_ENV, **(smtp_env(sink) if sink else {}), **(env or {})}
    with running_server(data_dir, merged) as server:
        yield server


def signup(
    client: httpx.Client, email: str, name: str = "Neo", password: str = PASSWORD
) -> httpx.Response:
    """POST /v1/auth/signup."""
    return client.post(
        "/v1/auth/signup", json={"name": name, "email": email, "password": password}
    )


def login(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    """POST /v1/auth/login."""
    return client.post("/v1/auth/login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def error(status: int, message: str) -> dict[str, object]:
    """The JSON body of every error."""
    return {"error": message, "status": status}
