"""Starts a process tree that resists being stopped, and prints its pids.

Run as ``python spawn_tree.py``. Each of these prints its pid on stdout:

- this process;
- a child that ignores SIGTERM and starts a grandchild;
- the grandchild, which ignores SIGTERM too;
- a second child that ignores SIGTERM and calls ``setsid``, leaving the
  process group.

Then all of them wait. Only SIGKILL to the whole tree stops it.
"""

from __future__ import annotations

import os
import signal
import time


def stubborn(leave_group: bool, grandchild: bool) -> None:
    """Ignore SIGTERM, report the pid, maybe start a grandchild, wait."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if leave_group:
        os.setsid()
    print(os.getpid(), flush=True)
    if grandchild:
        spawn(leave_group=False, grandchild=False)
    while True:
        time.sleep(60)


def spawn(*, leave_group: bool, grandchild: bool) -> None:
    """Fork a stubborn process."""
    if os.fork() == 0:
        stubborn(leave_group, grandchild)


def main() -> None:
    print(os.getpid(), flush=True)
    spawn(leave_group=False, grandchild=True)
    spawn(leave_group=True, grandchild=False)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
