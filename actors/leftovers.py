"""Finding and killing processes a crashed runtime left behind.

A runtime killed with SIGKILL cannot kill its sandboxes' process trees. On
the next start, every process whose working directory lies inside an
interrupted job's sandbox directory is one of them: it is killed before the
directory is removed.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
from pathlib import Path

log = logging.getLogger(__name__)


def kill_leftovers(work_dir: Path) -> int:
    """SIGKILL every process working inside ``work_dir``; return how many."""
    target = str(work_dir.resolve())
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
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


def remove_sandbox(work_dir: Path) -> None:
    """Kill what still runs inside a job's sandbox directory, then remove it."""
    if not work_dir.exists():
        return
    killed = kill_leftovers(work_dir)
    if killed:
        log.info("killed leftover processes count=%s work_dir=%s", killed, work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
