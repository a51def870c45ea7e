"""A restart keeps every account and session; the log never shows a password hash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.api.auth_support import PASSWORD, auth_server, bearer, error, login, signup
from tests.server_process import BIN_DIR


def test_auth_restart_keeps_accounts_and_sessions(tmp_path: Path) -> None:
    """Sessions open before a restart work after it; closed ones stay closed."""
    data_dir = tmp_path / "data"
    with (
        auth_server(data_dir) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        created = signup(http, "link@example.com", name="Link").json()
        kept = login(http, "link@example.com").json()["token"]
        closed = login(http, "link@example.com").json()["token"]
        http.post("/v1/auth/logout", headers=bearer(closed))
        exit_code = server.stop()

    with (
        auth_server(data_dir) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        first = http.get("/v1/auth/me", headers=bearer(created["token"]))
        second = http.get("/v1/auth/me", headers=bearer(kept))
        gone = http.get("/v1/auth/me", headers=bearer(closed))
        again = signup(http, "LINK@example.com", name="Link")
        fresh = login(http, "link@example.com", PASSWORD)

    assert exit_code == 0
    assert first.json() == second.json() == {"user": created["user"]}
    assert (gone.status_code, gone.json()) == (401, error(401, "not authenticated"))
    assert again.status_code == 409
    assert fresh.json()["user"] == created["user"]


def test_auth_events_cli_redacts_password_hashes(tmp_path: Path) -> None:
    """The events command prints account events without any password hash."""
    data_dir = tmp_path / "data"
    with (
        auth_server(data_dir) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        token = signup(http, "zee@example.com", name="Zee").json()["token"]

        printed = subprocess.run(
            [str(BIN_DIR / "matrix-runtime"), "events", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert printed.returncode == 0
    assert '"type":"user.signed_up"' in printed.stdout
    assert '"password_hash":"[redacted]"' in printed.stdout
    assert "$argon2id$" not in printed.stdout
    assert token not in printed.stdout
