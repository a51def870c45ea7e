"""A server that cannot listen says why, exits 1, and leaves the log alone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server_process import BIN_DIR, running_server

LOG_FILES = ("data.mdb", "lock.mdb")


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another socket is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield holder.getsockname()[1]


@pytest.fixture(scope="module")
def used_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose log already holds a start, a job and a stop."""
    data_dir = tmp_path_factory.mktemp("listen") / "data"
    with running_server(data_dir) as server:
        created = httpx.post(
            f"{server.url}/v1/jobs",
            json={"type": "mcp.test", "payload": {"start_command": "node missing.js"}},
        )
        httpx.get(f"{server.url}{created.json()['events_url']}", timeout=30)
    return data_dir


def _serve(data_dir: Path, host: str, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(BIN_DIR / "matrix-runtime"),
            "serve",
            "--host",
            host,
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=30,
    )


def _log_bytes(data_dir: Path) -> dict[str, bytes]:
    return {name: (data_dir / "log" / name).read_bytes() for name in LOG_FILES}


def _events(data_dir: Path) -> str:
    return subprocess.run(
        [str(BIN_DIR / "matrix-runtime"), "events", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout


def test_serve_port_in_use_fails_before_opening_the_log(
    used_data_dir: Path, busy_port: int
) -> None:
    """Port taken: one line on stderr, exit 1, not a byte of the log changed."""
    events_before = _events(used_data_dir)
    files_before = _log_bytes(used_data_dir)

    result = _serve(used_data_dir, "127.0.0.1", busy_port)

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"matrix-runtime: cannot listen on 127.0.0.1:{busy_port}: "
        "Address already in use\n",
    )
    assert _log_bytes(used_data_dir) == files_before
    assert _events(used_data_dir) == events_before
    assert events_before.count('"type":"runtime.started"') == 1


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("0.0.0.0x", "cannot resolve the host name"),
        ("nowhere.invalid", "cannot resolve the host name"),
        ("192.0.2.1", "Cannot assign requested address"),
    ],
)
def test_serve_unusable_host_fails_without_creating_anything(
    tmp_path: Path, host: str, reason: str
) -> None:
    """An unresolvable or foreign address: exit 1, and no data directory at all."""
    data_dir = tmp_path / "data"

    result = _serve(data_dir, host, 8080)

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"matrix-runtime: cannot listen on {host}:8080: {reason}\n",
    )
    assert not data_dir.exists()


def test_serve_bind_failure_inside_the_http_server_is_a_clean_message(
    tmp_path: Path, busy_port: int
) -> None:
    """If the port is taken after the check, Hypercorn's failure is one line too."""
    # Skipping the check reproduces a port taken between the check and the
    # HTTP server's own bind.
    program = (
        "import sys, runtime.server as server\n"
        "server.check_listen_address = lambda host, port: None\n"
        "from runtime.cli import main\n"
        "sys.exit(main())\n"
    )

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            program,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(busy_port),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "MATRIX_RUNTIME_LOG_LEVEL": "ERROR",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (result.returncode, result.stderr) == (
        1,
        f"matrix-runtime: cannot listen on 127.0.0.1:{busy_port}: "
        "Address already in use\n",
    )
