"""Tests for the process sandbox: environment, limits, confinement, tree kill."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from runtime import sandbox
from runtime.command_policy import ProgramNotFoundError
from runtime.mcp import open_mcp_client
from runtime.sandbox import (
    SYSTEM_PATH,
    SandboxError,
    SandboxLimits,
    SandboxSpec,
    detect_isolation,
    open_sandboxed_process,
)
from tests.runtime.support import (
    EVERYTHING,
    PROGRAMS_DIR,
    PYTHON,
    SEARCH_PATH,
    TEST_CACHE_DIR,
    ListRecorder,
    command_line,
    is_alive,
    live_pids_in_group_or_session,
    live_pids_with_marker,
    private_dir,
    read_all,
    read_lines,
)

MIB = 1 << 20
BUBBLEWRAP_WORKS = detect_isolation() == "bubblewrap"
ISOLATIONS = [
    "process-group",
    pytest.param(
        "bubblewrap",
        marks=pytest.mark.skipif(
            not BUBBLEWRAP_WORKS, reason="bubblewrap does not work here"
        ),
    ),
]
SPAWN_TREE = str(PROGRAMS_DIR / "spawn_tree.py")


async def run_python(spec_args: dict[str, Any], code: str) -> Any:
    """Run ``python -c code`` in a sandbox and decode the JSON it prints."""
    spec = SandboxSpec(argv=[PYTHON, "-c", code], **spec_args)
    async with open_sandboxed_process(spec) as process:
        output = await read_all(process.stdout)
        await process.wait()
    return json.loads(output)


@pytest.mark.parametrize("isolation", ISOLATIONS)
async def test_sandbox_environment_is_built_from_scratch(
    tmp_path: Path, isolation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child sees only the minimal environment plus the caller's env."""
    monkeypatch.setenv("MATRIX_RUNTIME_API_TOKEN", "operator-token")
    monkeypatch.setenv("MATRIXCLOUD_SECRET_KEY", "secret-key")
    monkeypatch.setenv("DATABASE_URL", "postgres://db")
    work = private_dir(tmp_path / "work")
    cache = tmp_path / "cache"

    env = await run_python(
        {
            "env": {"EXTRA": "1"},
            "work_dir": work,
            "cache_dir": cache,
            "isolation": isolation,
        },
        "import json, os; print(json.dumps(dict(os.environ)))",
    )

    # bubblewrap sets PWD to the directory it changes into.
    pwd = {"PWD": str(work)} if isolation == "bubblewrap" else {}
    assert env == {
        **pwd,
        "PATH": SYSTEM_PATH,
        "HOME": str(work),
        "LANG": "C.UTF-8",
        "TMPDIR": str(work / "tmp"),
        "npm_config_yes": "true",
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "npm_config_cache": str(cache / "npm"),
        "UV_CACHE_DIR": str(cache / "uv"),
        "PIP_CACHE_DIR": str(cache / "pip"),
        "PIPX_HOME": str(cache / "pipx"),
        "EXTRA": "1",
    }


@pytest.mark.parametrize("isolation", ISOLATIONS)
async def test_sandbox_applies_resource_limits(tmp_path: Path, isolation: str) -> None:
    """Each configured limit is the child's soft and hard rlimit."""
    limits = SandboxLimits(
        address_space_bytes=3 << 30,
        open_files=256,
        processes=2048,
        cpu_seconds=120,
        file_size_bytes=10 * MIB,
        core_file_bytes=0,
    )
    code = (
        "import json, resource as r; print(json.dumps({name: r.getrlimit("
        "getattr(r, name)) for name in ['RLIMIT_AS', 'RLIMIT_NOFILE', "
        "'RLIMIT_NPROC', 'RLIMIT_CPU', 'RLIMIT_FSIZE', 'RLIMIT_CORE']}))"
    )
    work = private_dir(tmp_path / "work")

    seen = await run_python(
        {"env": {}, "work_dir": work, "limits": limits, "isolation": isolation}, code
    )

    assert seen == {
        "RLIMIT_AS": [3 << 30, 3 << 30],
        "RLIMIT_NOFILE": [256, 256],
        "RLIMIT_NPROC": [2048, 2048],
        "RLIMIT_CPU": [120, 125],
        "RLIMIT_FSIZE": [10 * MIB, 10 * MIB],
        "RLIMIT_CORE": [0, 0],
    }


