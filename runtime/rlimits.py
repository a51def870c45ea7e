"""Putting resource limits on a command the sandbox is about to start.

The limits must hold from the command's first instruction, so they are set
before it runs, never applied to it afterwards. Where util-linux ``prlimit``
is installed it is started in front of the command: it sets the limits on
itself and then executes the command in the same process. That lets the
runtime start children without a Python ``preexec_fn``, which forces a full
``fork()`` of the runtime (copying its page tables: 10 to 20 ms per start)
where ``vfork()`` otherwise takes well under a millisecond. Without
``prlimit`` the limits are set between fork and exec, as before.
"""

from __future__ import annotations

import errno
import functools
import os
import resource
import shutil
from collections.abc import Callable, Sequence
from typing import Final

SYSTEM_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Limit = tuple[int, int, int]
"""``(resource, soft, hard)`` as ``setrlimit`` takes them."""

_PRLIMIT_OPTIONS: Final = {
    resource.RLIMIT_AS: "--as",
    resource.RLIMIT_NOFILE: "--nofile",
    resource.RLIMIT_NPROC: "--nproc",
    resource.RLIMIT_CPU: "--cpu",
    resource.RLIMIT_FSIZE: "--fsize",
    resource.RLIMIT_CORE: "--core",
}


def resolve_limits(wanted: Sequence[tuple[int, int | None, int]]) -> list[Limit]:
    """The soft and hard values to set, never above this process's hard limits.

    A child starts with the runtime's own limits, so computing them here
    gives what computing them in the child would.

    Args:
        wanted: ``(resource, value, hard margin)``; a ``None`` value leaves
            that resource as the runtime has it. The hard limit is the value
            plus the margin (a margin lets SIGXCPU arrive before SIGKILL).
    """
    limits: list[Limit] = []
    for kind, value, hard_margin in wanted:
        if value is None:
            continue
        _, hard = resource.getrlimit(kind)
        soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
        new_hard = soft + hard_margin
        if hard != resource.RLIM_INFINITY:
            new_hard = min(new_hard, hard)
        limits.append((kind, soft, new_hard))
    return limits


def limited_command(
    argv: Sequence[str], limits: Sequence[Limit]
) -> tuple[list[str], Callable[[], None] | None]:
    """How to start ``argv`` so that ``limits`` hold from its start.

    Returns:
        The argv to start, and a ``preexec_fn`` (``None`` when ``prlimit``
        sets the limits, so the child can be started with ``vfork``).

    Raises:
        OSError: ``argv[0]`` cannot be executed, as starting it would say.
    """
    if not limits:
        return list(argv), None
    prlimit = _prlimit()
    if prlimit is None:
        return list(argv), functools.partial(set_limits, list(limits))
    # prlimit executes the program, so a program that cannot run would only
    # show as prlimit exiting; checking first keeps it a start-up error.
    _check_executable(argv[0])
    options = [f"{_PRLIMIT_OPTIONS[kind]}={soft}:{hard}" for kind, soft, hard in limits]
    return [prlimit, *options, "--", *argv], None


def set_limits(limits: Sequence[Limit]) -> None:
    """Set ``limits`` on the calling process (in a child before exec)."""
    for kind, soft, hard in limits:
        resource.setrlimit(kind, (soft, hard))


def _check_executable(program: str) -> None:
    if not os.path.exists(program):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    if os.path.isdir(program) or not os.access(program, os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)


@functools.cache
def _prlimit() -> str | None:
    return shutil.which("prlimit", path=SYSTEM_PATH)
