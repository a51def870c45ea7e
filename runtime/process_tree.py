"""Finding and signalling every process a sandboxed command started.

A sandboxed command runs as the leader of a new session and process group, so
its tree is everything in that group or session plus anything descended from
it: a child that called ``setsid`` leaves the group but keeps its parent. The
tree is read from ``/proc``. Every process seen once is remembered (with its
start time, so a recycled pid is not mistaken for it), because a process
whose parent dies is re-parented to init and cannot be found by descent any
more. Zombies are not counted: they are dead and only wait to be reaped.
"""

from __future__ import annotations

import contextlib
import os
import signal

import trio

# There is no kernel notification for "this process group is now empty", so
# waiting for a tree to die polls /proc at this interval.
POLL_INTERVAL = 0.02


class ProcessTree:
    """The processes of one sandboxed command, found through ``/proc``.

    Args:
        leader: The pid of the sandboxed command, which is also its process
            group id and session id.
    """

    def __init__(self, leader: int) -> None:
        self.leader = leader
        self._known: dict[int, int] = {}

    def scan(self) -> set[int]:
        """Return the live processes of the tree, remembering each one.

        Returns:
            Pids in the leader's group or session, descended from it, or seen
            in an earlier scan (same pid and start time) and still alive.
        """
        children: dict[int, list[int]] = {}
        start_times: dict[int, int] = {}
        members: set[int] = set()
        for pid, ppid, pgrp, session, start_time in _live_processes():
            children.setdefault(ppid, []).append(pid)
            start_times[pid] = start_time
            if (
                self.leader in (pid, pgrp, session)
                or self._known.get(pid) == start_time
            ):
                members.add(pid)

        pending = [self.leader, *members]
        while pending:
            for child in children.get(pending.pop(), ()):
                if child not in members:
                    members.add(child)
                    pending.append(child)
        for pid in members:
            self._known[pid] = start_times[pid]
        return members

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the process group and to every process of the tree.

        The tree is read before anything is signalled, so a process whose
        parent dies of this very signal is still found. Processes already gone
        are skipped silently.
        """
        members = self.scan()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.leader, signum)
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    async def wait_gone(
        self, within: float, resend: signal.Signals | None = None
    ) -> bool:
        """Wait until no live process of the tree remains.

        Args:
            within: Seconds to wait at most.
            resend: A signal to send again on every poll, so that a process
                forked after the first signal still receives it.

        Returns:
            Whether the tree was gone in time.
        """
        with trio.move_on_after(within):
            while self.scan():
                if resend is not None:
                    self.send_signal(resend)
                await trio.sleep(POLL_INTERVAL)
            return True
        return not self.scan()


def _live_processes() -> list[tuple[int, int, int, int, int]]:
    """(pid, ppid, pgrp, session, start time) of each process not a zombie."""
    found: list[tuple[int, int, int, int, int]] = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat_file:
                data = stat_file.read()
        except OSError:
            continue
        # The command name is in parentheses and may itself contain spaces
        # or parentheses; the fixed fields start after the last ")", with
        # the state (field 3 of proc(5)) first.
        fields = data[data.rindex(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X"):
            continue
        ppid, pgrp, session, start_time = fields[1], fields[2], fields[3], fields[19]
        found.append((int(name), int(ppid), int(pgrp), int(session), int(start_time)))
    return found
