"""The ``verify`` and ``events`` commands, run as the installed console script."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
import trio

from eventlog import LmdbStorage, NewEvent, RecordedEvent
from eventlog.chain import HASH_SIZE
from eventlog.schemas import new_event
from eventlog.vocabulary.system import RuntimeStarted
from tests.eventlog.support import (
    LOG_PROCESS,
    TIMEOUT,
    LineReader,
    child_command,
    event,
    flip_byte,
    raw_get,
    raw_put,
    read_everything,
    running_log,
    u64,
)

CLI: Final = Path(sys.executable).parent / "matrix-runtime"
EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def cli_env() -> dict[str, str]:
    """The test's environment without any runtime setting that could leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MATRIX_RUNTIME_")}


async def run_cli(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    """Run ``matrix-runtime`` to completion and capture both outputs."""
    with trio.fail_after(TIMEOUT * 2):
        return await trio.run_process(
            [str(CLI), *map(str, args)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=cli_env(),
        )


async def write_log(
    data_dir: Path, appends: list[tuple[str, list[NewEvent]]]
) -> list[RecordedEvent]:
    """Create the log of ``data_dir`` with ``appends``; return what it stored."""
    async with running_log(LmdbStorage(data_dir / "log")) as event_log:
        for stream, events in appends:
            await event_log.append(stream, events)
        return await read_everything(event_log)


def expected_line(stored: RecordedEvent, data: str) -> str:
    """The JSON line ``events`` must print, with ``data`` as literal JSON."""
    moment = EPOCH + dt.timedelta(microseconds=stored.recorded_at_ns // 1000)
    time = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return (
        f'{{"position":{stored.position},"stream":"{stored.stream}",'
        f'"version":{stored.version},"type":"{stored.type}",'
        f'"time":"{time}","data":{data}}}'
    )


STARTED = RuntimeStarted(runtime_id="rt_local", version="0.1.0", pid=4242)
APPENDS = [
    ("$system", [new_event(STARTED)]),
    ("job-1", [event({"step": "queue"}), event({"step": "ready"})]),
    ("job-2", [event("only")]),
    ("job-1", [NewEvent(type="future.kind", data=msgspec.msgpack.encode([1, None]))]),
]
DATA = [
    '{"runtime_id":"rt_local","version":"0.1.0","pid":4242}',
    '{"step":"queue"}',
    '{"step":"ready"}',
    '"only"',
    "[1,null]",
]


async def test_cli_verify_clean_log_prints_head_and_ok(tmp_path: Path) -> None:
    """``verify`` on an intact log prints its head hash and exits 0."""
    await write_log(tmp_path, APPENDS)
    last = raw_get(tmp_path / "log", b"log", u64(5))
    assert last is not None

    done = await run_cli("verify", "--data-dir", tmp_path)

    assert done.returncode == 0
    assert done.stdout.decode() == (
        f"head 5 {last[:HASH_SIZE].hex()}\n"
        "ok: 5 events, chain, indexes and pages verified\n"
    )
    assert done.stderr == b""


async def test_cli_verify_tampered_log_names_position(tmp_path: Path) -> None:
    """``verify`` names the altered event and exits 1."""
    await write_log(tmp_path, APPENDS)
    last = raw_get(tmp_path / "log", b"log", u64(5))
    assert last is not None
    flip_byte(tmp_path / "log", 3, 0)

    done = await run_cli("verify", "--data-dir", tmp_path)

    assert done.returncode == 1
    assert done.stdout.decode() == (
        f"head 5 {last[:HASH_SIZE].hex()}\n"
        "bad: position 3: stored hash does not match the event's bytes\n"
    )


async def test_cli_verify_stray_index_entry_is_reported(tmp_path: Path) -> None:
    """Index damage with no position to name is reported as such."""
    await write_log(tmp_path, APPENDS)
    raw_put(tmp_path / "log", b"heads", b"job-9", u64(1))

    done = await run_cli("verify", "--data-dir", tmp_path)

    assert done.returncode == 1
    assert done.stdout.decode().splitlines()[1] == (
        "bad: indexes: indexes hold entries for events that are not in the log"
    )


async def test_cli_verify_without_log_fails_cleanly(tmp_path: Path) -> None:
    """A data directory with no log is an error message, not a traceback."""
    done = await run_cli("verify", "--data-dir", tmp_path)

    assert done.returncode == 1
    assert done.stdout == b""
    assert (
        done.stderr.decode() == f"matrix-runtime: {tmp_path}/log holds no event log\n"
    )


async def test_cli_events_prints_every_event_as_json(tmp_path: Path) -> None:
    """``events`` prints one exact JSON line per event, in position order."""
    stored = await write_log(tmp_path, APPENDS)

    done = await run_cli("events", "--data-dir", tmp_path)

    assert done.returncode == 0
    assert done.stdout.decode().splitlines() == [
        expected_line(e, data) for e, data in zip(stored, DATA, strict=True)
    ]
    assert done.stderr == b""


async def test_cli_events_filters_by_stream_and_after(tmp_path: Path) -> None:
    """``--stream`` keeps one stream; ``--after`` starts past a position."""
    stored = await write_log(tmp_path, APPENDS)

    by_stream = await run_cli("events", "--data-dir", tmp_path, "--stream", "job-1")
    after = await run_cli("events", "--data-dir", tmp_path, "--after", "3")
    both = await run_cli(
        "events", "--data-dir", tmp_path, "--stream", "job-1", "--after", "2"
    )
    past_head = await run_cli("events", "--data-dir", tmp_path, "--after", "5")

    lines = [expected_line(e, data) for e, data in zip(stored, DATA, strict=True)]
    assert by_stream.stdout.decode().splitlines() == [lines[1], lines[2], lines[4]]
    assert after.stdout.decode().splitlines() == lines[3:]
    assert both.stdout.decode().splitlines() == [lines[2], lines[4]]
    assert past_head.stdout == b""
    assert {p.returncode for p in (by_stream, after, both, past_head)} == {0}


async def test_cli_events_negative_after_is_usage_error(tmp_path: Path) -> None:
    """``--after -1`` is refused before anything is opened."""
    done = await run_cli("events", "--data-dir", tmp_path, "--after", "-1")

    assert done.returncode == 2
    assert done.stdout == b""
    assert done.stderr.decode() == "matrix-runtime: --after must be 0 or more\n"


async def test_cli_events_after_past_the_head_is_usage_error(tmp_path: Path) -> None:
    """Like the API's ``?after=``, a position the log has not reached is refused."""
    await write_log(tmp_path, APPENDS)

    done = await run_cli("events", "--data-dir", tmp_path, "--after", "6")

    assert (done.returncode, done.stdout, done.stderr.decode()) == (
        2,
        b"",
        "matrix-runtime: --after 6 is past the log's head 5\n",
    )


@pytest.mark.parametrize("spelling", ["\u0661", "1_0", " 1", "+1"])
async def test_cli_events_after_takes_ascii_digits_only(
    tmp_path: Path, spelling: str
) -> None:
    """Other scripts' digits, underscores, blanks and signs are not positions."""
    done = await run_cli("events", "--data-dir", tmp_path, "--after", spelling)

    assert done.returncode == 2
    assert done.stderr.decode().splitlines()[-1] == (
        "matrix-runtime events: error: argument --after: must be a whole "
        f"number, not {spelling!r}"
    )


@pytest.mark.parametrize("command", ["serve", "events", "verify"])
async def test_cli_arguments_that_are_not_utf8_are_usage_errors(
    tmp_path: Path, command: str
) -> None:
    """Bytes that are not UTF-8 in a path are refused before anything is made."""
    data_dir = os.fsdecode(bytes(tmp_path) + b"/x\xff")

    done = await run_cli(command, "--data-dir", data_dir)

    assert (done.returncode, done.stdout, done.stderr.decode()) == (
        2,
        b"",
        "matrix-runtime: arguments must be valid UTF-8\n",
    )
    assert os.listdir(tmp_path) == []


async def test_cli_events_follow_prints_events_of_another_writer(
    tmp_path: Path,
) -> None:
    """``--follow`` keeps printing what a writer process appends later."""
    await write_log(tmp_path, APPENDS[:2])
    follower = await trio.lowlevel.open_process(
        [str(CLI), "events", "--data-dir", str(tmp_path), "--after", "2", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    assert follower.stdout is not None
    lines = LineReader(follower.stdout)
    printed: list[dict[str, Any]] = []
    try:
        with trio.fail_after(TIMEOUT):
            # The last stored event proves the follower is up before the
            # writer starts, so what follows can only come from polling.
            history = await lines.readline()
        writer = await trio.run_process(
            child_command(LOG_PROCESS, "append", tmp_path / "log", "followed", 3),
            capture_stdout=True,
        )
        with trio.fail_after(TIMEOUT):
            while len(printed) < 3:
                line = await lines.readline()
                assert line is not None, "the follower exited"
                printed.append(msgspec.json.decode(line))
    finally:
        follower.terminate()
        with trio.fail_after(TIMEOUT):
            await follower.wait()

    assert history is not None and msgspec.json.decode(history)["position"] == 3
    written = [line.split() for line in writer.stdout.decode().splitlines()]
    assert [(p["position"], p["stream"], p["version"], p["data"]) for p in printed] == [
        (4, "followed", 1, {"n": 0}),
        (5, "followed", 2, {"n": 1}),
        (6, "followed", 3, {"n": 2}),
    ]
    assert [int(position) for position, _ in written] == [4, 5, 6]
    assert {p["type"] for p in printed} == {"test.noted"}


async def test_cli_events_prints_an_undecodable_payload_as_null_with_the_reason(
    tmp_path: Path,
) -> None:
    """An intact event written with a payload that does not decode is still shown."""
    broken = NewEvent(type="test.broken", data=b"\xa2\xff\xfe")
    [stored] = await write_log(tmp_path, [("s", [broken])])

    done = await run_cli("events", "--data-dir", tmp_path)

    line = expected_line(stored, "null").removesuffix("}")
    assert (done.returncode, done.stdout.decode()) == (
        0,
        line + ',"data_error":"the payload does not decode: Invalid UTF-8 '
        'encoded string"}\n',
    )
