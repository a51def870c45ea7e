"""The request log line: one per request, with control characters escaped."""

from __future__ import annotations

import httpx

from tests.api.mcp_support import wait_until
from tests.server_process import ServerProcess


def _request_lines(server: ServerProcess, marker: str) -> list[str]:
    return [
        line
        for line in server.log_text().splitlines()
        if marker in line and " api.app " in line
    ]


def _message(line: str) -> str:
    """The log line without its time, level, logger and duration."""
    return line.split(" api.app ", 1)[1].rsplit(" ms=", 1)[0]


def test_request_log_escapes_control_characters_in_the_path(
    server: ServerProcess,
) -> None:
    """CR, LF, NUL and backslash in a path cannot forge or break a log line."""
    path = "/v1/nothing%0D%0Arequest%20method=GET%20path=/forged%00%5Cn%09%1B"

    response = httpx.get(f"{server.url}{path}")
    lines = wait_until(lambda: _request_lines(server, "forged"), 10)

    assert response.status_code == 404
    assert [_message(line) for line in lines] == [
        "request method=GET path=/v1/nothing\\r\\nrequest method=GET "
        "path=/forged\\x00\\\\n\\t\\x1b status=404"
    ]
    assert not any(
        line.startswith("request ") for line in server.log_text().splitlines()
    )


def test_request_log_keeps_an_ordinary_path_as_it_is(server: ServerProcess) -> None:
    """A path without control characters is logged unchanged."""

    response = httpx.get(f"{server.url}/v1/jobs/job_caf%C3%A9")
    lines = wait_until(lambda: _request_lines(server, "job_caf"), 10)

    assert response.status_code == 404
    assert [_message(line) for line in lines] == [
        "request method=GET path=/v1/jobs/job_caf\u00e9 status=404"
    ]
