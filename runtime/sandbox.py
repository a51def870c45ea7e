"""The process sandbox that MCP servers run in.

A server is started without a shell, in its own session and process group,
in a private working directory, with resource limits and with an environment
built from scratch: nothing of the runtime's own environment (API tokens,
database URLs, keys) reaches it. Where a working ``bwrap`` (bubblewrap) is
installed the process also gets its own pid, IPC and UTS namespaces, a
read-only view of the system (``/tmp`` included) in which only its working
directory and the shared package cache are writable, and, unless the spec
asks for the host's network, a network namespace of its own with nothing but
a loopback device. Without bubblewrap the network cannot be restricted.

Leaving :func:`open_sandboxed_process`, for any reason including
cancellation, kills the whole process tree: SIGTERM to the group and every
descendant, a short grace, then SIGKILL. Under bubblewrap the pid namespace
dies with its init as well, which also takes processes that left the group;
without it, a process that detached itself (``setsid`` and a parent that
exited before the kill) is out of reach.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import resource
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import trio

from runtime import bubblewrap

# SYSTEM_PATH is defined with the policy, which needs it too; re-exported.
from runtime.command_policy import SYSTEM_PATH as SYSTEM_PATH
from runtime.command_policy import resolve_program
from runtime.process_tree import ProcessTree
from runtime.rlimits import Limit, limited_command, resolve_limits

logger = logging.getLogger(__name__)

ISOLATION_BUBBLEWRAP: Final = "bubblewrap"
ISOLATION_PROCESS_GROUP: Final = "process-group"
NETWORK_NONE: Final = "none"
NETWORK_HOST: Final = "host"
NETWORK_CHOICES: Final = (NETWORK_NONE, NETWORK_HOST)
GIB: Final = 1 << 30

# After SIGKILL the kernel still needs a moment to tear processes down; this
# bounds how long closing waits for that before it gives up and logs.
KILL_WAIT: Final = 5.0


class SandboxError(Exception):
    """The sandbox could not be set up or the command could not be started."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits applied to the sandboxed process and its children.

    ``None`` leaves a limit as the runtime has it. A limit is never raised
    above the runtime's own hard limit. The defaults let Node.js (whose V8
    reserves a lot of address space) and Python servers run normally.

    Attributes:
        address_space_bytes: Virtual memory per process (RLIMIT_AS).
        open_files: Open file descriptors per process (RLIMIT_NOFILE).
        processes: Processes and threads of the runtime's user, all
            sandboxes together (RLIMIT_NPROC; the kernel does not enforce it
            for root).
        cpu_seconds: CPU time per process (RLIMIT_CPU); SIGXCPU at the
            limit, SIGKILL five seconds later.
        file_size_bytes: Largest file a process may write (RLIMIT_FSIZE).
        core_file_bytes: Largest core dump (RLIMIT_CORE); 0 writes none.
    """

    address_space_bytes: int | None = 4 * GIB
    open_files: int | None = 4096
    processes: int | None = 4096
    cpu_seconds: int | None = 600
    file_size_bytes: int | None = 1 * GIB
    core_file_bytes: int | None = 0


@dataclass(frozen=True)
class SandboxSpec:
    """What to run and how to confine it.

    Attributes:
        argv: The command. A bare ``argv[0]`` is resolved on ``search_path``.
        env: The caller's extra environment, already validated by the
            command policy; added last to the minimal environment.
        work_dir: The private working directory, created 0700 by the caller;
            also the home directory.
        limits: Resource limits.
        cache_dir: A package cache shared by sandboxes (npm, uv, pip), so
            ``npx -y`` does not download the same package every time. Every
            sandbox can write to it, so one server can alter what another
            one later installs from it.
        isolation: ``"auto"`` (bubblewrap when it works, else
            process-group), ``"bubblewrap"`` or ``"process-group"``.
        hidden_dirs: Directories replaced by an empty one under bubblewrap,
            such as the runtime's data directory; the work and cache
            directories stay visible inside them. Missing ones are skipped.
        network: ``"none"``: under bubblewrap, a network namespace with only
            its own loopback, so not even services on the runtime's
            127.0.0.1 are reachable. ``"host"``: the runtime's network
            (needed by ``npx -y`` and ``uvx`` to download a package that is
            not in the cache yet). Process-group isolation always shares the
            host's network, whatever this says.
        kill_grace: Seconds between SIGTERM and SIGKILL when closing.
        search_path: Where a bare ``argv[0]`` is looked up; the runtime's
            own PATH when ``None``.
    """

    argv: list[str]
    env: Mapping[str, str]
    work_dir: Path
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    cache_dir: Path | None = None
    isolation: str = "auto"
    hidden_dirs: tuple[Path, ...] = ()
    network: str = NETWORK_NONE
    kill_grace: float = 2.0
    search_path: str | None = None


class SandboxedProcess:
    """A running sandboxed command.

    Attributes:
        pid: The pid of the started process (``bwrap`` under bubblewrap); also
            its process group and session id.
        isolation: ``"bubblewrap"`` or ``"process-group"``.
        command: The command as run inside the sandbox, program resolved.
        stdin: The write end of its standard input.
        stdout: The read end of its standard output.
        stderr: The read end of its standard error.
    """

    def __init__(
        self, process: trio.Process, isolation: str, command: list[str], grace: float
    ) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        self.pid: int = process.pid
        self.isolation = isolation
        self.command = command
        self.stdin: trio.abc.SendStream = process.stdin
        self.stdout: trio.abc.ReceiveStream = process.stdout
        self.stderr: trio.abc.ReceiveStream = process.stderr
        self._process = process
        self._tree = ProcessTree(process.pid)
        self._grace = grace
        self._kill_lock = trio.Lock()
        self._tree_gone = False

    @property
    def returncode(self) -> int | None:
        """The exit status, negative for a signal, or ``None`` while running."""
        return self._process.returncode

    async def wait(self) -> int:
        """Wait for the started process itself to exit and return its status."""
        return await self._process.wait()

    def tree_pids(self) -> set[int]:
        """The live processes of this sandbox's tree (see :mod:`process_tree`)."""
        return self._tree.scan()

    async def kill_tree(self, grace: float | None = None) -> None:
        """Stop every process of the tree and reap the started process.

        Closes stdin, sends SIGTERM to the process group and every
        descendant, waits up to ``grace`` seconds for the tree to exit, then
        sends SIGKILL until it is gone. Calling it again is a no-op.

        Args:
            grace: Seconds to wait after SIGTERM; the spec's ``kill_grace``
                when ``None``.
        """
        async with self._kill_lock:
            if self._tree_gone:
                return
            grace = self._grace if grace is None else grace
            await _close_quietly(self.stdin)

            self._tree.send_signal(signal.SIGTERM)
            if not await self._tree.wait_gone(grace):
                logger.info("sandbox tree outlived SIGTERM pid=%s", self.pid)
                self._tree.send_signal(signal.SIGKILL)
                if not await self._tree.wait_gone(KILL_WAIT, resend=signal.SIGKILL):
                    logger.warning(
                        "sandbox tree still alive after SIGKILL pid=%s pids=%s",
                        self.pid,
                        sorted(self.tree_pids()),
                    )
            await self._process.wait()
            self._tree_gone = True


