"""Builders, a running log, child processes and raw LMDB edits for log tests."""

from __future__ import annotations

import struct
import sys
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Final, cast

import lmdb
import msgspec
import trio

from eventlog import EventLog, NewEvent, RecordedEvent
from eventlog.batch import AppendRequest, BatchPlan
from eventlog.log import RING_SIZE
from eventlog.storage import Storage

HERE: Final = Path(__file__).parent
LOG_PROCESS: Final = HERE / "log_process.py"
CRASH_WRITER: Final = HERE / "crash_writer.py"
TIMEOUT: Final = 10.0
"""Upper bound for anything a test waits on; generous for a loaded machine."""

_U64 = struct.Struct(">Q")


def payload(value: Any) -> bytes:
    """The msgpack bytes of ``value``, as an event's ``data``."""
    return msgspec.msgpack.encode(value)


def event(value: Any = "hello", *, type: str = "test.noted", **fields: str) -> NewEvent:
    """A new event of ``type`` whose payload is ``value``."""
    return NewEvent(type=type, data=payload(value), **fields)


def numbered(count: int, *, start: int = 0) -> list[NewEvent]:
    """``count`` events whose payloads are ``{"n": start}``, ``{"n": start+1}``..."""
    return [event({"n": n}) for n in range(start, start + count)]


def event_ids(events: list[NewEvent] | list[RecordedEvent]) -> list[str]:
    """The ids of ``events``, in order."""
    return [e.event_id for e in events]


@asynccontextmanager
async def running_log(
    storage: Storage, *, ring_size: int = RING_SIZE
) -> AsyncIterator[EventLog]:
    """Run a log's writer on ``storage`` for the block; close both afterwards."""
    event_log = EventLog(storage, ring_size=ring_size)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(event_log.run)
            try:
                yield event_log
            finally:
                event_log.close()
    finally:
        storage.close()


def tail(
    event_log: EventLog, after: int = 0, *, batch_limit: int = 512
) -> AsyncGenerator[list[RecordedEvent]]:
    """``event_log.tail`` typed as the generator it is, for ``aclosing``."""
    return cast(
        AsyncGenerator[list[RecordedEvent]],
        event_log.tail(after, batch_limit=batch_limit),
    )


async def read_everything(event_log: EventLog) -> list[RecordedEvent]:
    """Every committed event, paging through ``read_all``."""
    events: list[RecordedEvent] = []
    while True:
        page = await event_log.read_all(after=len(events), limit=100)
        if not page:
            return events
        events.extend(page)


async def collect_tail(
    event_log: EventLog, after: int, until: int, *, batch_limit: int = 512
) -> list[list[RecordedEvent]]:
    """The batches ``tail(after)`` yields until it has reached ``until``."""
    batches: list[list[RecordedEvent]] = []
    if until <= after:
        return batches
    with trio.fail_after(TIMEOUT):
        generator = tail(event_log, after, batch_limit=batch_limit)
        try:
            async for batch in generator:
                batches.append(batch)
                if batch[-1].position >= until:
                    break
        finally:
            await generator.aclose()
    return batches


def positions(events: list[RecordedEvent]) -> list[int]:
    """The positions of ``events``, in order."""
    return [e.position for e in events]


def flatten(batches: list[list[RecordedEvent]]) -> list[RecordedEvent]:
    """All events of ``batches``, in order."""
    return [e for batch in batches for e in batch]


class GatedStorage:
    """Wraps a storage so a commit, once written, waits for :meth:`release`.

    While a commit waits, its events are in storage but the log has not yet
    published them: exactly the window in which nobody may see them.
    """

    blocking = True

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.readonly = inner.readonly
        self.reached = threading.Event()
        self._gate = threading.Event()

    def release(self) -> None:
        """Let the waiting commit, and every later one, return."""
        self._gate.set()

    async def wait_reached(self) -> None:
        """Wait until a commit has written its batch and is held at the gate."""
        reached = await trio.to_thread.run_sync(self.reached.wait, TIMEOUT)
        assert reached, "no commit reached the gate"

    def commit(
        self,
        requests: list[AppendRequest],
        checkpoints: Mapping[str, int],
        now_ns: int,
    ) -> BatchPlan:
        plan = self.inner.commit(requests, checkpoints, now_ns)
        self.reached.set()
        if not self._gate.wait(TIMEOUT):
            raise RuntimeError("the gated commit was never released")
        return plan

    def head(self) -> tuple[int, bytes]:
        return self.inner.head()

    def read_log(self, after: int, limit: int, until: int) -> list[RecordedEvent]:
        return self.inner.read_log(after, limit, until)

    def read_log_checked(
        self, after: int, limit: int, until: int
    ) -> list[RecordedEvent]:
        return self.inner.read_log_checked(after, limit, until)

    def read_stream(
        self, stream: str, from_version: int, limit: int
    ) -> list[RecordedEvent]:
        return self.inner.read_stream(stream, from_version, limit)

    def stream_version(self, stream: str) -> int:
        return self.inner.stream_version(stream)

    def checkpoint(self, name: str) -> int:
        return self.inner.checkpoint(name)

    def first_altered(self, positions: Iterable[int]) -> int | None:
        return self.inner.first_altered(positions)

    def iter_records(self) -> Iterator[tuple[int, bytes]]:
        return self.inner.iter_records()

    def indexed_position(self, stream: str, version: int) -> int | None:
        return self.inner.indexed_position(stream, version)

    def position_of(self, event_key: bytes) -> int | None:
        return self.inner.position_of(event_key)

    def index_sizes(self) -> tuple[int, int, dict[str, int]]:
        return self.inner.index_sizes()

    def close(self) -> None:
        self.inner.close()


