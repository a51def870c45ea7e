"""A following ``events`` reads in a child; signals end both, and nothing lingers.

The parent passes SIGINT and SIGTERM on to its reading child, and the child
is told to end when the parent dies, so no reader outlives its command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.eventlog.support import TIMEOUT
from tests.runtime.test_cli_log import APPENDS, CLI, cli_env, write_log


@pytest.fixture
def follower(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``events --follow`` past its first printed line, and its reading child."""
    trio.run(write_log, tmp_path, APPENDS)
    process = subprocess.Popen(
        [str(CLI), "events", "--data-dir", str(tmp_path), "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    assert process.stdout is not None
    try:
        process.stdout.readline()
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        (child,) = map(int, children.read_text().split())
        yield process, child
    finally:
        process.kill()
        process.wait(TIMEOUT)


def wait_gone(pid: int) -> bool:
    """Whether ``pid`` is gone (or a zombie) within the test timeout."""
    for _ in range(int(TIMEOUT * 20)):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize(
    ("sent", "code"), [(signal.SIGINT, 0), (signal.SIGTERM, 128 + signal.SIGTERM)]
)
def test_signal_to_the_command_ends_it_and_its_reader(
    follower: tuple[subprocess.Popen[bytes], int], sent: signal.Signals, code: int
) -> None:
    """Interrupt ends quietly with 0; termination with 128 + SIGTERM."""
    process, child = follower

    process.send_signal(sent)

    assert process.wait(TIMEOUT) == code
    assert process.stderr is not None and process.stderr.read() == b""
    assert wait_gone(child)


def test_reader_ends_when_the_command_is_killed(
    follower: tuple[subprocess.Popen[bytes], int],
) -> None:
    """SIGKILL leaves the parent no say; the child is told by the kernel."""
    process, child = follower

    os.kill(process.pid, signal.SIGKILL)
    process.wait(TIMEOUT)

    assert wait_gone(child)
