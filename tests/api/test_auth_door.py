"""The door over HTTP: sessions, the operator token, modes and start-up errors."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.api.auth_support import auth_server, bearer, error, signup
from tests.server_process import BIN_DIR

OPERATOR_TOKEN = "op-token-0123456789"
INVALID = error(401, "missing or invalid bearer token")


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data_dir = tmp_path_factory.mktemp("door-production") / "data"
    env = {
        "MATRIX_RUNTIME_MODE": "customer-agent",
        "MATRIX_RUNTIME_API_TOKEN": OPERATOR_TOKEN,
    }
    with (
        auth_server(data_dir, env=env) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        yield http


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data_dir = tmp_path_factory.mktemp("door-local") / "data"
    with (
        auth_server(data_dir) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        yield http


@pytest.mark.parametrize(
    ("authorization", "status", "body"),
    [
        (None, 401, error(401, "authentication required")),
        (f"Bearer {OPERATOR_TOKEN}".encode(), 200, {"jobs": []}),
        (f"bearer {OPERATOR_TOKEN}".encode(), 200, {"jobs": []}),
        (f"Bearer {OPERATOR_TOKEN}x".encode(), 401, INVALID),
        (OPERATOR_TOKEN.encode(), 401, INVALID),
        (b"Basic dXNlcjpwYXNz", 401, INVALID),
        ("Bearer t\u00f6k\u00e9n".encode(), 401, INVALID),
        ("Bearer \u00ff\u00fe".encode("latin-1"), 401, INVALID),
    ],
)
def test_door_production_needs_a_valid_token(
    production: httpx.Client, authorization: bytes | None, status: int, body: object
) -> None:
    """Outside local-dev every gated route needs the operator token or a session."""
    headers = [] if authorization is None else [(b"Authorization", authorization)]

    response = production.get("/v1/jobs", headers=headers)

    assert (response.status_code, response.json()) == (status, body)


def test_door_production_admits_a_session(production: httpx.Client) -> None:
    """Signup is open; its session passes the door; me refuses the operator."""
    token = signup(production, "cypher@example.com", name="Cypher").json()["token"]

    jobs = production.get("/v1/jobs", headers=bearer(token))
    operator_me = production.get("/v1/auth/me", headers=bearer(OPERATOR_TOKEN))
    health = production.get("/v1/health")

    assert (jobs.status_code, jobs.json()) == (200, {"jobs": []})
    assert (operator_me.status_code, operator_me.json()) == (
        401,
        error(401, "not authenticated"),
    )
    assert health.status_code == 200


def test_door_local_dev_is_open_without_credentials(local: httpx.Client) -> None:
    """local-dev without an operator token admits requests with no credentials."""

    response = local.get("/v1/jobs")

    assert (response.status_code, response.json()) == (200, {"jobs": []})


@pytest.mark.parametrize(
    "authorization",
    [b"Bearer mxs_expired_or_unknown", "Bearer t\u00f6k\u00e9n".encode()],
)
def test_door_local_dev_refuses_a_bad_token(
    local: httpx.Client, authorization: bytes
) -> None:
    """A token that is no session is refused even where no token is needed."""

    response = local.get("/v1/jobs", headers=[(b"Authorization", authorization)])

    assert (response.status_code, response.json()) == (401, INVALID)


def test_door_hf_space_without_operator_token_is_closed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A production mode with no operator token fails closed, signup stays open."""
    data_dir = tmp_path_factory.mktemp("door-hf") / "data"
    env = {"MATRIX_RUNTIME_MODE": "hf-space"}
    with (
        auth_server(data_dir, env=env) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        closed = http.get("/v1/jobs")
        created = signup(http, "dozer@example.com", name="Dozer")
        opened = http.get("/v1/jobs", headers=bearer(created.json()["token"]))

    assert (closed.status_code, closed.json()) == (
        401,
        error(401, "authentication required"),
    )
    assert created.status_code == 201
    assert opened.status_code == 200


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"MATRIX_RUNTIME_MODE": "production"},
            "matrix-runtime: MATRIX_RUNTIME_MODE must be one of local-dev, hf-space, "
            "customer-agent, cloud-worker, not 'production'",
        ),
        (
            {"MATRIX_RUNTIME_API_TOKEN": "s\u00e9cret"},
            "matrix-runtime: MATRIX_RUNTIME_API_TOKEN must be printable ASCII "
            "without spaces",
        ),
        (
            {"MATRIX_RUNTIME_API_TOKEN": ""},
            "matrix-runtime: MATRIX_RUNTIME_API_TOKEN is set but empty",
        ),
        (
            {"MATRIX_RUNTIME_SMTP_HOST": "mail\x1b[2J"},
            "matrix-runtime: MATRIX_RUNTIME_SMTP_HOST holds characters that "
            "cannot be printed",
        ),
        (
            {"MATRIX_RUNTIME_SIGNUP": "invite"},
            "matrix-runtime: MATRIX_RUNTIME_SIGNUP must be open or closed, "
            "not 'invite'",
        ),
        (
            {"MATRIX_RUNTIME_PUBLIC_URL": " "},
            "matrix-runtime: MATRIX_RUNTIME_PUBLIC_URL is set but empty",
        ),
        (
            {"MATRIX_RUNTIME_ALLOWED_PROGRAMS": "node,,python3"},
            "matrix-runtime: MATRIX_RUNTIME_ALLOWED_PROGRAMS must be program names "
            "(ASCII letters, digits, '.', '_', '+', '-') separated by commas, and "
            "'' is not one",
        ),
        (
            {"MATRIX_RUNTIME_SSE_KEEPALIVE_SECONDS": "\uff11"},
            "matrix-runtime: MATRIX_RUNTIME_SSE_KEEPALIVE_SECONDS must be a number "
            "of seconds above 0 and at most 86400, not '\uff11'",
        ),
        (
            {"MATRIX_RUNTIME_ID": "rt local/\u00e9"},
            "matrix-runtime: MATRIX_RUNTIME_ID must be 1 to 64 ASCII letters, "
            "digits, '_', '-' or '.', not 'rt local/\u00e9'",
        ),
        (
            {"MATRIX_RUNTIME_RATE_LIMIT_RPM": "\u0668\u0660"},
            "matrix-runtime: MATRIX_RUNTIME_RATE_LIMIT_RPM must be a whole number, "
            "not '\u0668\u0660'",
        ),
        (
            {"MATRIX_RUNTIME_MAX_TTL_SECONDS": "1_0"},
            "matrix-runtime: MATRIX_RUNTIME_MAX_TTL_SECONDS must be a whole number, "
            "not '1_0'",
        ),
        (
            {"MATRIX_RUNTIME_SMTP_SECURITY": "ssl"},
            "matrix-runtime: MATRIX_RUNTIME_SMTP_SECURITY must be starttls, tls or "
            "none, not 'ssl'",
        ),
        (
            {"MATRIX_RUNTIME_TRUSTED_PROXIES": "10.0.0.0/8,proxy.local"},
            "matrix-runtime: MATRIX_RUNTIME_TRUSTED_PROXIES must list IP addresses or "
            "networks separated by commas, and 'proxy.local' is neither",
        ),
    ],
)
def test_serve_refuses_bad_settings_at_start(
    tmp_path: object, env: dict[str, str], message: str
) -> None:
    """A bad mode or auth setting stops start-up with exit code 2 and a message."""

    result = subprocess.run(
        [
            str(BIN_DIR / "matrix-runtime"),
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert (result.returncode, result.stderr.strip()) == (2, message)
