"""The log's commands on a data directory damaged below LMDB: one clear line.

Some damage makes LMDB read past the end of its file, and the kernel stops
the reader with SIGBUS. The read-only commands read in a child process, so
they still report it, and ``verify`` still names the position.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import trio

from eventlog import LmdbStorage
from tests.eventlog.support import (
    first_leaf_offset,
    flip_byte,
    flip_file_bits,
    payload,
    raw_delete,
    raw_get,
    u64,
)
from tests.eventlog.test_verify import write_history
from tests.runtime.test_cli_log import CLI, cli_env, run_cli

HINT = "matrix-runtime verify names the first damaged position"
NODE_OFFSETS = 16
"""Where a page's table of node offsets starts, after its 16-byte header."""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory whose log holds five events, s@1,2 t@3 s@4 t@5."""
    trio.run(write_history, tmp_path / "log")
    return tmp_path


def head_line(data_dir: Path) -> str:
    """The first line ``verify`` prints for this log."""
    storage = LmdbStorage(data_dir / "log", readonly=True)
    head, head_hash = storage.head()
    storage.close()
    return f"head {head} {head_hash.hex()}\n"


def send_third_record_past_the_file(data_dir: Path) -> None:
    """Move the third record's node 32 KiB on, past the end of ``data.mdb``.

    Setting the top bit of a node's offset in its page is one flipped bit;
    LMDB then reads that node, length and all, from beyond the file.
    """
    log_dir = data_dir / "log"
    page = first_leaf_offset(log_dir, b"log")
    third_node_high_byte = page + NODE_OFFSETS + 2 * 2 + 1
    flip_file_bits(log_dir, third_node_high_byte, 0x80)
    assert (log_dir / "data.mdb").stat().st_size < page + 0x8000 + 16


async def test_verify_names_position_whose_read_is_stopped_by_sigbus(
    data_dir: Path,
) -> None:
    """The walk's crash becomes ``bad: position 3``, with exit code 1."""
    expected_head = head_line(data_dir)
    send_third_record_past_the_file(data_dir)

    done = await run_cli("verify", "--data-dir", data_dir)

    assert (done.returncode, done.stdout.decode(), done.stderr.decode()) == (
        1,
        expected_head + "bad: position 3: the stored log is damaged: "
        "reading it stopped the reader with SIGBUS\n",
        "",
    )


async def test_events_stopped_by_sigbus_reports_damage(data_dir: Path) -> None:
    """events says the log is damaged and points at verify, with exit code 1."""
    send_third_record_past_the_file(data_dir)

    done = await run_cli("events", "--data-dir", data_dir)

    assert (done.returncode, done.stdout.decode(), done.stderr.decode()) == (
        1,
        "",
        f"matrix-runtime: {data_dir / 'log'}: the stored log is damaged "
        f"(reading it stopped the reader with SIGBUS); {HINT}\n",
    )


def test_serve_on_log_without_format_stamp_exits_with_one_line(
    data_dir: Path,
) -> None:
    """The server refuses a damaged log at start with exit 1 and one line."""
    raw_delete(data_dir / "log", b"meta", b"format")

    done = subprocess.run(
        [str(CLI), "serve", "--port", "0", "--data-dir", str(data_dir)],
        env={**cli_env(), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"matrix-runtime: {data_dir / 'log'}: the stored log is damaged "
        f"(its format stamp is missing); {HINT}"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("mask", [0xFF, 0x20], ids=["not-utf8", "other-letter"])
async def test_events_stops_at_a_payload_changed_on_disk(
    data_dir: Path, mask: int
) -> None:
    """What events prints is checked against the chain, decodable or not."""
    log_dir = data_dir / "log"
    record = raw_get(log_dir, b"log", u64(3))
    assert record is not None
    flip_byte(log_dir, 3, record.index(payload("payload-3")) + 5, mask)

    done = await run_cli("events", "--data-dir", data_dir)

    assert (done.returncode, done.stdout.decode(), done.stderr.decode()) == (
        1,
        "",
        f"matrix-runtime: {log_dir}: the stored log is damaged (event 3: stored "
        f"hash does not match the event's bytes); {HINT}\n",
    )


async def test_verify_reports_a_damaged_page_header(data_dir: Path) -> None:
    """A page whose header names another page fails verify, named by the page."""
    expected_head = head_line(data_dir)
    flip_file_bits(data_dir / "log", 2 * 4096 + 4, 0x01)

    done = await run_cli("verify", "--data-dir", data_dir)

    assert (done.returncode, done.stdout.decode(), done.stderr.decode()) == (
        1,
        expected_head + "bad: pages: the stored log is damaged: page 2 says it is "
        "page 4294967298\n",
        "",
    )