@functools.cache
def detect_isolation() -> str:
    """Return the strongest isolation that works on this machine.

    Tries to run ``true`` under bubblewrap once, with the namespaces the
    sandbox uses: containers often forbid the user namespaces that
    unprivileged bubblewrap needs. The answer is cached for the process.

    Returns:
        ``"bubblewrap"`` or ``"process-group"``.
    """
    bwrap = shutil.which("bwrap", path=SYSTEM_PATH)
    true = shutil.which("true", path=SYSTEM_PATH)
    if bwrap is None or true is None:
        logger.info("isolation detected isolation=%s reason=no-bwrap", "process-group")
        return ISOLATION_PROCESS_GROUP
    problem = bubblewrap.probe(bwrap, true, SYSTEM_PATH)
    if problem is not None:
        logger.warning("bubblewrap unusable reason=%s", problem)
        return ISOLATION_PROCESS_GROUP
    logger.info("isolation detected isolation=%s", ISOLATION_BUBBLEWRAP)
    return ISOLATION_BUBBLEWRAP


def network_in_force(isolation: str, network: str) -> str:
    """The network a sandbox really gets: only bubblewrap can take it away.

    Args:
        isolation: ``"bubblewrap"`` or ``"process-group"``.
        network: The network asked for, ``"none"`` or ``"host"``.

    Returns:
        ``"none"`` or ``"host"``.
    """
    return network if isolation == ISOLATION_BUBBLEWRAP else NETWORK_HOST


def build_environment(spec: SandboxSpec) -> dict[str, str]:
    """Build the complete environment of the sandboxed process from scratch.

    Args:
        spec: The sandbox spec; its ``env`` is added last.

    Returns:
        The minimal environment: system PATH, home and temporary directory in
        the work directory, package manager settings, then the caller's env.
        (bubblewrap adds PWD, the work directory, when it changes into it.)
    """
    work_dir = spec.work_dir
    env = {
        "PATH": SYSTEM_PATH,
        "HOME": str(work_dir),
        "LANG": "C.UTF-8",
        "TMPDIR": str(work_dir / "tmp"),
        "npm_config_yes": "true",
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }
    if spec.cache_dir is not None:
        env["npm_config_cache"] = str(spec.cache_dir / "npm")
        env["UV_CACHE_DIR"] = str(spec.cache_dir / "uv")
        env["PIP_CACHE_DIR"] = str(spec.cache_dir / "pip")
        env["PIPX_HOME"] = str(spec.cache_dir / "pipx")
    env.update(spec.env)
    return env


