"""Resource limits of sandboxed commands: with ``prlimit`` and without it."""

from __future__ import annotations

import json
import resource
import shutil
from pathlib import Path

import pytest

from runtime import rlimits
from runtime.rlimits import limited_command, resolve_limits
from runtime.sandbox import SandboxLimits, SandboxSpec, open_sandboxed_process
from tests.runtime.support import PYTHON, private_dir, read_all

MIB = 1 << 20
LIMITS_CODE = (
    "import json, resource as r; print(json.dumps({name: r.getrlimit("
    "getattr(r, name)) for name in ['RLIMIT_AS', 'RLIMIT_NOFILE', 'RLIMIT_CPU']}))"
)
HAS_PRLIMIT = shutil.which("prlimit", path=rlimits.SYSTEM_PATH) is not None


def test_resolve_limits_skips_unset_and_adds_the_margin() -> None:
    """``None`` leaves a resource alone; the margin lifts only the hard limit."""
    wanted = [
        (resource.RLIMIT_CPU, 120, 5),
        (resource.RLIMIT_CORE, None, 0),
        (resource.RLIMIT_FSIZE, 10 * MIB, 0),
    ]

    limits = resolve_limits(wanted)

    assert limits == [
        (resource.RLIMIT_CPU, 120, 125),
        (resource.RLIMIT_FSIZE, 10 * MIB, 10 * MIB),
    ]


def test_resolve_limits_never_exceeds_the_runtime_hard_limit() -> None:
    """A value above the runtime's own hard limit is lowered to it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    limits = resolve_limits([(resource.RLIMIT_NOFILE, hard + 1000, 0)])

    assert limits == [(resource.RLIMIT_NOFILE, hard, hard)]


@pytest.mark.skipif(not HAS_PRLIMIT, reason="prlimit is not installed")
def test_limited_command_puts_prlimit_in_front() -> None:
    """With prlimit the limits become its options and no preexec_fn is needed."""
    limits = [(resource.RLIMIT_NOFILE, 256, 256), (resource.RLIMIT_CPU, 120, 125)]

    argv, preexec_fn = limited_command([PYTHON, "-V"], limits)

    prlimit = shutil.which("prlimit", path=rlimits.SYSTEM_PATH)
    assert argv == [prlimit, "--nofile=256:256", "--cpu=120:125", "--", PYTHON, "-V"]
    assert preexec_fn is None


def test_limited_command_without_limits_is_the_command() -> None:
    """No limits: the command as it is, started without a preexec_fn."""
    argv, preexec_fn = limited_command([PYTHON, "-V"], [])

    assert (argv, preexec_fn) == ([PYTHON, "-V"], None)


@pytest.mark.skipif(not HAS_PRLIMIT, reason="prlimit is not installed")
def test_limited_command_reports_a_program_that_cannot_run(tmp_path: Path) -> None:
    """The exec error the program would cause is raised before prlimit runs."""
    program = tmp_path / "not-executable"
    program.write_text("")

    with pytest.raises(PermissionError) as denied:
        limited_command([str(program)], [(resource.RLIMIT_CORE, 0, 0)])
    with pytest.raises(FileNotFoundError) as missing:
        limited_command([str(tmp_path / "gone")], [(resource.RLIMIT_CORE, 0, 0)])

    assert str(denied.value) == f"[Errno 13] Permission denied: '{program}'"
    assert str(missing.value) == (
        f"[Errno 2] No such file or directory: '{tmp_path / 'gone'}'"
    )


@pytest.mark.parametrize("with_prlimit", [True, False])
async def test_sandbox_limits_hold_with_and_without_prlimit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_prlimit: bool
) -> None:
    """Both ways of setting limits give the child the same limits."""
    if with_prlimit and not HAS_PRLIMIT:
        pytest.skip("prlimit is not installed")
    if not with_prlimit:
        monkeypatch.setattr(rlimits, "_prlimit", lambda: None)
    limits = SandboxLimits(address_space_bytes=3 << 30, open_files=256, cpu_seconds=120)
    spec = SandboxSpec(
        argv=[PYTHON, "-c", LIMITS_CODE],
        env={},
        work_dir=private_dir(tmp_path / "work"),
        limits=limits,
        isolation="process-group",
    )

    async with open_sandboxed_process(spec) as process:
        output = await read_all(process.stdout)
        await process.wait()

    assert json.loads(output) == {
        "RLIMIT_AS": [3 << 30, 3 << 30],
        "RLIMIT_NOFILE": [256, 256],
        "RLIMIT_CPU": [120, 125],
    }
