"""The account flow against the real server, with mail received over SMTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.accounts.smtp_sink import SmtpSink, smtp_sink
from tests.api.auth_support import (
    JSON,
    NEW_PASSWORD,
    PUBLIC_URL,
    auth_server,
    bearer,
    error,
    login,
    signup,
)

FORGOT_BODY = {
    "ok": True,
    "message": "If an account exists for that email, a reset link is on its way.",
}
WELCOME = "Welcome to Matrix Runtime"
RESET = "Reset your Matrix Runtime password"


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as running:
        yield running


@pytest.fixture(scope="module")
def client(
    sink: SmtpSink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    data_dir: Path = tmp_path_factory.mktemp("auth-flow") / "data"
    with (
        auth_server(data_dir, sink) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        yield http


def test_auth_whole_flow(client: httpx.Client, sink: SmtpSink) -> None:
    """Signup, verify, me, logout, login, forgot, reset, and the old ways close."""
    created = signup(client, " Trinity@Example.com ", name="Trinity")
    assert created.status_code == 201
    token = created.json()["token"]
    user = created.json()["user"]
    assert set(created.json()) == {"token", "user"}
    assert {k: v for k, v in user.items() if k not in ("id", "workspace_id")} == {
        "name": "Trinity",
        "email": "trinity@example.com",
        "role": "Owner",
        "workspace": "Trinity's workspace",
        "workspace_slug": "trinity-s-workspace",
        "verified": False,
    }

    welcome = sink.wait(lambda m: m.message["Subject"] == WELCOME, 15)
    assert welcome.recipients == ["Trinity@Example.com"]
    assert f"{PUBLIC_URL}/verify?token=" in welcome.text
    verified = client.post("/v1/auth/verify", json={"token": welcome.token()})
    me = client.get("/v1/auth/me", headers=bearer(token))
    assert verified.json() == {"ok": True, "message": "Email verified."}
    assert me.json() == {"user": {**user, "verified": True}}

    logged_out = client.post("/v1/auth/logout", headers=bearer(token))
    after_logout = client.get("/v1/auth/me", headers=bearer(token))
    wrong = login(client, "trinity@example.com", "not the password")
    right = login(client, "TRINITY@example.com")
    assert logged_out.json() == {"ok": True}
    assert after_logout.status_code == 401
    assert after_logout.json() == error(401, "not authenticated")
    assert wrong.status_code == 401
    assert wrong.json() == error(401, "invalid email or password")
    assert right.status_code == 200
    session = right.json()["token"]

    forgot = client.post("/v1/auth/forgot", json={"email": "trinity@EXAMPLE.com"})
    assert forgot.json() == FORGOT_BODY
    mail = sink.wait(lambda m: m.message["Subject"] == RESET, 15)
    assert f"{PUBLIC_URL}/reset?token=" in mail.text
    reset = client.post(
        "/v1/auth/reset", json={"token": mail.token(), "password": NEW_PASSWORD}
    )
    reused = client.post(
        "/v1/auth/reset", json={"token": mail.token(), "password": NEW_PASSWORD}
    )
    assert reset.json() == {
        "ok": True,
        "message": "Your password has been updated. Please sign in.",
    }
    assert reused.status_code == 400
    assert reused.json() == error(400, "this reset link has already been used")
    assert client.get("/v1/auth/me", headers=bearer(session)).status_code == 401
    assert login(client, "trinity@example.com").status_code == 401
    assert login(client, "trinity@example.com", NEW_PASSWORD).status_code == 200


def test_auth_forgot_answers_alike_for_unknown_addresses(
    client: httpx.Client, sink: SmtpSink
) -> None:
    """No account, or a failing mail server: the same 200, the same body."""
    signup(client, "morpheus@example.com", name="Morpheus")
    sink.wait(lambda m: "morpheus@example.com" in m.recipients, 15)
    sink.refusals = ["550 5.1.1 mailbox unavailable"]

    failing = client.post("/v1/auth/forgot", json={"email": "morpheus@example.com"})
    unknown = client.post("/v1/auth/forgot", json={"email": "ghost@example.com"})
    known = client.post("/v1/auth/forgot", json={"email": "morpheus@example.com"})

    assert [r.status_code for r in (failing, unknown, known)] == [200, 200, 200]
    assert failing.json() == unknown.json() == known.json() == FORGOT_BODY
    sink.wait(
        lambda m: (
            "morpheus@example.com" in m.recipients and m.message["Subject"] == RESET
        ),
        15,
    )
    assert sink.count("ghost@example.com") == 0


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/auth/signup", b"{", 400, "invalid JSON body: Input data was truncated"),
        (
            "/v1/auth/signup",
            b'{"name": "A", "email": "nope", "password": "long enough"}',
            400,
            "enter a valid email address",
        ),
        (
            "/v1/auth/signup",
            b'{"name": "A", "email": "a@b.co", "password": "1234567"}',
            400,
            "password must be at least 8 characters",
        ),
        (
            "/v1/auth/signup",
            b'{"name": "A", "email": "a@b.co", "password": "' + b"x" * 1025 + b'"}',
            400,
            "password must be at most 1024 characters",
        ),
        (
            "/v1/auth/signup",
            b'{"name": " ", "email": "a@b.co", "password": "long enough"}',
            400,
            "name is required",
        ),
        (
            "/v1/auth/signup",
            b'{"name": "Neo\\r\\nBcc: x@y.z", "email": "a@b.co", '
            b'"password": "long enough"}',
            400,
            "name must not contain control characters",
        ),
        (
            "/v1/auth/signup",
            b'{"name": "N\\u0000eo", "email": "a@b.co", "password": "long enough"}',
            400,
            "name must not contain control characters",
        ),
        (
            "/v1/auth/signup",
            b'{"name": "\\u200b\\u2060", "email": "a@b.co", "password": "long enough"}',
            400,
            "name is required",
        ),
        (
            "/v1/auth/signup",
            b'{"name": "Neo\\u202egnp.exe", "email": "a@b.co", '
            b'"password": "long enough"}',
            400,
            "name must not contain bidirectional controls",
        ),
        (
            "/v1/auth/signup",
            b'{"name": "Neo", "email": "a@b.co", "password": "long enough", '
            b'"workspace": "Lab\\u2066"}',
            400,
            "workspace must not contain bidirectional controls",
        ),
        (
            "/v1/auth/signup",
            b'{"name": "Neo", "email": "z\\u200b@b.co", "password": "long enough"}',
            400,
            "enter a valid email address",
        ),
        (
            "/v1/auth/signup",
            b'{"name": "Neo", "email": "a\\u202e@b.co", "password": "long enough"}',
            400,
            "enter a valid email address",
        ),
        (
            "/v1/auth/signup",
            b'{"name": "N\\u200beo", "email": "a@b.co", "password": "long enough"}',
            400,
            "name must not contain invisible characters",
        ),
        (
            "/v1/auth/signup",
            b'{"name": "Neo", "email": "a@b.co", "password": "long enough", '
            b'"workspace": "La\\ufeffb"}',
            400,
            "workspace must not contain invisible characters",
        ),
        (
            "/v1/auth/signup",
            b'{"name": "Neo", "email": "a@b.co", "password": "long enough", '
            b'"workspace": "Lab\\u001b[31m"}',
            400,
            "workspace must not contain control characters",
        ),
        (
            "/v1/auth/signup",
            b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            400,
            "invalid JSON body: Expected `str`, got `array` - at `$.name`",
        ),
        (
            "/v1/auth/signup",
            b'{"unknown": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            400,
            "invalid JSON body: nested too deeply",
        ),
        (
            "/v1/auth/login",
            b'{"unknown": ' + b'{"a": ' * 2000 + b"1" + b"}" * 2000 + b"}",
            400,
            "invalid JSON body: nested too deeply",
        ),
        (
            "/v1/auth/login",
            b'{"email": "a@b.co", "password": 12}',
            400,
            "invalid JSON body: Expected `str`, got `int` - at `$.password`",
        ),
        (
            "/v1/auth/forgot",
            b'{"email": "a@b.co\\r\\nBcc: x@y.z"}',
            400,
            "enter a valid email address",
        ),
        (
            "/v1/auth/reset",
            b'{"token": "\\ud800", "password": "long enough"}',
            400,
            "invalid JSON body: JSON is malformed: unexpected end of escaped utf-16 "
            "surrogate pair (byte 17)",
        ),
        (
            "/v1/auth/verify",
            b'{"token": "\xff\xfe"}',
            400,
            "invalid JSON body: Invalid UTF-8 encoded string",
        ),
        (
            "/v1/auth/reset",
            b'{"token": "mxpr_x", "password": "1234567"}',
            400,
            "password must be at least 8 characters",
        ),
        (
            "/v1/auth/reset",
            b'{"token": "mxpr_x", "password": "long enough"}',
            400,
            "invalid or expired reset link",
        ),
        ("/v1/auth/verify", b'{"token": "mxev_x"}', 400, "invalid verification link"),
        ("/v1/auth/forgot", b'{"email": "x"}', 400, "enter a valid email address"),
        (
            "/v1/auth/login",
            b'{"email": "a@b.co", "password": "' + b"x" * 2000 + b'"}',
            401,
            "invalid email or password",
        ),
    ],
)
def test_auth_refuses_bad_input_with_exact_errors(
    client: httpx.Client, path: str, body: bytes, status: int, message: str
) -> None:
    """Each rule has its status and its message."""

    response = client.post(path, content=body, headers=JSON)

    assert (response.status_code, response.json()) == (status, error(status, message))


def test_auth_signup_same_address_other_case_is_409(client: httpx.Client) -> None:
    """Addresses compare after NFKC and case folding."""
    signup(client, "tank@example.com", name="Tank")

    again = signup(client, "\uff34ANK@Example.com", name="Tank")

    assert again.status_code == 409
    assert again.json() == error(409, "an account with this email already exists")


@pytest.mark.parametrize("spelling", ["all=true", "all=TRUE", "all=1"])
def test_auth_logout_all_ends_every_session(
    client: httpx.Client, spelling: str
) -> None:
    """?all=true ends all of the user's sessions, other users' stay."""
    tag = sum(map(ord, spelling))
    first = signup(client, f"apoc{tag}@example.com", name="Apoc").json()["token"]
    second = login(client, f"apoc{tag}@example.com").json()["token"]
    other = signup(client, f"switch{tag}@example.com", name="Switch").json()["token"]

    response = client.post(f"/v1/auth/logout?{spelling}", headers=bearer(second))

    assert response.json() == {"ok": True}
    assert client.get("/v1/auth/me", headers=bearer(first)).status_code == 401
    assert client.get("/v1/auth/me", headers=bearer(second)).status_code == 401
    assert client.get("/v1/auth/me", headers=bearer(other)).status_code == 200


def test_auth_logout_without_a_session_is_ok(client: httpx.Client) -> None:
    """Logout always answers 200, with a bad token or none."""

    responses = [
        client.post("/v1/auth/logout"),
        client.post("/v1/auth/logout?all=true", headers=bearer("mxs_unknown")),
    ]

    assert [(r.status_code, r.json()) for r in responses] == [(200, {"ok": True})] * 2


@pytest.mark.parametrize("spelling", ["all=yes", "all", "all=", "all=yes&ALL=true"])
def test_auth_logout_with_an_unclear_all_ends_nothing(
    client: httpx.Client, spelling: str
) -> None:
    """Anything but one true or false is a 400, and every session stays live."""
    email = f"dozer{sum(map(ord, spelling))}@example.com"
    first = signup(client, email, name="Dozer").json()["token"]
    second = login(client, email).json()["token"]

    response = client.post(f"/v1/auth/logout?{spelling}", headers=bearer(second))

    assert (response.status_code, response.json()) == (
        400,
        error(400, "all must be given once, as true or false"),
    )
    assert client.get("/v1/auth/me", headers=bearer(first)).status_code == 200
    assert client.get("/v1/auth/me", headers=bearer(second)).status_code == 200
