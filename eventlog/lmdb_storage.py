"""The durable backend: one LMDB environment per data directory.

Named databases and keys (positions and versions are unsigned 64-bit
big-endian, so byte order is numeric order):

- ``log``: position -> record (``own_hash || envelope``), written in append
  mode, gapless from 1.
- ``streams``: stream name, NUL, version -> position.
- ``heads``: stream name -> current version.
- ``event_ids``: 16-byte event id -> position.
- ``checkpoints``: checkpoint name -> position.
- ``meta``: ``format``, ``head`` (position) and ``head_hash``.

Durability comes from LMDB's defaults (synchronous data and meta flushes);
throughput comes from the writer committing many requests per transaction.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import resource
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import lmdb

from eventlog.batch import AppendRequest, BatchPlan, plan_batch
from eventlog.chain import open_record, open_records
from eventlog.envelope import GENESIS_HASH, RecordedEvent
from eventlog.errors import (
    CorruptLogError,
    EventLogError,
    LogReadOnlyError,
    StorageFullError,
)
from eventlog.lmdb_open import (
    check_directory,
    lock_directory,
    open_databases,
    open_environment,
)

DEFAULT_MAP_SIZE: Final = 1 << 40

log = logging.getLogger(__name__)

_U64 = struct.Struct(">Q")
_DISK_FULL_ERRNOS: Final = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class LmdbStorage:
    """An event log stored in LMDB under ``data_dir``."""

    blocking = True

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        readonly: bool = False,
    ) -> None:
        """Open (or, for writing, create) the log in ``data_dir``.

        Raises:
            DataDirectoryError: the path is unusable; the subclasses say why.
        """
        self.readonly = readonly
        self.path = Path(data_dir)
        self._lock_fd: int | None = None
        check_directory(self.path, readonly)
        if not readonly:
            self._lock_fd = lock_directory(self.path)
        try:
            self._env = open_environment(self.path, map_size, readonly)
            self._dbs = open_databases(self._env, self.path, readonly)
            self._head, self._head_hash = self._load_head()
        except BaseException:
            self._release_lock()
            raise

    # -- reads --------------------------------------------------------------

    def head(self) -> tuple[int, bytes]:
        if self.readonly:
            # Another process is the writer: re-read the committed head.
            self._head, self._head_hash = self._load_head()
        return self._head, self._head_hash

    def read_log(self, after: int, limit: int, until: int) -> list[RecordedEvent]:
        events: list[RecordedEvent] = []
        if limit <= 0 or after >= until:
            return events
        last = min(until, after + limit)
        with self._env.begin(db=self._dbs[b"log"]) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(_U64.pack(after + 1)):
                return events
            # Positions are gapless, so the next ``last - after`` records are
            # exactly ``after+1 .. last``: no key needs unpacking. The check
            # below catches a damaged log that breaks that promise.
            events = open_records(
                itertools.islice(cursor.iternext(keys=False), last - after)
            )
            if events and events[-1].position != after + len(events):
                events = self._read_log_by_key(cursor, after, last)
        return events

    def _read_log_by_key(
        self, cursor: Any, after: int, last: int
    ) -> list[RecordedEvent]:
        events: list[RecordedEvent] = []
        if not cursor.set_range(_U64.pack(after + 1)):
            return events
        for key, value in cursor:
            if _U64.unpack(key)[0] > last:
                break
            events.append(open_record(value))
        return events

    def read_stream(
        self, stream: str, from_version: int, limit: int
    ) -> list[RecordedEvent]:
        events: list[RecordedEvent] = []
        if limit <= 0:
            return events
        prefix = _stream_prefix(stream)
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._dbs[b"streams"])
            if not cursor.set_range(prefix + _U64.pack(max(from_version, 1))):
                return events
            for key, value in cursor:
                if not key.startswith(prefix) or len(events) >= limit:
                    break
                record = txn.get(value, db=self._dbs[b"log"])
                if record is None:
                    raise CorruptLogError(
                        f"stream index of {stream!r} points at missing position "
                        f"{_U64.unpack(value)[0]}"
                    )
                events.append(open_record(record))
        return events

    def stream_version(self, stream: str) -> int:
        with self._env.begin(db=self._dbs[b"heads"]) as txn:
            return _get_u64(txn, stream.encode())

    def checkpoint(self, name: str) -> int:
        with self._env.begin(db=self._dbs[b"checkpoints"]) as txn:
            return _get_u64(txn, name.encode())

    def iter_records(self) -> Iterator[tuple[int, bytes]]:
        with self._env.begin(db=self._dbs[b"log"]) as txn:
            for key, value in txn.cursor():
                yield _U64.unpack(key)[0], value

    def indexed_position(self, stream: str, version: int) -> int | None:
        with self._env.begin(db=self._dbs[b"streams"]) as txn:
            value = txn.get(_stream_prefix(stream) + _U64.pack(version))
        return None if value is None else int(_U64.unpack(value)[0])

    def position_of(self, event_key: bytes) -> int | None:
        with self._env.begin(db=self._dbs[b"event_ids"]) as txn:
            value = txn.get(event_key)
        return None if value is None else int(_U64.unpack(value)[0])

    def index_sizes(self) -> tuple[int, int, dict[str, int]]:
        with self._env.begin() as txn:
            streams = txn.stat(self._dbs[b"streams"])["entries"]
            ids = txn.stat(self._dbs[b"event_ids"])["entries"]
            heads = {
                key.decode(): _U64.unpack(value)[0]
                for key, value in txn.cursor(db=self._dbs[b"heads"])
            }
        return streams, ids, heads

    # -- the write path -----------------------------------------------------

    def commit(
        self,
        requests: list[AppendRequest],
        checkpoints: Mapping[str, int],
        now_ns: int,
    ) -> BatchPlan:
        if self.readonly:
            raise LogReadOnlyError("the log was opened read-only")
        dbs = self._dbs
        plan: BatchPlan | None = None
        try:
            # The whole transaction, begin to commit, runs in this one call:
            # LMDB write transactions are bound to the thread that began them.
            with self._env.begin(write=True) as txn:
                view = _TxnView(txn, dbs)
                plan = plan_batch(requests, view, self._head, self._head_hash, now_ns)
                self._write_plan(txn, plan)
                for name, position in checkpoints.items():
                    txn.put(name.encode(), _U64.pack(position), db=dbs[b"checkpoints"])
        except lmdb.MapFullError:
            map_size = self._env.info()["map_size"]
            raise StorageFullError(
                f"the event log is full: its map size of {map_size} bytes is "
                "reached; raise MATRIX_RUNTIME_MAP_SIZE"
            ) from None
        except lmdb.Error as exc:
            needed = sum(len(s.record) for s in plan.sealed) if plan else 0
            raise _storage_error(exc, self.path, needed) from None
        assert plan is not None
        self._head, self._head_hash = plan.head, plan.head_hash
        return plan

    def _write_plan(self, txn: Any, plan: BatchPlan) -> None:
        dbs = self._dbs
        if not plan.sealed:
            return
        first = plan.sealed[0].event.position
        log_cursor = txn.cursor(db=dbs[b"log"])
        if log_cursor.last() and _U64.unpack(log_cursor.key())[0] >= first:
            raise CorruptLogError(f"position {first} is already stored")

        pack = _U64.pack
        prefixes: dict[str, bytes] = {}
        records: list[tuple[bytes, bytes]] = []
        versions: list[tuple[bytes, bytes]] = []
        ids: list[tuple[bytes, bytes]] = []
        for sealed in plan.sealed:
            event = sealed.event
            position = pack(event.position)
            prefix = prefixes.get(event.stream)
            if prefix is None:
                prefix = prefixes[event.stream] = _stream_prefix(event.stream)
            records.append((position, sealed.record))
            versions.append((prefix + pack(event.version), position))
            ids.append((sealed.event_key, position))

        # One C call per table instead of one put per entry. Positions follow
        # the last stored key, so append mode writes every record or, if the
        # log changed under us, fewer: that is corruption, and aborts the batch.
        _, added = log_cursor.putmulti(records, append=True)
        if added != len(records):
            raise CorruptLogError(f"position {first} is already stored")
        txn.cursor(db=dbs[b"streams"]).putmulti(versions)
        txn.cursor(db=dbs[b"event_ids"]).putmulti(ids)
        txn.cursor(db=dbs[b"heads"]).putmulti(
            [
                (stream.encode(), pack(version))
                for stream, version in plan.stream_versions.items()
            ]
        )
        txn.put(b"head", pack(plan.head), db=dbs[b"meta"])
        txn.put(b"head_hash", plan.head_hash, db=dbs[b"meta"])

    # -- lifecycle ----------------------------------------------------------

    def close(self) -> None:
        env = getattr(self, "_env", None)
        if env is not None:
            env.close()
            self._env = None
        self._release_lock()

    def map_usage(self) -> tuple[int, int]:
        """Bytes in use and the map size."""
        info = self._env.info()
        stat = self._env.stat()
        return (info["last_pgno"] + 1) * stat["psize"], info["map_size"]

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _load_head(self) -> tuple[int, bytes]:
        with self._env.begin() as txn:
            head = _get_u64(txn, b"head", self._dbs[b"meta"])
            head_hash = txn.get(b"head_hash", db=self._dbs[b"meta"]) or GENESIS_HASH
            last = txn.cursor(db=self._dbs[b"log"])
            last_key = _U64.unpack(last.key())[0] if last.last() else 0
        if last_key != head:
            raise CorruptLogError(
                f"{self.path}: the log ends at position {last_key} but its "
                f"head says {head}"
            )
        return head, bytes(head_hash)


class _TxnView:
    """Committed state seen from inside the write transaction."""

    def __init__(self, txn: Any, dbs: dict[bytes, Any]) -> None:
        self._txn = txn
        self._dbs = dbs
        # Called for every request of a batch: bound once, not looked up.
        self._heads = dbs[b"heads"]
        self._ids = dbs[b"event_ids"]

    def stream_version(self, stream: str) -> int:
        value = self._txn.get(stream.encode(), db=self._heads)
        return 0 if value is None else int(_U64.unpack(value)[0])

    def position_of(self, event_key: bytes) -> int | None:
        value = self._txn.get(event_key, db=self._ids)
        return None if value is None else int(_U64.unpack(value)[0])

    def event_at(self, position: int) -> RecordedEvent:
        record = self._txn.get(_U64.pack(position), db=self._dbs[b"log"])
        if record is None:
            raise CorruptLogError(f"id index points at missing position {position}")
        return open_record(record)


def _stream_prefix(stream: str) -> bytes:
    return stream.encode() + b"\x00"


def _get_u64(txn: Any, key: bytes, db: Any = None) -> int:
    value = txn.get(key, db=db) if db is not None else txn.get(key)
    return 0 if value is None else int(_U64.unpack(value)[0])


def _storage_error(exc: lmdb.Error, path: Path, needed: int) -> EventLogError:
    code = getattr(exc, "errno", None) or _errno_in(str(exc))
    if code == errno.EIO:
        # LMDB reports a short write as EIO. On a full disk, or at the file
        # size limit, the kernel writes what still fits and stops short.
        code = _space_errno(path, needed) or code
    if code in _DISK_FULL_ERRNOS:
        return StorageFullError(
            f"the event log cannot grow: {os.strerror(code)}; free disk space"
        )
    return EventLogError(f"the event log could not commit: {exc}")


def _space_errno(path: Path, needed: int) -> int | None:
    """Why ``needed`` more bytes cannot be written to the log, if for lack of room."""
    try:
        disk = os.statvfs(path)
        size = (path / "data.mdb").stat().st_size
    except OSError:
        return None
    if disk.f_bavail * disk.f_frsize < needed:
        return errno.ENOSPC
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size + needed > limit:
        return errno.EFBIG
    return None


def _errno_in(message: str) -> int | None:
    for code in (*_DISK_FULL_ERRNOS, errno.EIO):
        if os.strerror(code) in message:
            return code
    return None
