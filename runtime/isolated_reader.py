"""Run a command that reads the log in a forked child, and outlive its crash.

LMDB trusts its file. Most damage to it surfaces as an error the log turns
into a :class:`~eventlog.CorruptLogError`, but a damaged length or page
offset can send a read past the end of the mapped file, and the kernel then
stops the reading process with SIGBUS (or SIGSEGV). The read-only commands
(``verify``, ``events``, ``replay``) exist to look at logs that may be
damaged, so each runs its reading in a child. When the child is stopped by
such a signal, the parent reports the damage as one clear line, using the
progress the child published in memory they share.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import signal
import struct
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Final

from eventlog import EventLogError
from eventlog.errors import damaged

EXIT_FAILED: Final = 1

_FIELDS = struct.Struct("=QQQ")
_CHECKED = struct.Struct("=Q")
_CHECKED_OFFSET: Final = 16


class Progress:
    """How far a child got: whether it started its walk, the head, events done.

    Written by the child and read by the parent after the child is gone,
    through an anonymous shared mapping that survives the fork.
    """

    def __init__(self) -> None:
        self._shared = mmap.mmap(-1, _FIELDS.size)

    def started(self, head: int) -> None:
        """The walk began on a log whose head is ``head``."""
        _FIELDS.pack_into(self._shared, 0, 1, head, 0)

    def checked(self, count: int) -> None:
        """``count`` events, from position 1, were read and checked."""
        _CHECKED.pack_into(self._shared, _CHECKED_OFFSET, count)

    def read(self) -> tuple[bool, int, int]:
        """``(started, head, checked)`` as the child last left them."""
        started, head, checked = _FIELDS.unpack(self._shared)
        return bool(started), head, checked


def run_isolated(
    work: Callable[[Progress], int], crashed: Callable[[Progress, str], int]
) -> int:
    """Run ``work`` in a child and return its exit code.

    If a signal other than the user's own interrupt or termination stops
    the child, return what ``crashed`` returns, given the progress and the
    signal's name.
    """
    progress = Progress()
    child = _Child()
    # Installed before the fork, so no interrupt can fall between the two;
    # the child puts the defaults back before it does anything else.
    previous = {number: signal.signal(number, child.forward) for number in _FORWARDED}
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _become_child(parent)
            _run_child(work, progress)
        child.started(pid)
        _, status = os.waitpid(pid, 0)
    finally:
        for forwarded, handler in previous.items():
            signal.signal(forwarded, handler)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    number = os.WTERMSIG(status)
    if number in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
        return 128 + number
    return crashed(progress, _signal_name(number))


def run_reader(log_dir: Path, work: Callable[[], int]) -> int:
    """Run ``work``, which reads the log in ``log_dir``, in a child.

    A child stopped by a signal is reported as damage to that log.
    """

    def crashed(progress: Progress, signal_name: str) -> int:
        reason = f"reading it stopped the reader with {signal_name}"
        print(f"matrix-runtime: {damaged(log_dir, reason)}", file=sys.stderr)
        return EXIT_FAILED

    return run_isolated(lambda progress: work(), crashed)


_FORWARDED: Final = (signal.SIGINT, signal.SIGTERM)


class _Child:
    """Passes an interrupt or termination aimed at the parent on to the child."""

    def __init__(self) -> None:
        self._pid = 0
        self._received: list[int] = []

    def forward(self, number: int, frame: object) -> None:
        if self._pid:
            os.kill(self._pid, number)
        else:
            self._received.append(number)

    def started(self, pid: int) -> None:
        self._pid = pid
        for number in self._received:
            os.kill(pid, number)


def _become_child(parent: int) -> None:
    """Put the signal defaults back, and leave the terminal's signals to the parent.

    In a process group of its own the child gets Ctrl-C once, forwarded by
    the parent, rather than twice; and it is told to end if the parent dies
    first, so a following reader never outlives the command that started it.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setpgid(0, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(EXIT_FAILED)


_PR_SET_PDEATHSIG: Final = 1


def _run_child(work: Callable[[Progress], int], progress: Progress) -> None:
    code = EXIT_FAILED
    try:
        code = work(progress)
    except EventLogError as exc:
        print(f"matrix-runtime: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            with contextlib.suppress(BrokenPipeError):
                sys.stdout.flush()
            sys.stderr.flush()
        finally:
            # Leave at once, even if a late interrupt cut the flush short:
            # the child must not run the parent's exit handlers nor unwind
            # into the code that called run_isolated a second time.
            os._exit(code)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
