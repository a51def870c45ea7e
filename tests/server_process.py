"""Running the real ``matrix-runtime serve`` as a child process for tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BIN_DIR = Path(sys.executable).parent
SERVE_TIMEOUT = 30.0
_BIND = re.compile(r"serving binds=(http://[^\s,]+)")


@dataclass
class ServerProcess:
    """A live server: its URL, data directory and captured log lines."""

    process: subprocess.Popen[str]
    url: str
    data_dir: Path
    lines: list[str] = field(default_factory=list)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> int:
        """Send ``sig`` and wait for the process to exit; return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def log_text(self) -> str:
        """Everything the server logged so far."""
        return "".join(self.lines)


def start_server(
    data_dir: Path,
    env: Mapping[str, str] | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
) -> ServerProcess:
    """Start ``matrix-runtime serve`` on ``host`` and wait until it listens.

    Raises:
        RuntimeError: the server exited or did not listen in time, with its log.
    """
    child_env = {
        key: value for key, value in os.environ.items() if not key.startswith("MATRIX_")
    }
    child_env.update(env or {})
    process = subprocess.Popen(
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
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env,
    )
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            match = _BIND.search(line)
            if match and not url:
                url.append(match.group(1))
                found.set()
        found.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + SERVE_TIMEOUT
    while not found.wait(0.05):
        if time.monotonic() > deadline:
            break
    if not url:
        process.kill()
        process.wait()
        raise RuntimeError("server did not start:\n" + "".join(lines))
    return ServerProcess(process, url[0], data_dir, lines)


@contextmanager
def running_server(
    data_dir: Path, env: Mapping[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[ServerProcess]:
    """A server for the duration of a ``with`` block, stopped with SIGTERM."""
    server = start_server(data_dir, env, host=host)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()
