"""``matrix-runtime verify``: walk the chain and indexes, print the outcome.

The walk runs in a child (see :mod:`runtime.isolated_reader`), so damage
that stops LMDB's reader with a signal is still reported as the position
the walk could not read.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from eventlog import CorruptLogError, LmdbStorage, verify
from eventlog.errors import damaged
from runtime.isolated_reader import Progress, run_isolated

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1


def run_verify(log_dir: Path) -> int:
    """Verify the log in ``log_dir``, print the outcome, return the exit code."""

    def crashed(progress: Progress, signal_name: str) -> int:
        started, head, checked = progress.read()
        reason = f"reading it stopped the reader with {signal_name}"
        if not started:
            print(f"matrix-runtime: {damaged(log_dir, reason)}", file=sys.stderr)
        else:
            where = "indexes" if checked >= head else f"position {checked + 1}"
            print(f"bad: {where}: the stored log is damaged: {reason}")
        return EXIT_FAILED

    return run_isolated(lambda progress: _walk(log_dir, progress), crashed)


def _walk(log_dir: Path, progress: Progress) -> int:
    try:
        storage = LmdbStorage(log_dir, readonly=True)
    except CorruptLogError as exc:
        # Damage found while opening: said without the advice to run verify.
        print(f"matrix-runtime: {exc.finding}", file=sys.stderr)
        return EXIT_FAILED
    try:
        head, head_hash = storage.head()
        print(f"head {head} {head_hash.hex()}", flush=True)
        progress.started(head)
        report = verify(storage, progress.checked)
        bad_page = storage.first_bad_page() if report.ok else None
    finally:
        storage.close()
    if bad_page is not None:
        print(f"bad: pages: the stored log is damaged: {bad_page}")
        return EXIT_FAILED
    if report.ok:
        print(f"ok: {report.events} events, chain, indexes and pages verified")
        return EXIT_OK
    where = (
        f"position {report.first_bad_position}"
        if report.first_bad_position is not None
        else "indexes"
    )
    print(f"bad: {where}: {report.problem}")
    return EXIT_FAILED