@asynccontextmanager
async def open_sandboxed_process(spec: SandboxSpec) -> AsyncIterator[SandboxedProcess]:
    """Start ``spec.argv`` in the sandbox; kill its whole tree on exit.

    Args:
        spec: What to run and how to confine it.

    Yields:
        The running process with its pipes.

    Raises:
        SandboxError: When the work directory is missing, bubblewrap was
            required but does not work, or the program cannot be started.
        ProgramNotFoundError: When a bare program name is not installed.
    """
    isolation = _choose_isolation(spec.isolation)
    if spec.network not in NETWORK_CHOICES:
        raise SandboxError(f'unknown network "{spec.network}"')
    # Absolute from here on: bubblewrap and the child resolve relative paths
    # against the work directory, not against the runtime's cwd.
    spec = dataclasses.replace(
        spec,
        work_dir=spec.work_dir.resolve(),
        cache_dir=None if spec.cache_dir is None else spec.cache_dir.resolve(),
        hidden_dirs=tuple(path.resolve() for path in spec.hidden_dirs),
    )
    command = list(spec.argv)
    if not command:
        raise SandboxError("empty command")
    if not os.path.isabs(command[0]):
        command[0] = resolve_program(command[0], spec.search_path)
    _prepare_dirs(spec)
    argv = command
    if isolation == ISOLATION_BUBBLEWRAP:
        bwrap = shutil.which("bwrap", path=SYSTEM_PATH)
        assert bwrap is not None  # detect_isolation() found it
        argv = bubblewrap.wrap_command(
            bwrap,
            command,
            work_dir=spec.work_dir,
            cache_dir=spec.cache_dir,
            hidden_dirs=spec.hidden_dirs,
            share_network=spec.network == NETWORK_HOST,
        )

    try:
        argv, preexec_fn = limited_command(argv, _wanted_limits(spec.limits))
        process = await trio.lowlevel.open_process(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=build_environment(spec),
            cwd=str(spec.work_dir),
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        # SubprocessError: setting a resource limit failed in the child.
        raise SandboxError(f"could not start {command[0]}: {exc}") from exc
    sandboxed = SandboxedProcess(process, isolation, command, spec.kill_grace)
    logger.info(
        "sandbox started pid=%s isolation=%s network=%s program=%s",
        sandboxed.pid,
        isolation,
        network_in_force(isolation, spec.network),
        command[0],
    )

    try:
        yield sandboxed
    finally:
        # Shielded: this runs when the caller's scope is being cancelled
        # (job cancelled, TTL expired, shutdown), and that is exactly when
        # the tree must die. The deadline keeps a stuck kill from hanging
        # the caller forever.
        with trio.CancelScope(shield=True):
            with trio.move_on_after(spec.kill_grace + KILL_WAIT + 1.0):
                await sandboxed.kill_tree()
            await _close_quietly(sandboxed.stdout)
            await _close_quietly(sandboxed.stderr)
        logger.info(
            "sandbox closed pid=%s returncode=%s", sandboxed.pid, sandboxed.returncode
        )


def _choose_isolation(requested: str) -> str:
    if requested == "auto":
        return detect_isolation()
    if requested == ISOLATION_PROCESS_GROUP:
        return requested
    if requested == ISOLATION_BUBBLEWRAP:
        if detect_isolation() != ISOLATION_BUBBLEWRAP:
            raise SandboxError("bubblewrap isolation requested but bwrap does not work")
        return requested
    raise SandboxError(f'unknown isolation "{requested}"')


def _prepare_dirs(spec: SandboxSpec) -> None:
    if not spec.work_dir.is_dir():
        raise SandboxError(f"work directory {spec.work_dir} does not exist")
    (spec.work_dir / "tmp").mkdir(mode=0o700, exist_ok=True)
    if spec.cache_dir is not None:
        spec.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def _wanted_limits(limits: SandboxLimits) -> list[Limit]:
    return resolve_limits(
        (
            (resource.RLIMIT_AS, limits.address_space_bytes, 0),
            (resource.RLIMIT_NOFILE, limits.open_files, 0),
            (resource.RLIMIT_NPROC, limits.processes, 0),
            (resource.RLIMIT_CPU, limits.cpu_seconds, 5),
            (resource.RLIMIT_FSIZE, limits.file_size_bytes, 0),
            (resource.RLIMIT_CORE, limits.core_file_bytes, 0),
        )
    )


async def _close_quietly(stream: trio.abc.AsyncResource) -> None:
    with contextlib.suppress(
        trio.BrokenResourceError, trio.ClosedResourceError, OSError
    ):
        await stream.aclose()