async def test_sandbox_limits_are_enforced(tmp_path: Path) -> None:
    """Writing past the file size limit and allocating past memory both fail."""
    limits = SandboxLimits(address_space_bytes=1 << 30, file_size_bytes=1 * MIB)
    code = (
        "import json, errno\n"
        "out = {}\n"
        "try:\n"
        "    open('big.bin', 'wb').write(b'x' * (2 << 20))\n"
        "except OSError as e:\n"
        "    out['write'] = errno.errorcode[e.errno]\n"
        "try:\n"
        "    bytearray(2 << 30)\n"
        "except MemoryError:\n"
        "    out['alloc'] = 'MemoryError'\n"
        "print(json.dumps(out))"
    )
    work = private_dir(tmp_path / "work")

    seen = await run_python({"env": {}, "work_dir": work, "limits": limits}, code)

    assert seen == {"write": "EFBIG", "alloc": "MemoryError"}


@pytest.mark.parametrize("isolation", ISOLATIONS)
async def test_sandbox_runs_in_work_dir(tmp_path: Path, isolation: str) -> None:
    """The work dir is the cwd, holds the temp dir, and receives the files."""
    work = private_dir(tmp_path / "work")
    code = (
        "import json, os, tempfile; open('note.txt', 'w').write('hello'); "
        "print(json.dumps([os.getcwd(), tempfile.gettempdir()]))"
    )

    cwd, tmp = await run_python(
        {"env": {}, "work_dir": work, "isolation": isolation}, code
    )

    assert cwd == str(work)
    assert tmp == str(work / "tmp")
    assert (work / "note.txt").read_text() == "hello"
    assert (work / "tmp").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("isolation", ISOLATIONS)
async def test_sandbox_accepts_relative_dirs(
    tmp_path: Path, isolation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative work and cache dirs are taken from the runtime's cwd."""
    monkeypatch.chdir(tmp_path)
    private_dir(tmp_path / "data" / "work")
    code = "import json, os; print(json.dumps([os.getcwd(), os.environ['HOME']]))"
    spec_args = {
        "env": {},
        "work_dir": Path("data/work"),
        "cache_dir": Path("data/cache"),
        "hidden_dirs": (Path("data"),),
        "isolation": isolation,
    }

    cwd, home = await run_python(spec_args, code)

    assert cwd == home == str(tmp_path / "data" / "work")
    assert (tmp_path / "data" / "cache").is_dir()


@pytest.mark.skipif(not BUBBLEWRAP_WORKS, reason="bubblewrap does not work here")
async def test_sandbox_bubblewrap_confines_the_process(tmp_path: Path) -> None:
    """Under bubblewrap: own pids, read-only system and /tmp, hidden dirs."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret.txt").write_text("do not read")
    (tmp_path / "visible.txt").write_text("seen")
    work = private_dir(data / "mcp" / "job-1")
    cache = tmp_path / "cache"
    code = f"""
import errno, json, os
def attempt(path):
    try:
        open(path, 'w').write('x')
        return 'written'
    except OSError as e:
        return errno.errorcode[e.errno]
caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')]
print(json.dumps({{
    'pid': os.getpid(),
    'hostname': os.uname().nodename,
    'caps': caps[0],
    'system': attempt({str(Path(__file__).parent / "written-by-sandbox")!r}),
    'outside': attempt({str(tmp_path / "outside.txt")!r}),
    'tmp': attempt('/tmp/written-by-sandbox'),
    'work_tmp': attempt(os.path.join(os.environ['TMPDIR'], 'scratch.txt')),
    'visible': open({str(tmp_path / "visible.txt")!r}).read(),
    'cache': attempt({str(cache / "cached.txt")!r}),
    'data': sorted(os.listdir({str(data)!r})),
}}))
"""
    spec_args = {
        "env": {},
        "work_dir": work,
        "cache_dir": cache,
        "isolation": "bubblewrap",
        "hidden_dirs": (data, tmp_path / "absent"),
    }

    seen = await run_python(spec_args, code)

    assert seen == {
        "pid": 2,
        "hostname": "sandbox",
        "caps": "0000000000000000" if os.geteuid() == 0 else seen["caps"],
        "system": "EROFS",
        "outside": "EROFS",
        "tmp": "EROFS",
        "work_tmp": "written",
        "visible": "seen",
        "cache": "written",
        "data": ["mcp"],
    }
    assert not (Path(__file__).parent / "written-by-sandbox").exists()
    assert not (tmp_path / "outside.txt").exists()
    assert (work / "tmp" / "scratch.txt").read_text() == "x"
    assert (cache / "cached.txt").read_text() == "x"


@pytest.mark.parametrize(
    ("isolation", "network", "outcome"),
    [
        pytest.param(
            "bubblewrap",
            "none",
            "ECONNREFUSED",
            marks=pytest.mark.skipif(
                not BUBBLEWRAP_WORKS, reason="bubblewrap does not work here"
            ),
        ),
        pytest.param(
            "bubblewrap",
            "host",
            "connected",
            marks=pytest.mark.skipif(
                not BUBBLEWRAP_WORKS, reason="bubblewrap does not work here"
            ),
        ),
        # Without bubblewrap nothing can take the network away.
        ("process-group", "none", "connected"),
    ],
)
async def test_sandbox_network_reaches_loopback_only_when_shared(
    tmp_path: Path, isolation: str, network: str, outcome: str
) -> None:
    """With network none under bubblewrap, a 127.0.0.1 listener is out of reach."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    code = (
        "import errno, json, socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
        "    print(json.dumps('connected'))\n"
        "except OSError as e:\n"
        "    print(json.dumps(errno.errorcode.get(e.errno, str(e))))\n"
    )
    spec_args = {
        "env": {},
        "work_dir": private_dir(tmp_path / "work"),
        "isolation": isolation,
        "network": network,
    }

    seen = await run_python(spec_args, code)

    await listeners[0].aclose()
    assert seen == outcome


