"""Requests a web page could forge: non-JSON bodies, foreign origins and hosts."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.auth_support import JSON, PUBLIC_URL, auth_server, error
from tests.server_process import ServerProcess

JOB = b'{"type": "mcp.test", "payload": {"start_command": "node forged.js"}}'
UNKNOWN_TYPE = error(400, 'unknown job type: "nope"')
NOT_JSON = error(415, "Content-Type must be application/json")
CROSS_ORIGIN = error(403, "cross-origin request refused")
HOST_NOT_ALLOWED = error(403, "host not allowed")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A local-dev server without an operator token: the open local API."""
    with auth_server(tmp_path_factory.mktemp("csrf-local") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def http(local: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local.url, timeout=30) as client:
        yield client


def _port(server: ServerProcess) -> int:
    port = urlsplit(server.url).port
    assert port is not None
    return port


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/jobs", None),
        ("/v1/jobs", "text/plain"),
        ("/v1/jobs", "text/plain; charset=utf-8"),
        ("/v1/jobs", "application/x-www-form-urlencoded"),
        ("/v1/jobs", "multipart/form-data; boundary=x"),
        ("/v1/jobs", "text/json"),
        ("/v1/jobs", "application/jsonp"),
        ("/v1/sandbox/sessions", "text/plain"),
        ("/v1/sandbox/sessions/sbx_unknown/tools/call", "text/plain"),
        ("/v1/auth/signup", "text/plain"),
        ("/v1/auth/login", "application/x-www-form-urlencoded"),
    ],
)
def test_csrf_body_that_is_not_json_is_415(
    http: httpx.Client, path: str, content_type: str | None
) -> None:
    """A body a page can send without a preflight is refused and records nothing."""
    headers = {} if content_type is None else {"Content-Type": content_type}

    response = http.post(path, content=JOB, headers=headers)
    jobs = http.get("/v1/jobs")

    assert (response.status_code, response.json()) == (415, NOT_JSON)
    assert jobs.json() == {"jobs": []}


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-16", "application/json;charset=latin1"],
)
def test_json_body_declared_in_another_charset_is_415(
    http: httpx.Client, content_type: str
) -> None:
    """JSON is UTF-8; a body declared otherwise is refused and records nothing."""
    response = http.post(
        "/v1/jobs", content=JOB, headers={"Content-Type": content_type}
    )
    jobs = http.get("/v1/jobs")

    assert (response.status_code, response.json()) == (
        415,
        error(415, "a JSON body must be UTF-8; send charset=utf-8 or none"),
    )
    assert jobs.json() == {"jobs": []}


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON"],
)
def test_csrf_json_with_parameters_reaches_the_handler(
    http: httpx.Client, content_type: str
) -> None:
    """application/json in any case, with parameters, passes to the endpoint."""

    response = http.post(
        "/v1/jobs", content=b'{"type": "nope"}', headers={"Content-Type": content_type}
    )

    assert (response.status_code, response.json()) == (400, UNKNOWN_TYPE)


def test_csrf_post_without_a_body_needs_no_content_type(http: httpx.Client) -> None:
    """Logout has no body, so its content type does not matter."""

    response = http.post("/v1/auth/logout", headers={"Content-Type": "text/plain"})

    assert (response.status_code, response.json()) == (200, {"ok": True})


def test_csrf_chunked_body_that_is_not_json_is_415(http: httpx.Client) -> None:
    """A body sent chunked, without a length, is still a body."""

    response = http.post(
        "/v1/jobs", content=iter([JOB]), headers={"Content-Type": "text/plain"}
    )

    assert (response.status_code, response.json()) == (415, NOT_JSON)


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("{own}", (400, UNKNOWN_TYPE)),
        (PUBLIC_URL, (400, UNKNOWN_TYPE)),
        ("http://evil.example", (403, CROSS_ORIGIN)),
        ("http://evil.example:{port}", (403, CROSS_ORIGIN)),
        ("http://localhost:{port}", (403, CROSS_ORIGIN)),
        ("https://127.0.0.1:{port}", (403, CROSS_ORIGIN)),
        ("http://127.0.0.1:1", (403, CROSS_ORIGIN)),
        ("http://127.0.0.1", (403, CROSS_ORIGIN)),
        ("http://user@127.0.0.1:{port}", (403, CROSS_ORIGIN)),
        ("null", (403, CROSS_ORIGIN)),
        ("", (403, CROSS_ORIGIN)),
    ],
)
def test_csrf_origin_must_be_the_runtime_itself(
    local: ServerProcess, http: httpx.Client, origin: str, expected: tuple[int, object]
) -> None:
    """A POST's Origin must be the runtime's own origin or its public URL."""
    headers = {**JSON, "Origin": origin.format(own=local.url, port=_port(local))}

    response = http.post("/v1/jobs", content=b'{"type": "nope"}', headers=headers)

    assert (response.status_code, response.json()) == expected


