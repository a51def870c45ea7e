"""Job event streams: framing, resume positions, keepalives, disconnects."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.api.mcp_support import Api, runtime_server, steps, tiny_command
from tests.api.sse_client import (
    Frame,
    event_ids,
    open_sse,
    read_all_events,
    strictly_increasing,
)
from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One runtime for the module (keepalive every 0.5 s)."""
    with runtime_server(tmp_path_factory.mktemp("sse") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def finished_job(runtime: ServerProcess) -> tuple[str, list[Frame]]:
    """A tool.run job that has ended, with its whole event history."""
    api = Api(runtime)
    job_id = api.submit(
        "tool.run",
        {"start_command": tiny_command(), "tool": "echo", "arguments": {"text": "a"}},
    )
    api.wait_for_job(job_id)
    history = read_all_events(api.events_url(job_id))
    api.close()
    return job_id, history


def test_sse_finished_job_replays_its_history_and_ends(
    api: Api, finished_job: tuple[str, list[Frame]]
) -> None:
    """A finished job's stream replays every step with increasing ids, then ends."""
    job_id, _ = finished_job

    with open_sse(api.events_url(job_id)) as stream:
        events = stream.rest()

    assert stream.ended
    assert steps(events) == [
        "queue",
        "validate",
        "sandbox",
        "mcp_start",
        "mcp_initialize",
        "tools_list",
        "tool_call",
        "tool_call",
        "complete",
    ]
    assert strictly_increasing(event_ids(events))
    assert events[-1].data == {
        "step": "complete",
        "status": "complete",
        "message": "Job complete",
    }


@pytest.mark.parametrize("how", ["after", "Last-Event-ID"])
def test_sse_resume_gives_exactly_the_events_after(
    api: Api, finished_job: tuple[str, list[Frame]], how: str
) -> None:
    """Resuming after each event id gives exactly the events that followed it."""
    job_id, history = finished_job
    url = api.events_url(job_id)

    resumed = []
    for frame in history:
        assert frame.id is not None
        if how == "after":
            resumed.append(read_all_events(url, params={"after": str(frame.id)}))
        else:
            resumed.append(read_all_events(url, last_event_id=frame.id))
    from_start = read_all_events(url, params={"after": "0"})

    assert resumed == [history[index + 1 :] for index in range(len(history))]
    assert from_start == history


def test_sse_last_event_id_wins_over_after(
    api: Api, finished_job: tuple[str, list[Frame]]
) -> None:
    """With both, the Last-Event-ID header decides where the stream resumes."""
    job_id, history = finished_job

    resumed = read_all_events(
        api.events_url(job_id),
        last_event_id=history[2].id,
        params={"after": str(history[0].id)},
    )

    assert resumed == history[3:]


def test_sse_resume_of_a_running_job_continues_live(api: Api) -> None:
    """A client that reconnects mid-start gets the rest, live, without repeats."""
    opened = api.open_sandbox(tiny_command())
    url = f"{api.url}{opened['events_url']}"

    with open_sse(url) as stream:
        before = stream.until_step("sandbox")
    with open_sse(url, last_event_id=before[-1].id) as stream:
        after = stream.until_step("ready")
    with open_sse(url) as stream:
        whole = stream.until_step("ready")
    api.client.delete(f"/v1/sandbox/sessions/{opened['session_id']}")

    assert steps(before) == ["queue", "validate", "sandbox"]
    assert steps(after) == ["mcp_start", "mcp_initialize", "tools_list", "ready"]
    assert before + after == whole


@pytest.mark.parametrize(
    ("header", "query", "error"),
    [
        ("abc", None, "Last-Event-ID must be an event position"),
        ("99999999", None, "Last-Event-ID 99999999 is not a position of this log"),
        ("-1", None, "Last-Event-ID -1 is not a position of this log"),
        (None, "x", "after must be an event position"),
        (None, "\u0661", "after must be an event position"),
        (None, "1_0", "after must be an event position"),
        ("1_0", None, "Last-Event-ID must be an event position"),
        (None, "99999999", "after 99999999 is not a position of this log"),
    ],
)
def test_sse_rejects_bad_resume_positions(
    api: Api,
    finished_job: tuple[str, list[Frame]],
    header: str | None,
    query: str | None,
    error: str,
) -> None:
    """A resume position that is not a position of the log is a JSON 400."""
    job_id, _ = finished_job
    headers = {} if header is None else {"Last-Event-ID": header}
    params = {} if query is None else {"after": query}

    response = api.client.get(
        f"/v1/jobs/{job_id}/events", headers=headers, params=params
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": error, "status": 400}


def test_sse_keepalive_comments_carry_no_id(api: Api) -> None:
    """An idle stream gets comment keepalives, without id or data."""
    opened = api.open_sandbox(tiny_command())

    with open_sse(f"{api.url}{opened['events_url']}") as stream:
        stream.until_step("ready")
        idle = [stream.next_frame() for _ in range(3)]
        api.client.delete(f"/v1/sandbox/sessions/{opened['session_id']}")
        tail = stream.rest()

    assert idle == [Frame(id=None, data=None, comment="keepalive")] * 3
    assert steps(tail) == ["cancel"]


def test_sse_client_disconnects_do_not_break_the_server(
    runtime: ServerProcess, api: Api
) -> None:
    """Clients dropping streams, politely or with a reset, leave the server well."""
    opened = api.open_sandbox(tiny_command())
    url = f"{api.url}{opened['events_url']}"
    with open_sse(url) as stream:
        stream.until_step("ready")

    for _ in range(10):
        with open_sse(url) as stream:
            stream.next_frame()
    for _ in range(5):
        _reset_after_first_bytes(url)
    health = api.client.get("/v1/health")
    with open_sse(url) as stream:
        replayed = stream.until_step("ready")
        api.client.delete(f"/v1/sandbox/sessions/{opened['session_id']}")
        tail = stream.rest()

    assert health.status_code == 200
    assert steps(replayed)[-1] == "ready"
    assert steps(tail) == ["cancel"]
    assert "Traceback" not in runtime.log_text()
    assert " ERROR " not in runtime.log_text()


def _reset_after_first_bytes(url: str) -> None:
    """Open a stream on a raw socket, read a little, then reset the connection."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        request = (
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        )
        sock.sendall(request.encode())
        received = sock.recv(4096)
        assert received.startswith(b"HTTP/1.1 200")
        # Linger 0: close() sends a TCP reset instead of a polite FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
