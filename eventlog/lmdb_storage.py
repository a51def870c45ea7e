"""The durable backend: one LMDB environment per data directory.

Named databases and keys (positions and versions are unsigned 64-bit
big-endian, so byte order is numeric order):

- ``log``: position -> record (``own_hash || envelope``), written in append
  mode, gapless from 1.
- ``streams``: stream name, NUL, version -> position.
- ``heads``: stream name -> current version.
- ``event_ids``: 16-byte event id -> position.
- ``checkpoints``: checkpoint name -> position.
- ``meta``: ``format``, ``head`` (position), ``head_hash`` and ``indexed``.

Durability comes from LMDB's defaults (synchronous data and meta flushes);
throughput comes from the writer committing many requests per transaction,
each of which writes only records and the head: pages at the end of the log
and one meta page. The three index tables hold every event up to the
``indexed`` position; the entries of later events are kept in memory (see
:mod:`eventlog.pending_index`) and written in bulk every
``index_batch`` events and on close, so a commit never dirties one page per
active stream. Every read merges the two, so callers see one index.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import resource
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import lmdb
import msgspec

from eventlog.batch import AppendRequest, BatchPlan, plan_batch
from eventlog.chain import (
    HASH_SIZE,
    ChainBrokenError,
    check_records,
    is_intact,
    open_record,
    open_records,
)
from eventlog.envelope import GENESIS_HASH, RecordedEvent, parse_event_id
from eventlog.errors import (
    CorruptLogError,
    EventLogError,
    LogReadOnlyError,
    StorageFullError,
    damaged,
)
from eventlog.lmdb_damage import (
    DAMAGE_ERRORS,
    read_error,
    reading_storage,
    reads_storage,
)
from eventlog.lmdb_open import (
    check_directory,
    files_to_create,
    lock_directory,
    open_databases,
    open_environment,
    remove_created,
)
from eventlog.page_scan import first_bad_page
from eventlog.pending_index import PendingIndex, scan_pending

DEFAULT_MAP_SIZE: Final = 1 << 40
INDEX_BATCH: Final = 32768
"""Events whose index entries are written to the tables together.