def test_csrf_foreign_origin_cannot_delete_or_read_across(http: httpx.Client) -> None:
    """DELETE with a foreign Origin is refused; a GET is answered without CORS."""
    foreign = {"Origin": "http://evil.example"}

    deleted = http.delete("/v1/jobs/job_unknown", headers=foreign)
    read = http.get("/v1/jobs", headers=foreign)

    assert (deleted.status_code, deleted.json()) == (403, CROSS_ORIGIN)
    assert (read.status_code, read.json()) == (200, {"jobs": []})
    assert "access-control-allow-origin" not in read.headers


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "localhost.evil.example:{port}",
        "127.0.0.1.nip.io:{port}",
        "localhost@evil.example",
        "evil.example/localhost",
        "192.168.1.20:{port}",
        "[::ffff:127.0.0.1]:{port}",
        "localhost:99999",
        "localhost:",
    ],
)
def test_csrf_local_dev_refuses_foreign_host(
    local: ServerProcess, http: httpx.Client, host: str
) -> None:
    """After a DNS rebinding the Host header names the attacker: refused, even GET."""
    headers = {"Host": host.format(port=_port(local))}

    health = http.get("/v1/health", headers=headers)
    created = http.post("/v1/jobs", content=JOB, headers={**JSON, **headers})
    jobs = http.get("/v1/jobs")

    assert (health.status_code, health.json()) == (403, HOST_NOT_ALLOWED)
    assert (created.status_code, created.json()) == (403, HOST_NOT_ALLOWED)
    assert jobs.json() == {"jobs": []}


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:{port}",
        "LocalHost:{port}",
        "127.0.0.1",
        "127.0.0.1:{port}",
        "127.45.6.7:80",
        "[::1]",
        "[::1]:{port}",
    ],
)
def test_csrf_local_dev_accepts_loopback_hosts(
    local: ServerProcess, http: httpx.Client, host: str
) -> None:
    """Loopback names and addresses, with or without a port, are served."""

    response = http.get("/v1/health", headers={"Host": host.format(port=_port(local))})

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_csrf_host_is_checked_before_the_door(http: httpx.Client) -> None:
    """A foreign host is refused before its token is even looked at."""
    headers = {"Host": "evil.example", "Authorization": "Bearer mxs_unknown"}

    response = http.get("/v1/jobs", headers=headers)

    assert (response.status_code, response.json()) == (403, HOST_NOT_ALLOWED)


def test_csrf_production_mode_serves_any_host(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Behind a proxy the Host is the public name: only local-dev checks it."""
    env = {"MATRIX_RUNTIME_MODE": "customer-agent", "MATRIX_RUNTIME_API_TOKEN": "op"}
    data_dir = tmp_path_factory.mktemp("csrf-production") / "data"
    with (
        auth_server(data_dir, env=env) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        health = client.get("/v1/health", headers={"Host": "runtime.example.com"})
        foreign = client.post(
            "/v1/jobs",
            content=b'{"type": "nope"}',
            headers={
                **JSON,
                "Host": "runtime.example.com",
                "Origin": "https://evil.example",
                "Authorization": "Bearer op",
            },
        )
        plain = client.post(
            "/v1/jobs",
            content=b'{"type": "nope"}',
            headers={"Content-Type": "text/plain", "Authorization": "Bearer op"},
        )

    assert health.status_code == 200
    assert (foreign.status_code, foreign.json()) == (403, CROSS_ORIGIN)
    assert (plain.status_code, plain.json()) == (415, NOT_JSON)
