"""Races over HTTP: duplicate signups and one reset link used twice at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.accounts.smtp_sink import SmtpSink, smtp_sink
from tests.api.auth_support import NEW_PASSWORD, PASSWORD, auth_server, error
from tests.server_process import ServerProcess


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as running:
        yield running


@pytest.fixture(scope="module")
def server(
    sink: SmtpSink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("auth-race") / "data"
    with auth_server(data_dir, sink) as running:
        yield running


async def test_auth_concurrent_signups_create_one_account(
    server: ServerProcess,
) -> None:
    """Twenty signups for one address at once: one 201, nineteen 409."""
    responses: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:

        async def attempt(i: int) -> None:
            email = "oracle@example.com" if i % 2 else "ORACLE@example.com"
            body = {"name": f"Oracle {i}", "email": email, "password": PASSWORD}
            responses.append(await client.post("/v1/auth/signup", json=body))

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(attempt, i)
        login = await client.post(
            "/v1/auth/login", json={"email": "oracle@example.com", "password": PASSWORD}
        )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19
    conflicts = [r.json() for r in responses if r.status_code == 409]
    assert conflicts == [error(409, "an account with this email already exists")] * 19
    winner = next(r.json() for r in responses if r.status_code == 201)
    assert login.json()["user"] == winner["user"]


async def test_auth_concurrent_resets_with_one_link_succeed_once(
    server: ServerProcess, sink: SmtpSink
) -> None:
    """Two resets with the same link at once: one 200, one 400."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        body = {"name": "Niobe", "email": "niobe@example.com", "password": PASSWORD}
        assert (await client.post("/v1/auth/signup", json=body)).status_code == 201
        await client.post("/v1/auth/forgot", json={"email": "niobe@example.com"})
        mail = await sink.receive(
            "niobe@example.com", "Reset your Matrix Runtime password"
        )
        responses: list[httpx.Response] = []

        async def reset(password: str) -> None:
            body = {"token": mail.token(), "password": password}
            responses.append(await client.post("/v1/auth/reset", json=body))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reset, NEW_PASSWORD)
            nursery.start_soon(reset, "a third password")
        logins = [
            (
                await client.post(
                    "/v1/auth/login", json={"email": "niobe@example.com", "password": p}
                )
            ).status_code
            for p in (PASSWORD, NEW_PASSWORD, "a third password")
        ]

    assert sorted(
        (r.status_code, r.json()["ok"] if r.status_code == 200 else r.json()["error"])
        for r in responses
    ) == [
        (200, True),
        (400, "this reset link has already been used"),
    ]
    assert sorted(logins) == [200, 401, 401]
