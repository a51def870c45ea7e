"""No input, however malformed, makes the server answer 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.auth_support import JSON, auth_server
from tests.server_process import ServerProcess

POST_PATHS = (
    "/v1/jobs",
    "/v1/sandbox/sessions",
    "/v1/sandbox/sessions/sbx_unknown/tools/call",
    "/v1/auth/signup",
    "/v1/auth/login",
    "/v1/auth/forgot",
    "/v1/auth/reset",
    "/v1/auth/verify",
)
GET_PATHS = ("/v1/jobs", "/v1/jobs/", "/v1/sandbox/sessions/", "/v1/auth/me", "/v1/")
FIELDS = (
    "type",
    "ttl_seconds",
    "payload",
    "start_command",
    "env",
    "arguments",
    "name",
    "tool",
    "job_id",
    "email",
    "password",
    "workspace",
    "token",
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6).map(
    lambda value: json.dumps(value).encode()
)
deep_bodies = st.tuples(st.integers(1, 5000), st.sampled_from(FIELDS)).map(
    lambda depth_field: (
        f'{{"{depth_field[1]}": '.encode()
        + b"[" * depth_field[0]
        + b"]" * depth_field[0]
        + b"}"
    )
)
bodies = json_objects | deep_bodies | st.binary(max_size=64)
header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
).map(lambda text: text.strip(" ").encode("latin-1"))
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A local-dev server where no start command can run anything."""
    env = {"MATRIX_RUNTIME_ALLOWED_PROGRAMS": "no-such-program"}
    data_dir = tmp_path_factory.mktemp("malformed") / "data"
    server: ServerProcess
    with (
        auth_server(data_dir, env=env) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield client
        assert "request failed" not in server.log_text()


def _assert_answered(response: httpx.Response) -> None:
    body: Any = response.json()
    assert response.status_code < 500, (response.status_code, body)
    if response.status_code >= 400:
        assert body == {"error": body["error"], "status": response.status_code}
        assert isinstance(body["error"], str)


@FUZZ
@given(path=st.sampled_from(POST_PATHS), body=bodies)
def test_malformed_bodies_never_answer_500(
    http: httpx.Client, path: str, body: bytes
) -> None:
    """Any JSON, deeply nested or not, and any bytes: a 2xx or a 4xx JSON error."""

    response = http.post(path, content=body, headers=JSON)

    _assert_answered(response)


@FUZZ
@given(
    path=st.sampled_from(GET_PATHS),
    tail=st.text(max_size=20),
    query=st.dictionaries(
        st.sampled_from(("after", "limit", "status", "type", "all")),
        st.text(max_size=20),
        max_size=3,
    ),
    last_event_id=header_values,
    authorization=header_values,
)
def test_malformed_paths_queries_and_headers_never_answer_500(
    http: httpx.Client,
    path: str,
    tail: str,
    query: dict[str, str],
    last_event_id: bytes,
    authorization: bytes,
) -> None:
    """Odd paths, filters, Last-Event-ID and Authorization values never crash."""
    headers = [(b"Last-Event-ID", last_event_id), (b"Authorization", authorization)]

    response = http.get(path + quote(tail, safe="/"), params=query, headers=headers)

    _assert_answered(response)
