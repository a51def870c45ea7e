"""An operator can close signup; then nobody can create an account over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.server_process import running_server


def test_closed_signup_refuses_and_records_nothing(tmp_path: Path) -> None:
    """Signup answers 403 and no account appears; other auth routes still work."""
    env = {"MATRIX_RUNTIME_SIGNUP": "closed"}

    with running_server(tmp_path / "data", env) as server:
        refused = httpx.post(
            f"{server.url}/v1/auth/signup",
            json={"name": "Neo", "email": "neo@example.com", "password": "long enough"},
        )
        login = httpx.post(
            f"{server.url}/v1/auth/login",
            json={"email": "neo@example.com", "password": "long enough"},
        )

    assert (refused.status_code, refused.json()) == (
        403,
        {"error": "signup is closed on this runtime", "status": 403},
    )
    assert (login.status_code, login.json()) == (
        401,
        {"error": "invalid email or password", "status": 401},
    )