Bigger batches dirty each active stream's index page less often; the cost
is memory (about 200 bytes an event) and, after a crash or in a read-only
process, reading that many records back once.
"""

log = logging.getLogger(__name__)

T = TypeVar("T")

_U64 = struct.Struct(">Q")
_WRITE_DAMAGE: Final[tuple[type[Exception], ...]] = (
    *DAMAGE_ERRORS,
    struct.error,
    msgspec.DecodeError,
)
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
        index_batch: int = INDEX_BATCH,
    ) -> None:
        """Open (or, for writing, create) the log in ``data_dir``.

        Raises:
            DataDirectoryError: the path is unusable; the subclasses say why.
        """
        if index_batch < 1:
            raise ValueError(f"index_batch must be at least 1, not {index_batch}")
        self.readonly = readonly
        self.path = Path(data_dir)
        self._index_batch = index_batch
        self._lock_fd: int | None = None
        # In a read-only process the entries above the mark are rebuilt from
        # the log by whichever reader thread first needs them.
        self._pending_lock = threading.Lock()
        self._pending: PendingIndex | None = None
        created = files_to_create(self.path)
        check_directory(self.path, readonly)
        self._env: Any = None
        try:
            if not readonly:
                self._lock_fd = lock_directory(self.path)
            self._env = open_environment(self.path, map_size, readonly)
            with reading_storage(self.path):
                self._dbs = open_databases(self._env, self.path, readonly)
                self._head, self._head_hash = self._load_head()
                if not readonly:
                    self._pending = self._open_pending()
        except BaseException:
            if self._env is not None:
                self._env.close()
            # A directory that is refused is left as it was found; the writer
            # lock goes while it is still held, so no other writer can take
            # the file in between.
            remove_created(created)
            self._release_lock()
            raise

    # -- reads --------------------------------------------------------------

    @reads_storage
    def head(self) -> tuple[int, bytes]:
        if self.readonly:
            # Another process is the writer: re-read the committed head.
            self._head, self._head_hash = self._load_head()
        return self._head, self._head_hash

    @reads_storage
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
            try:
                events = open_records(
                    itertools.islice(cursor.iternext(keys=False), last - after)
                )
            except msgspec.DecodeError:
                # Read again one record at a time, to name the one at fault.
                return self._read_log_by_key(cursor, after, last)
            if events and events[-1].position != after + len(events):
                events = self._read_log_by_key(cursor, after, last)
        return events

    @reads_storage
    def read_log_checked(
        self, after: int, limit: int, until: int
    ) -> list[RecordedEvent]:
        if limit <= 0 or after >= until:
            return []
        last = min(until, after + limit)
        with self._env.begin(db=self._dbs[b"log"]) as txn:
            if after == 0:
                prev = GENESIS_HASH
            else:
                before = txn.get(_U64.pack(after))
                if before is None:
                    raise damaged(self.path, f"position {after} is missing")
                prev = bytes(before[:HASH_SIZE])
            cursor = txn.cursor()
            if not cursor.set_range(_U64.pack(after + 1)):
                return []
            pairs = (
                (_U64.unpack(key)[0], value)
                for key, value in itertools.islice(cursor, last - after)
            )
            try:
                events = check_records(pairs, prev)
            except ChainBrokenError as exc:
                raise damaged(self.path, str(exc)) from None
        if events and events[0].position != after + 1:
            raise damaged(self.path, f"event {after + 1}: position is missing")
        return events

    def _read_log_by_key(
        self, cursor: Any, after: int, last: int
    ) -> list[RecordedEvent]:
        events: list[RecordedEvent] = []
        if not cursor.set_range(_U64.pack(after + 1)):
            return events
        for key, value in cursor:
            position = _U64.unpack(key)[0]
            if position > last:
                break
            events.append(self._open_at(position, value))
        return events

    def _open_at(self, position: int, record: bytes) -> RecordedEvent:
        try:
            return open_record(record)
        except msgspec.DecodeError as exc:
            raise read_error(self.path, exc, position) from None

    @reads_storage
    def read_stream(
        self, stream: str, from_version: int, limit: int
    ) -> list[RecordedEvent]:
        events: list[RecordedEvent] = []
        if limit <= 0:
            return events
        from_version = max(from_version, 1)
        prefix = _stream_prefix(stream)
        log_db = self._dbs[b"log"]
        with self._env.begin() as txn:
            pending, head = self._pending_in(txn)
            positions: list[bytes] = []
            cursor = txn.cursor(db=self._dbs[b"streams"])
            if cursor.set_range(prefix + _U64.pack(from_version)):
                for key, value in cursor:
                    if not key.startswith(prefix) or len(positions) >= limit:
                        break
                    positions.append(value)
            # Versions above the mark follow straight on from the tables'.
            positions += map(
                _U64.pack,
                pending.positions(
                    stream, from_version + len(positions), limit - len(positions), head
                ),
            )
            for position in positions:
                record = txn.get(position, db=log_db)
                if record is None:
                    raise damaged(
                        self.path,
                        f"the stream index of {stream!r} points at missing "
                        f"position {_U64.unpack(position)[0]}",
                    )
                events.append(self._open_at(_U64.unpack(position)[0], record))
        return events

    @reads_storage
    def stream_version(self, stream: str) -> int:
        with self._env.begin() as txn:
            pending, _ = self._pending_in(txn)
            version = pending.version(stream)
            if version is not None:
                return version
            return _get_u64(txn, stream.encode(), self._dbs[b"heads"])

    @reads_storage
    def checkpoint(self, name: str) -> int:
        with self._env.begin(db=self._dbs[b"checkpoints"]) as txn:
            return _get_u64(txn, name.encode())

    @reads_storage
    def first_altered(self, positions: Iterable[int]) -> int | None:
        with self._env.begin(db=self._dbs[b"log"]) as txn:
            for position in positions:
                record = txn.get(_U64.pack(position))
                if record is None or not is_intact(record):
                    return position
        return None

    def iter_records(self) -> Iterator[tuple[int, bytes]]:
        with reading_storage(self.path), self._env.begin(db=self._dbs[b"log"]) as txn:
            for key, value in txn.cursor():
                yield _U64.unpack(key)[0], value

    @reads_storage
    def indexed_position(self, stream: str, version: int) -> int | None:
        with self._env.begin() as txn:
            pending, _ = self._pending_in(txn)
            value = txn.get(
                _stream_prefix(stream) + _U64.pack(version), db=self._dbs[b"streams"]
            )
        if value is not None:
            return int(_U64.unpack(value)[0])
        return pending.position(stream, version)

    @reads_storage
    def position_of(self, event_key: bytes) -> int | None:
        with self._env.begin() as txn:
            pending, _ = self._pending_in(txn)
            value = txn.get(event_key, db=self._dbs[b"event_ids"])
        if value is not None:
            return int(_U64.unpack(value)[0])
        return pending.ids.get(event_key)

    @reads_storage
    def index_sizes(self) -> tuple[int, int, dict[str, int]]:
        with self._env.begin() as txn:
            pending, _ = self._pending_in(txn)
            # Counted by walking every entry, not from the tables' statistics:
            # this is the walk verify makes, and it must read every page.
            streams = _count(txn.cursor(db=self._dbs[b"streams"]))
            ids = _count(txn.cursor(db=self._dbs[b"event_ids"]))
            _count(txn.cursor(db=self._dbs[b"checkpoints"]))
            heads = {
                key.decode(): _U64.unpack(value)[0]
                for key, value in txn.cursor(db=self._dbs[b"heads"])
            }
        heads.update(pending.versions)
        return streams + pending.size, ids + len(pending.ids), heads

    def _pending_in(self, txn: Any) -> tuple[PendingIndex, int]:
        """The entries above the mark as ``txn`` sees it, and its head."""
        meta = self._dbs[b"meta"]
        head = _get_u64(txn, b"head", meta)
        indexed = _get_u64(txn, b"indexed", meta)
        pending = self._pending
        if (
            pending is not None
            and pending.base == indexed
            and (pending.last >= head or not self.readonly)
        ):
            return pending, head
        if not self.readonly:
            # ``txn`` began before the latest bulk index write, which the
            # writer's current entries already assume: rebuild its view.
            return self._scan_pending(txn, indexed, head), head
        with self._pending_lock:
            pending = self._pending
            if pending is None or pending.base != indexed:
                pending = self._scan_pending(txn, indexed, head)
            elif pending.last < head:
                # Another process is the writer: take in what it committed since.
                added = self._records_between(txn, pending.last, head)
                pending.add(
                    added,
                    [parse_event_id(event.event_id) for event in added],
                    {event.stream: event.version for event in added},
                )
            self._pending = pending
        return pending, head

    def _scan_pending(self, txn: Any, indexed: int, head: int) -> PendingIndex:
        return scan_pending(indexed, self._records_between(txn, indexed, head))

    def _records_between(self, txn: Any, after: int, until: int) -> list[RecordedEvent]:
        if until <= after:
            return []
        cursor = txn.cursor(db=self._dbs[b"log"])
        if not cursor.set_range(_U64.pack(after + 1)):
            return []
        return open_records(
            itertools.islice(cursor.iternext(keys=False), until - after)
        )

    # -- the write path -----------------------------------------------------

    def commit(
        self,
        requests: list[AppendRequest],
        checkpoints: Mapping[str, int],
        now_ns: int,
    ) -> BatchPlan:
        if self.readonly:
            raise LogReadOnlyError("the log was opened read-only")
        pending = self._pending
        assert pending is not None
        write_index = pending.size >= self._index_batch
        plan = self._transact(
            lambda txn: self._write_batch(
                txn, requests, checkpoints, now_ns, pending, write_index
            )
        )
        # Only now, after the commit, do readers get to see the new entries.
        if write_index:
            self._pending = PendingIndex(plan.head)
        else:
            pending.add(plan.events, plan.keys, plan.stream_versions)
        self._head, self._head_hash = plan.head, plan.head_hash
        return plan

    def flush_index(self) -> None:
        """Write the entries above the mark to the index tables now."""
        pending = self._pending
        if self.readonly or pending is None or not pending.size:
            return
        self._transact(lambda txn: self._write_index(txn, pending, BatchPlan()))
        self._pending = PendingIndex(pending.last)

    def _transact(self, work: Callable[[Any], T]) -> T:
        done: list[T] = []
        try:
            # The whole transaction, begin to commit, runs in this one call:
            # LMDB write transactions are bound to the thread that began them.
            with self._env.begin(write=True) as txn:
                done.append(work(txn))
        except lmdb.MapFullError:
            map_size = self._env.info()["map_size"]
            raise StorageFullError(
                f"the event log is full: its map size of {map_size} bytes is "
                "reached; raise MATRIX_RUNTIME_MAP_SIZE"
            ) from None
        except _WRITE_DAMAGE as exc:
            # The batch's idempotency checks read stored records and keys.
            raise read_error(self.path, exc) from None
        except lmdb.Error as exc:
            plan = done[0] if done else None
            needed = sum(map(len, plan.records)) if isinstance(plan, BatchPlan) else 0
            raise _storage_error(exc, self.path, needed) from None
        return done[0]

    def _write_batch(
        self,
        txn: Any,
        requests: list[AppendRequest],
        checkpoints: Mapping[str, int],
        now_ns: int,
        pending: PendingIndex,
        write_index: bool,
    ) -> BatchPlan:
        view = _TxnView(txn, self._dbs, pending, self.path)
        plan = plan_batch(requests, view, self._head, self._head_hash, now_ns)
        self._write_records(txn, plan)
        if write_index:
            self._write_index(txn, pending, plan)
        for name, position in checkpoints.items():
            txn.put(name.encode(), _U64.pack(position), db=self._dbs[b"checkpoints"])
        return plan

    def _write_records(self, txn: Any, plan: BatchPlan) -> None:
        if not plan.events:
            return
        dbs = self._dbs
        first = plan.events[0].position
        pack = _U64.pack
        # Positions follow the last stored key, so append mode writes every
        # record or, if the log changed under us, fewer: that is corruption,
        # and aborts the batch.
        _, added = txn.cursor(db=dbs[b"log"]).putmulti(
            list(
                zip(map(pack, range(first, plan.head + 1)), plan.records, strict=True)
            ),
            append=True,
        )
        if added != len(plan.records):
            raise damaged(self.path, f"position {first} is already stored")
        meta = dbs[b"meta"]
        txn.put(b"head", pack(plan.head), db=meta)
        txn.put(b"head_hash", plan.head_hash, db=meta)

    def _write_index(self, txn: Any, pending: PendingIndex, plan: BatchPlan) -> None:
        """Write the entries above the mark, and the batch's, to the tables."""
        pack = _U64.pack
        dbs = self._dbs
        batch = PendingIndex(plan.head - len(plan.events))
        batch.add(plan.events, plan.keys, plan.stream_versions)
        parts = (pending, batch)
        # Keys go in sorted, so each table's cursor walks its pages in order.
        # Streams sorted by name give sorted stream keys (UTF-8 keeps code
        # point order, and the NUL after the name sorts first), and each
        # stream's versions are already in order, the mark's before the
        # batch's: only the names need sorting, not every key.
        stream_keys: list[bytes] = []
        stream_positions: list[int] = []
        for stream in sorted(pending.streams.keys() | batch.streams.keys()):
            prefix = _stream_prefix(stream)
            for part in parts:
                entry = part.streams.get(stream)
                if entry is not None:
                    first, positions = entry
                    stream_keys += [
                        prefix + pack(version)
                        for version in range(first, first + len(positions))
                    ]
                    stream_positions += positions
        txn.cursor(db=dbs[b"streams"]).putmulti(
            zip(stream_keys, map(pack, stream_positions), strict=True)
        )
        # Ids are time-ordered (UUIDv7) and held in position order, so they
        # go in nearly sorted as they are, without a sort.
        ids = txn.cursor(db=dbs[b"event_ids"])
        for part in parts:
            ids.putmulti(zip(part.ids, map(pack, part.ids.values()), strict=True))
        heads = sorted({**pending.versions, **batch.versions}.items())
        txn.cursor(db=dbs[b"heads"]).putmulti(
            [(stream.encode(), pack(version)) for stream, version in heads]
        )
        indexed = max(pending.last, plan.head)
        txn.put(b"indexed", pack(indexed), db=dbs[b"meta"])

    def _open_pending(self) -> PendingIndex:
        """The writer's entries above the mark, read back from the log."""
        meta = self._dbs[b"meta"]
        with self._env.begin() as txn:
            stored = txn.get(b"indexed", db=meta)
        if stored is None:
            # A log written before the mark existed indexed every commit.
            with self._env.begin(write=True) as txn:
                txn.put(b"indexed", _U64.pack(self._head), db=meta)
            return PendingIndex(self._head)
        with self._env.begin() as txn:
            pending = self._scan_pending(txn, _U64.unpack(stored)[0], self._head)
        if pending.size:
            log.info(
                "event log: %d events above the index mark read back from the log",
                pending.size,
            )
        return pending

    # -- lifecycle ----------------------------------------------------------

    def close(self) -> None:
        env = getattr(self, "_env", None)
        if env is not None and not self.readonly:
            try:
                self.flush_index()
            except EventLogError as exc:
                # Nothing is lost: the next open reads the entries back.
                log.warning("event log: index not written at close: %s", exc)
        if env is not None:
            env.close()
            self._env = None
        self._release_lock()

    def first_bad_page(self) -> str | None:
        """What is wrong with the first damaged page of ``data.mdb``, or None.

        See :mod:`eventlog.page_scan`: this also reads the pages no table
        points at any more, which a writer reuses.
        """
        last_page = self._env.info()["last_pgno"]
        page_size = self._env.stat()["psize"]
        return first_bad_page(self.path / "data.mdb", page_size, last_page)

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

    def __init__(
        self, txn: Any, dbs: dict[bytes, Any], pending: PendingIndex, path: Path
    ) -> None:
        self._txn = txn
        self._path = path
        self._dbs = dbs
        self.recent_versions = pending.versions
        self.recent_ids = pending.ids
        self._heads = dbs[b"heads"]
        self._ids = dbs[b"event_ids"]
        # Asked once per new event id: a cursor's lookup, bound once, is the
        # cheapest call py-lmdb offers.
        self.is_stored = txn.cursor(db=self._ids).set_key

    def stream_version(self, stream: str) -> int:
        version = self.recent_versions.get(stream)
        if version is not None:
            return version
        value = self._txn.get(stream.encode(), db=self._heads)
        return 0 if value is None else int(_U64.unpack(value)[0])

    def position_of(self, event_key: bytes) -> int | None:
        position = self.recent_ids.get(event_key)
        if position is not None:
            return position
        value = self._txn.get(event_key, db=self._ids)
        return None if value is None else int(_U64.unpack(value)[0])

    def event_at(self, position: int) -> RecordedEvent:
        record = self._txn.get(_U64.pack(position), db=self._dbs[b"log"])
        if record is None:
            raise damaged(
                self._path, f"the event id index points at missing position {position}"
            )
        return open_record(record)


def _count(cursor: Any) -> int:
    return sum(1 for _ in cursor.iternext(keys=True, values=True))


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