def child_command(script: Path, *args: str | Path | int) -> list[str]:
    """The argv that runs one of the helper programs beside this module."""
    return [sys.executable, str(script), *map(str, args)]


class LineReader:
    """Whole lines from a byte stream; a partial last line is dropped at EOF."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def readline(self) -> str | None:
        """The next line without its newline, or ``None`` at end of stream."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = self._buffer[:end].decode()
                del self._buffer[: end + 1]
                return line
            chunk = await self._stream.receive_some(65536)
            if not chunk:
                return None
            self._buffer += chunk


# -- raw LMDB edits -----------------------------------------------------------


def u64(value: int) -> bytes:
    """A position or version as the log stores it in keys and values."""
    return _U64.pack(value)


@contextmanager
def raw_environment(log_dir: Path) -> Iterator[Any]:
    """The log's LMDB environment opened with plain ``lmdb``, bypassing the log."""
    env = lmdb.open(str(log_dir), max_dbs=16, subdir=True)
    try:
        yield env
    finally:
        env.close()


def raw_get(log_dir: Path, db: bytes, key: bytes) -> bytes | None:
    """The stored value of ``key`` in the named database ``db``."""
    with raw_environment(log_dir) as env:
        handle = env.open_db(db, create=False)
        with env.begin(db=handle) as txn:
            value = txn.get(key)
    return None if value is None else bytes(value)


def raw_put(log_dir: Path, db: bytes, key: bytes, value: bytes) -> None:
    """Overwrite ``key`` in the named database ``db``."""
    with raw_environment(log_dir) as env:
        handle = env.open_db(db, create=False)
        with env.begin(write=True, db=handle) as txn:
            txn.put(key, value)


def raw_delete(log_dir: Path, db: bytes, key: bytes) -> None:
    """Delete ``key`` from the named database ``db``."""
    with raw_environment(log_dir) as env:
        handle = env.open_db(db, create=False)
        with env.begin(write=True, db=handle) as txn:
            assert txn.delete(key)


def flip_byte(log_dir: Path, position: int, offset: int, mask: int = 0xFF) -> None:
    """XOR one byte of the stored record at ``position`` with ``mask``."""
    record = raw_get(log_dir, b"log", u64(position))
    assert record is not None
    changed = bytearray(record)
    changed[offset] ^= mask
    raw_put(log_dir, b"log", u64(position), bytes(changed))


_SUBDB = struct.Struct("<IHHQQQQQ")
"""LMDB's record of a named database in the main one; the root page is last."""


def root_page_offset(log_dir: Path, table: bytes) -> int:
    """The byte offset in ``data.mdb`` of the root page of the named table."""
    with raw_environment(log_dir) as env:
        with env.begin() as txn:
            record = txn.get(table)
        page_size = env.stat()["psize"]
    assert record is not None
    root = int(_SUBDB.unpack(record)[-1])
    return root * int(page_size)


def first_leaf_offset(log_dir: Path, table: bytes) -> int:
    """The byte offset in ``data.mdb`` of the named table's first leaf page."""
    offset = root_page_offset(log_dir, table)
    with raw_environment(log_dir) as env:
        page_size = env.stat()["psize"]
    data = (log_dir / "data.mdb").read_bytes()
    # A page header is pgno (8), pad (2), flags (2), lower (2), upper (2),
    # then the offsets of its nodes; a branch node packs its child's page
    # number into its size and flags fields (48 bits, little-endian).
    while _PAGE_FLAGS.unpack_from(data, offset + 10)[0] & _BRANCH_PAGE:
        (first_node,) = _PAGE_FLAGS.unpack_from(data, offset + 16)
        low, high, top = _BRANCH_CHILD.unpack_from(data, offset + first_node)
        offset = (low | high << 16 | top << 32) * page_size
    return offset


_PAGE_FLAGS = struct.Struct("<H")
_BRANCH_CHILD = struct.Struct("<HHH")
_BRANCH_PAGE = 0x01


def flip_file_bits(log_dir: Path, offset: int, mask: int) -> None:
    """XOR the byte at ``offset`` of ``data.mdb`` with ``mask``, behind LMDB."""
    with open(log_dir / "data.mdb", "r+b") as data:
        data.seek(offset)
        (byte,) = data.read(1)
        data.seek(offset)
        data.write(bytes([byte ^ mask]))