@pytest.mark.skipif(not BUBBLEWRAP_WORKS, reason="bubblewrap does not work here")
def test_sandbox_outlives_the_thread_that_started_it(tmp_path: Path) -> None:
    """A bubblewrap sandbox keeps running after trio's spawning thread exits."""
    work = private_dir(tmp_path / "work")
    script = str(PROGRAMS_DIR / "outlive_spawn_thread.py")

    completed = subprocess.run(
        [PYTHON, script, str(work)],
        capture_output=True,
        cwd=Path(__file__).parents[2],
        timeout=60,
        check=False,
    )

    assert completed.stdout.decode() == "still running\n", completed.stderr.decode()


@pytest.mark.parametrize("isolation", ISOLATIONS)
async def test_sandbox_exit_kills_whole_tree(tmp_path: Path, isolation: str) -> None:
    """Leaving the context kills children that ignore SIGTERM or left the group."""
    marker = f"SANDBOX_TEST_MARK={uuid.uuid4().hex}"
    key, value = marker.split("=")
    spec = SandboxSpec(
        argv=[PYTHON, SPAWN_TREE],
        env={key: value},
        work_dir=private_dir(tmp_path / "work"),
        isolation=isolation,
        kill_grace=0.3,
    )

    async with open_sandboxed_process(spec) as process:
        await read_lines(process.stdout, 4)
        before = live_pids_with_marker(marker)
    after = live_pids_with_marker(marker)

    assert len(before) == (4 if isolation == "process-group" else 6)
    assert after == set()
    assert live_pids_in_group_or_session(process.pid) == set()
    assert process.returncode == -signal.SIGTERM


@pytest.mark.parametrize("isolation", ISOLATIONS)
async def test_sandbox_cancel_kills_whole_tree(tmp_path: Path, isolation: str) -> None:
    """A cancelled caller still leaves no process of the tree behind."""
    marker = f"SANDBOX_TEST_MARK={uuid.uuid4().hex}"
    key, value = marker.split("=")
    spec = SandboxSpec(
        argv=[PYTHON, SPAWN_TREE],
        env={key: value},
        work_dir=private_dir(tmp_path / "work"),
        isolation=isolation,
        kill_grace=0.3,
    )
    before: set[int] = set()

    with trio.CancelScope() as scope:
        async with open_sandboxed_process(spec) as process:
            await read_lines(process.stdout, 4)
            before = live_pids_with_marker(marker)
            scope.cancel()
            await trio.sleep_forever()

    assert scope.cancelled_caught
    assert len(before) >= 4
    assert live_pids_with_marker(marker) == set()
    assert live_pids_in_group_or_session(process.pid) == set()


async def test_sandbox_kill_tree_is_idempotent(tmp_path: Path) -> None:
    """kill_tree() stops the tree at once and can be called again."""
    marker = f"SANDBOX_TEST_MARK={uuid.uuid4().hex}"
    key, value = marker.split("=")
    spec = SandboxSpec(
        argv=[PYTHON, SPAWN_TREE],
        env={key: value},
        work_dir=private_dir(tmp_path / "work"),
        kill_grace=0.3,
    )

    async with open_sandboxed_process(spec) as process:
        await read_lines(process.stdout, 4)
        await process.kill_tree()
        remaining = live_pids_with_marker(marker)
        await process.kill_tree()
        status = await process.wait()

    assert remaining == set()
    assert status == -signal.SIGTERM


async def test_sandbox_reports_normal_exit(tmp_path: Path) -> None:
    """A command that ends by itself leaves its exit status."""
    spec = SandboxSpec(
        argv=[PYTHON, "-c", "import sys; sys.exit(7)"],
        env={},
        work_dir=private_dir(tmp_path / "work"),
    )

    async with open_sandboxed_process(spec) as process:
        status = await process.wait()

    assert status == 7
    assert process.returncode == 7


