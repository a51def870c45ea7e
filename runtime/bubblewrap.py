"""bubblewrap (``bwrap``) command lines for the process sandbox.

The sandboxed command gets its own pid, IPC, UTS and (unless the host's
network is asked for) network namespaces, a read-only view of the whole
system, its own ``/proc`` and ``/dev``, and writable binds of only its work
directory and the shared package cache. ``/tmp`` is part of the read-only
view, not a private tmpfs: a checkout, virtual environment or script kept
under ``/tmp`` (CI clones often are) must stay visible to the server, which
gets its temporary directory inside its work directory instead (``TMPDIR``).
Hidden directories (the runtime's data directory) are replaced by empty ones.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

PROBE_TIMEOUT = 10.0


def probe(bwrap: str, true: str, system_path: str) -> str | None:
    """Run ``true`` under bubblewrap with the sandbox's namespaces.

    The network namespace is included: it is what sandboxes get by default,
    and a bubblewrap that cannot create one is not used at all rather than
    failing every job that asks for it.

    Args:
        bwrap: The absolute path of ``bwrap``.
        true: The absolute path of ``true``.
        system_path: The PATH given to the probe.

    Returns:
        ``None`` when it worked, else why not.
    """
    command = [*_base(bwrap), "--unshare-net", "--", true]
    try:
        completed = subprocess.run(
            command,
            env={"PATH": system_path},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if completed.returncode != 0:
        stderr = completed.stderr.decode(errors="replace").strip()
        return f"exit status {completed.returncode}: {stderr}"
    return None


def wrap_command(
    bwrap: str,
    command: Sequence[str],
    *,
    work_dir: Path,
    cache_dir: Path | None,
    hidden_dirs: Sequence[Path],
    share_network: bool,
) -> list[str]:
    """The argv that runs ``command`` (absolute program) inside bubblewrap.

    Args:
        bwrap: The absolute path of ``bwrap``.
        command: The command; ``command[0]`` is an absolute path.
        work_dir: Bound writable, and the working directory.
        cache_dir: Bound writable when given.
        hidden_dirs: Replaced by empty directories; missing ones are skipped.
        share_network: Keep the runtime's network namespace.
    """
    argv = _base(bwrap)
    if not share_network:
        argv.append("--unshare-net")
    hidden = [path for path in hidden_dirs if path.is_dir()]
    for path in hidden:
        argv += ["--tmpfs", str(path)]
    # The program's own installation (a virtualenv, say) may live inside a
    # hidden directory; it stays visible, read-only.
    for program in (Path(command[0]), Path(os.path.realpath(command[0]))):
        prefix = _install_prefix(program)
        if any(prefix.is_relative_to(root) for root in hidden):
            argv += ["--ro-bind", str(prefix), str(prefix)]
    argv += ["--bind", str(work_dir), str(work_dir)]
    if cache_dir is not None:
        argv += ["--bind", str(cache_dir), str(cache_dir)]
    return [*argv, "--chdir", str(work_dir), "--", *command]


def _base(bwrap: str) -> list[str]:
    # No --die-with-parent: its PR_SET_PDEATHSIG fires when the *thread*
    # that forked bwrap exits, and trio forks from a cached worker thread
    # that exits after 10 s idle, which killed every sandbox about 10 s
    # after it started. So a runtime that crashes (SIGKILL, power loss of
    # the process, a bug that skips the shielded kill) leaves its sandboxes
    # running until the runtime starts again: recovery then kills every
    # process working inside an interrupted job's sandbox directory, which
    # includes bubblewrap's own init and so the whole pid namespace
    # (actors/leftovers.py). Between the crash and that start they run on.
    base = [
        bwrap,
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "sandbox",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ]
    if os.geteuid() == 0:
        # Run as root, bubblewrap keeps every capability unless told not to,
        # and CAP_SYS_ADMIN would let the server remount the system writable.
        # The server still runs as uid 0 and can read root-owned files in the
        # read-only view, which is why the data directory is hidden.
        base += ["--cap-drop", "ALL"]
    return base


def _install_prefix(program: Path) -> Path:
    parent = program.parent
    return parent.parent if parent.name == "bin" else parent
