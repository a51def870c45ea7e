"""Finding and killing processes a crashed runtime left behind.

A runtime killed with SIGKILL cannot kill its sandboxes' process trees. On
the next start, every process whose working directory lies inside an
interrupted job's sandbox directory is one of them: it is killed, and gone,
before the directory is removed.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Final

import trio

CLEAR_TIMEOUT: Final = 5.0
# There is no kernel notification for "these processes have exited", so
# clearing polls /proc at this interval.
CLEAR_POLL: Final = 0.02

log = logging.getLogger(__name__)


def kill_leftovers(work_dir: Path) -> int:
    """SIGKILL every live process working inside ``work_dir``; return how many."""
    target = str(work_dir.resolve())
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        if _is_dead(entry):
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd.removesuffix(" (deleted)") == target or cwd.startswith(target + "/"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


async def clear_sandbox(
    work_dir: Path,
    timeout: float = CLEAR_TIMEOUT,  # noqa: ASYNC109
) -> None:
    """Kill what runs in a job's sandbox directory, wait for it, remove it.

    SIGKILL takes effect asynchronously: a process may still be exiting
    right after the signal. Killing again until a scan finds nothing also
    catches a child forked between the scan and the kill. The wait is
    bounded; what still runs after ``timeout`` seconds is logged.
    """
    if not await trio.Path(work_dir).is_dir():
        return
    total = 0
    with trio.move_on_after(timeout):
        while killed := kill_leftovers(work_dir):
            total += killed
            await trio.sleep(CLEAR_POLL)
    remaining = kill_leftovers(work_dir)
    if total:
        log.info("killed leftover processes count=%s work_dir=%s", total, work_dir)
    if remaining:
        log.warning(
            "leftover processes still alive count=%s work_dir=%s", remaining, work_dir
        )
    shutil.rmtree(work_dir, ignore_errors=True)


def _is_dead(entry: Path) -> bool:
    """Whether the process is gone or a zombie (exited, waiting to be reaped)."""
    try:
        stat = (entry / "stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rindex(b")") + 2 :].split()[0] in (b"Z", b"X")