async def test_sandbox_resolves_bare_program_on_search_path(tmp_path: Path) -> None:
    """A bare argv[0] is resolved to an absolute path before it runs."""
    spec = SandboxSpec(
        argv=[Path(PYTHON).name, "-c", "print(1)"],
        env={},
        work_dir=private_dir(tmp_path / "work"),
        search_path=str(Path(PYTHON).parent),
    )

    async with open_sandboxed_process(spec) as process:
        output = await read_all(process.stdout)

    assert process.command == [PYTHON, "-c", "print(1)"]
    assert output == b"1\n"


async def test_sandbox_reports_missing_program(tmp_path: Path) -> None:
    """A bare program that is not installed is a clear error."""
    spec = SandboxSpec(
        argv=["uvx", "some-server"],
        env={},
        work_dir=private_dir(tmp_path / "work"),
        search_path=str(tmp_path),
    )

    with pytest.raises(ProgramNotFoundError) as caught:
        async with open_sandboxed_process(spec):
            pass

    assert str(caught.value) == 'program "uvx" is not installed on this runtime'


async def test_sandbox_requires_existing_work_dir(tmp_path: Path) -> None:
    """The caller creates the work dir; a missing one is refused."""
    spec = SandboxSpec(argv=[PYTHON], env={}, work_dir=tmp_path / "missing")

    with pytest.raises(SandboxError) as caught:
        async with open_sandboxed_process(spec):
            pass

    assert str(caught.value) == f"work directory {tmp_path / 'missing'} does not exist"


async def test_sandbox_reports_program_that_cannot_start(tmp_path: Path) -> None:
    """A program that cannot be executed is a SandboxError naming it."""
    program = tmp_path / "not-executable"
    program.write_text("")
    spec = SandboxSpec(
        argv=[str(program)],
        env={},
        work_dir=private_dir(tmp_path / "work"),
        isolation="process-group",
    )

    with pytest.raises(SandboxError) as caught:
        async with open_sandboxed_process(spec):
            pass

    assert str(caught.value) == (
        f"could not start {program}: [Errno 13] Permission denied: '{program}'"
    )


def test_detect_isolation_without_bwrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No bwrap on the system path means process-group isolation."""
    monkeypatch.setattr(sandbox, "SYSTEM_PATH", str(tmp_path))
    detect_isolation.cache_clear()

    try:
        result = detect_isolation()
    finally:
        detect_isolation.cache_clear()

    assert result == "process-group"


def test_detect_isolation_when_bwrap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bwrap that fails (no user namespaces) means process-group isolation."""
    fake = tmp_path / "bwrap"
    fake.write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    true = shutil.which("true")
    assert true is not None
    (tmp_path / "true").symlink_to(true)
    monkeypatch.setattr(sandbox, "SYSTEM_PATH", str(tmp_path))
    detect_isolation.cache_clear()

    try:
        result = detect_isolation()
    finally:
        detect_isolation.cache_clear()

    assert result == "process-group"


def test_detect_isolation_uses_working_bwrap() -> None:
    """Where a plain bwrap runs, the probe with the sandbox's options passes."""
    bwrap = shutil.which("bwrap", path=SYSTEM_PATH)
    if bwrap is None:
        pytest.skip("bwrap is not installed")
    plain = subprocess.run(
        [bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--proc", "/proc", "true"],
        capture_output=True,
        check=False,
    )
    if plain.returncode != 0:
        pytest.skip("bwrap cannot create namespaces here")
    detect_isolation.cache_clear()

    result = detect_isolation()

    assert result == "bubblewrap"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npx") is None, reason="npx is not installed")
@pytest.mark.parametrize("isolation", ISOLATIONS)
async def test_sandbox_npx_everything_leaves_no_process(
    tmp_path: Path, isolation: str
) -> None:
    """npx and the node server it starts both die when the sandbox closes."""
    marker = f"SANDBOX_TEST_MARK={uuid.uuid4().hex}"
    key, value = marker.split("=")
    spec = SandboxSpec(
        argv=["npx", "-y", EVERYTHING],
        env={key: value},
        work_dir=private_dir(tmp_path / "work"),
        cache_dir=TEST_CACHE_DIR,
        isolation=isolation,
        search_path=SEARCH_PATH,
        # npx -y may have to download the package.
        network="host",
    )

    async with open_sandboxed_process(spec) as process:
        async with open_mcp_client(process, ListRecorder()) as client:
            await client.initialize()
        before = live_pids_with_marker(marker)
        commands = [command_line(pid) for pid in before]

    # npm exec starts the real server as a separate node process; it is the
    # one a SIGTERM to npx alone would leave running.
    assert any(c.startswith("node ") and "mcp-server-everything" in c for c in commands)
    assert live_pids_with_marker(marker) == set()
    assert live_pids_in_group_or_session(process.pid) == set()
    assert [pid for pid in before if is_alive(pid)] == []
