"""Bad input to the jobs and sandbox endpoints: a clear error, nothing changed."""

from __future__ import annotations

import httpx
import pytest

from tests.server_process import ServerProcess


def _log_head(server: ServerProcess) -> int:
    response = httpx.get(f"{server.url}/v1/jobs")
    return len(response.json()["jobs"])


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{", 400, "invalid JSON body: Input data was truncated"),
        (b"", 400, "invalid JSON body: the body is empty"),
        (b"[]", 400, "invalid JSON body: Expected `object`, got `array`"),
        (
            b'{"type": "mcp.test", "ttl_seconds": "10"}',
            400,
            "invalid JSON body: Expected `int | null`, got `str` - at `$.ttl_seconds`",
        ),
        (b'{"type": "nope"}', 400, 'unknown job type: "nope"'),
        (b"{}", 400, 'unknown job type: ""'),
        (
            b'{"type": "mcp.test", "ttl_seconds": -1}',
            422,
            "ttl_seconds must not be negative",
        ),
        (
            b'{"type": "mcp.test", "ttl_seconds": 121}',
            422,
            "ttl_seconds 121 exceeds maximum 120",
        ),
        (
            b'{"type": "mcp.test", "payload": {"start_command": "bash -c x"}}',
            422,
            'program "bash" is not allowed (permitted: npx, uvx, pipx, python, '
            "python3, node)",
        ),
        (
            b'{"type": "mcp.test", "payload": {"start_command": "node a.js; rm x"}}',
            422,
            "command contains forbidden shell metacharacter ';'",
        ),
        (
            b'{"type": "mcp.test", "payload": {"start_command": "node a.js",'
            b' "transport": "sse"}}',
            400,
            'unsupported transport "sse" (only stdio is supported)',
        ),
        (
            b'{"type": "mcp.test", "payload": {"start_command": "node a.js",'
            b' "env": {"API_TOKEN": "abc"}}}',
            422,
            'env "API_TOKEN" appears to contain a raw secret value; pass a secret '
            "reference instead",
        ),
        (
            b'{"type": "mcp.test", "payload": {"a": '
            + b"[" * 1000
            + b"]" * 1000
            + b"}}",
            400,
            "invalid JSON body: nested too deeply",
        ),
        (
            b'{"ignored": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            400,
            "invalid JSON body: nested too deeply",
        ),
        (
            b'{"type": "nope", "payload": {"a": ' + b"[" * 63 + b"]" * 63 + b"}}",
            400,
            "invalid JSON body: nested too deeply",
        ),
        (
            b'{"type": "nope", "payload": {"a": ' + b"[" * 62 + b"]" * 62 + b"}}",
            400,
            'unknown job type: "nope"',
        ),
        (
            b'{"type": "nope", "payload": {"n": 18446744073709551616}}',
            400,
            "invalid JSON body: integer out of range",
        ),
        (
            b'{"type": "nope", "payload": {"n": [-9223372036854775809]}}',
            400,
            "invalid JSON body: integer out of range",
        ),
        (
            b'{"type": "nope", "payload": {"n": [-9223372036854775808, '
            b"18446744073709551615]}}",
            400,
            'unknown job type: "nope"',
        ),
        (
            b'{"type": "nope", "payload": {"n": 1e999}}',
            400,
            "invalid JSON body: Number out of range - at `$.payload[...]`",
        ),
        (
            b'{"type": "mcp.test", "ttl_seconds": 100000000000000000000000000}',
            400,
            "invalid JSON body: integer out of range",
        ),
        (
            b'{"type": "mcp.test", "payload": {"start_command": "node '
            + b"a" * 8188
            + b'"}}',
            422,
            "the start command is 8193 bytes long; the limit is 8192 bytes",
        ),
        (
            b'{"type": "mcp.test", "payload": {"start_command": "node a.js", '
            b'"env": {"BIG": "' + b"v" * 16385 + b'"}}}',
            422,
            'env "BIG" is 16385 bytes long; the limit is 16384 bytes',
        ),
        (
            b'{"type": "mcp.test", "payload": {"start_command": "node a.js", '
            b'"env": {' + b", ".join(b'"V%d": "x"' % n for n in range(65)) + b"}}}",
            422,
            "env has 65 variables; the limit is 64",
        ),
        (
            b'{"type": "mcp.test", "payload": {"start_command": '
            b'"python3 -m mcp_server_time\\u2028--x"}}',
            422,
            "command contains the invisible or control character U+2028",
        ),
        (
            b'{"type": "mcp.test", "payload": {"start_command": '
            b'"python3 -m mcp_\\u200bserver_time"}}',
            422,
            "command contains the invisible or control character U+200B",
        ),
        (
            b'{"type": "mcp.test", "payload": {"start_command": '
            b'"python3 -m mcp_server_time\\u000b"}}',
            422,
            "command contains the invisible or control character U+000B",
        ),
        (
            b'{"type": "mcp.test", "type": "tool.run"}',
            400,
            "invalid JSON body: the key 'type' appears twice in an object",
        ),
        (
            b'{"type": "mcp.test", "payload": {"start_command": "node a.js", '
            b'"env": {"A": "1", "A": "2"}}}',
            400,
            "invalid JSON body: the key 'A' appears twice in an object",
        ),
        (
            b'{"type": "' + b"t" * 600 + b'"}',
            400,
            'unknown job type: "' + "t" * 468 + "… (truncated)",
        ),
    ],
)
def test_create_job_rejects_bad_input(
    server: ServerProcess, body: bytes, status: int, error: str
) -> None:
    """Each malformed job request gets its exact error and creates no job."""

    response = httpx.post(
        f"{server.url}/v1/jobs",
        content=body,
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == status
    assert response.json() == {"error": error, "status": status}
    assert _log_head(server) == 0


def test_create_job_rejects_oversized_body(server: ServerProcess) -> None:
    """A body over the limit is 413 and creates nothing."""
    body = b'{"type": "mcp.test", "payload": {"x": "' + b"a" * (2 << 20) + b'"}}'

    response = httpx.post(
        f"{server.url}/v1/jobs",
        content=body,
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json() == {"error": "request body too large", "status": 413}
    assert _log_head(server) == 0


@pytest.mark.parametrize(
    ("method", "path", "error"),
    [
        ("GET", "/v1/jobs/job_unknown", "job not found"),
        ("DELETE", "/v1/jobs/job_unknown", "job not found"),
        ("GET", "/v1/jobs/job_unknown/events", "job not found"),
        ("GET", "/v1/sandbox/sessions/sbx_unknown", "sandbox session not found"),
        ("DELETE", "/v1/sandbox/sessions/sbx_unknown", "sandbox session not found"),
        ("GET", "/v1/sandbox/sessions/sbx_unknown/events", "sandbox session not found"),
        ("GET", "/v1/sandbox/sessions/sbx_unknown/tools", "sandbox session not found"),
        ("GET", "/v1/nothing/here", "not found"),
        ("GET", "/v1//jobs", "not found"),
        ("GET", "/v1/jobs//job_unknown", "not found"),
        ("POST", "/v1//jobs", "not found"),
    ],
)
def test_unknown_ids_are_404(
    server: ServerProcess, method: str, path: str, error: str
) -> None:
    """Unknown jobs, sessions and routes answer 404 with a JSON error."""

    response = httpx.request(method, f"{server.url}{path}")

    assert response.status_code == 404
    assert response.json() == {"error": error, "status": 404}


def test_tool_call_on_unknown_session_is_404(server: ServerProcess) -> None:
    """A tool call for an unknown session is 404, not 409."""

    response = httpx.post(
        f"{server.url}/v1/sandbox/sessions/sbx_unknown/tools/call",
        json={"name": "echo", "arguments": {}},
    )

    assert response.status_code == 404
    assert response.json() == {"error": "sandbox session not found", "status": 404}


@pytest.mark.parametrize(
    ("query", "error"),
    [
        (
            "status=done",
            "status must be one of queued, running, complete, error, "
            "expired, cancelled, not 'done'",
        ),
        ("limit=0", "limit must be between 1 and 1000"),
        ("limit=x", "limit must be a whole number"),
        ("limit=%EF%BC%95", "limit must be a whole number"),
        ("limit=1_0", "limit must be a whole number"),
        ("limit=+5", "limit must be a whole number"),
        ("limit=1&limit=abc", "query parameter 'limit' is given more than once"),
        ("status=queued&status=x", "query parameter 'status' is given more than once"),
    ],
)
def test_list_jobs_rejects_bad_filters(
    server: ServerProcess, query: str, error: str
) -> None:
    """Bad list filters are 400 with the exact reason."""

    response = httpx.get(f"{server.url}/v1/jobs?{query}")

    assert response.status_code == 400
    assert response.json() == {"error": error, "status": 400}


def test_wrong_method_is_405_json(server: ServerProcess) -> None:
    """A known route with the wrong method is a JSON 405."""

    response = httpx.put(f"{server.url}/v1/jobs")

    assert response.status_code == 405
    assert response.json() == {"error": "method not allowed", "status": 405}


def test_options_is_a_json_405(server: ServerProcess) -> None:
    """OPTIONS is not a silent empty 200: no CORS is offered."""

    response = httpx.options(f"{server.url}/v1/jobs")

    assert response.status_code == 405
    assert response.json() == {"error": "method not allowed", "status": 405}
    assert response.headers["Allow"] == "GET, HEAD, POST"
