"""Opening a log's data directory: checks, the writer lock, LMDB and its tables.

Every way a directory can be unusable (not a directory, not writable, held by
another writer, not LMDB, another program's LMDB, damaged) is turned into the
:class:`~eventlog.errors.DataDirectoryError` that says which.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any, Final

import lmdb

from eventlog.errors import (
    CorruptLogError,
    DataDirectoryError,
    DataDirectoryLockedError,
    ForeignDataDirectoryError,
    damaged,
)
from eventlog.lmdb_damage import DAMAGE_ERRORS, lmdb_reason

FORMAT: Final = b"matrix-runtime-log/1"
LOCK_FILE: Final = "writer.lock"
DB_NAMES: Final = (b"log", b"streams", b"heads", b"event_ids", b"checkpoints", b"meta")


def check_directory(path: Path, readonly: bool) -> None:
    if path.exists() and not path.is_dir():
        raise DataDirectoryError(f"{path} is not a directory")
    if readonly:
        if not (path / "data.mdb").exists():
            raise DataDirectoryError(f"{path} holds no event log")
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirectoryError(f"cannot create {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataDirectoryError(f"{path} is not writable")


def lock_directory(path: Path) -> int:
    """Take the per-directory writer lock, held until the descriptor closes."""
    lock_path = path / LOCK_FILE
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise DataDirectoryError(f"cannot open {lock_path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DataDirectoryLockedError(
            f"{path} is already open for writing by another process (pid {holder})"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def open_environment(path: Path, map_size: int, readonly: bool) -> Any:
    data_file = path / "data.mdb"
    if data_file.exists() and data_file.stat().st_size == 0:
        # LMDB would take an empty file for a new environment and start a new
        # log over it: history that vanished must not pass for a fresh start.
        raise damaged(
            path,
            "data.mdb is empty; move it away to start a new log in this directory",
        )
    try:
        env = lmdb.open(
            str(path),
            map_size=map_size,
            max_dbs=len(DB_NAMES) + 2,
            max_readers=1024,
            subdir=True,
            readonly=readonly,
            sync=True,
            metasync=True,
            writemap=False,
            readahead=False,
            meminit=False,
            # Cached read transactions would keep reader slots across fork().
            max_spare_txns=0,
        )
    except DAMAGE_ERRORS as exc:
        raise CorruptLogError(
            f"{path}: data.mdb is not a readable LMDB file ({lmdb_reason(exc)})"
        ) from None
    except lmdb.Error as exc:
        raise DataDirectoryError(
            f"cannot open the log in {path}: {lmdb_reason(exc)}"
        ) from None
    try:
        # A crashed process leaves its reader slots behind; free them now.
        env.reader_check()
    except lmdb.Error as exc:
        env.close()
        raise DataDirectoryError(
            f"cannot open the log in {path}: {lmdb_reason(exc)}"
        ) from None
    _check_length(env, path)
    return env


def _check_length(env: Any, path: Path) -> None:
    """Refuse a data file shorter than the pages its meta page says it has.

    LMDB maps the file and trusts that count, so a read of a page past a
    cut-off end would stop the process with SIGBUS instead of failing.
    """
    needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    size = (path / "data.mdb").stat().st_size
    if size < needed:
        env.close()
        raise damaged(
            path, f"data.mdb is cut short: it has {size} bytes of its {needed}"
        )


def open_databases(env: Any, path: Path, readonly: bool) -> dict[bytes, Any]:
    with env.begin() as txn:
        names = {bytes(key) for key, _ in txn.cursor()}
    if names and not names & set(DB_NAMES):
        raise ForeignDataDirectoryError(
            f"{path} holds an LMDB environment that is not a Matrix Runtime log"
        )
    missing = [name.decode() for name in DB_NAMES if name not in names]
    if names and missing:
        # Some of the log's tables but not all: no program writes that, so
        # the file was damaged (or edited) after the log created them.
        raise damaged(path, f"its tables {', '.join(missing)} are missing")
    if not names and readonly:
        raise DataDirectoryError(f"{path} holds no event log")

    try:
        if names:
            dbs = {name: env.open_db(name, create=False) for name in DB_NAMES}
        else:
            with env.begin(write=True) as txn:
                dbs = {name: env.open_db(name, txn=txn) for name in DB_NAMES}
                txn.put(b"format", FORMAT, db=dbs[b"meta"])
    except lmdb.Error as exc:
        raise damaged(path, f"its tables do not open: {lmdb_reason(exc)}") from None

    with env.begin(db=dbs[b"meta"]) as txn:
        stored_format = txn.get(b"format")
    if stored_format is None:
        # The format is written in the transaction that creates the tables.
        raise damaged(path, "its format stamp is missing")
    if stored_format != FORMAT:
        shown = bytes(stored_format).decode(errors="replace")
        raise ForeignDataDirectoryError(
            f"{path} holds data of format {shown!r}, expected {FORMAT.decode()!r}"
        )
    return dbs


def files_to_create(path: Path) -> list[Path]:
    """The files opening a log in ``path`` may create that are not there yet."""
    names = (LOCK_FILE, "lock.mdb", "data.mdb")
    candidates = [path / name for name in names] + [path]
    return [candidate for candidate in candidates if not candidate.exists()]


def remove_created(created: list[Path]) -> None:
    """Remove what :func:`files_to_create` listed, where it is ours to remove."""
    for path in created:
        try:
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
        except OSError:
            # Not empty, or not ours to remove: leave it.
            pass
