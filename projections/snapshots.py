"""Durable snapshots of read models, so a restart does not replay the whole log.

Snapshots live in their own LMDB environment, ``<data>/projections`` next to
the log's ``<data>/log``, one record per projection name. A record holds the
checkpoint (the last folded position and that event's id), the projection's
format version and the encoded state, written together in one transaction,
so the checkpoint always describes exactly the state stored with it.

The environment is opened with ``sync=False`` and ``metasync=False``: a
commit returns once the pages are in the OS cache, not on the disk. That is
safe here because a snapshot is only a shortcut. LMDB (without ``writemap``)
stays consistent on a power loss and at worst loses the last commits, which
means an older snapshot and a longer replay, never a wrong state: the log is
the truth and every snapshot is checked against it before use. A process
crash loses nothing, the OS still writes the pages. ``close`` flushes.

All methods block on disk I/O: call them from a worker thread.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Final

import lmdb
import msgspec

from projections.errors import SnapshotStoreError

SNAPSHOT_DIR: Final = "projections"
"""The environment's directory name inside the data directory."""

DEFAULT_MAP_SIZE: Final = 1 << 36

log = logging.getLogger(__name__)

_DB_NAME: Final = b"snapshots"


class Snapshot(msgspec.Struct, frozen=True, array_like=True):
    """One projection's state at a checkpoint."""

    position: int
    """The last log position folded into ``state`` (0 for the initial state)."""
    event_id: str
    """The id of the event at ``position`` ("" at 0), to detect a swapped log."""
    version: int
    """The projection's format version that wrote ``state``."""
    state: bytes


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Snapshot)


class SnapshotStore:
    """Snapshots of every projection of one data directory."""

    def __init__(
        self, path: str | os.PathLike[str], *, map_size: int = DEFAULT_MAP_SIZE
    ) -> None:
        """Open (creating if needed) the snapshot environment at ``path``.

        Raises:
            SnapshotStoreError: the directory cannot be created or opened; it
                holds only derived data, so deleting it is always safe.
        """
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._env: Any = lmdb.open(
                str(self.path),
                map_size=map_size,
                max_dbs=1,
                subdir=True,
                sync=False,
                metasync=False,
                writemap=False,
                readahead=False,
                max_spare_txns=0,
            )
            self._env.reader_check()
            self._db = self._env.open_db(_DB_NAME)
        except (OSError, lmdb.Error) as exc:
            raise SnapshotStoreError(
                f"cannot open the projection snapshots in {self.path}: {exc}; "
                "the directory holds only derived data and may be deleted"
            ) from None

    def load(self, name: str) -> Snapshot | None:
        """The stored snapshot of projection ``name``, or None.

        An unreadable record is logged and reported as absent: the caller then
        rebuilds from the log, which also replaces the record.

        Raises:
            SnapshotStoreError: the environment cannot be read at all.
        """
        try:
            with self._env.begin(db=self._db) as txn:
                data = txn.get(name.encode())
        except lmdb.Error as exc:
            raise SnapshotStoreError(
                f"cannot read the snapshot of projection {name!r}: {exc}"
            ) from None
        if data is None:
            return None
        try:
            return _decoder.decode(data)
        except msgspec.DecodeError as exc:
            log.warning("snapshot unreadable name=%s error=%s", name, exc)
            return None

    def save(self, name: str, snapshot: Snapshot) -> None:
        """Replace the snapshot of projection ``name``.

        Raises:
            SnapshotStoreError: the write failed (e.g. the map is full); the
                previous snapshot stays in place.
        """
        data = _encoder.encode(snapshot)
        try:
            with self._env.begin(write=True, db=self._db) as txn:
                txn.put(name.encode(), data)
        except lmdb.Error as exc:
            raise SnapshotStoreError(
                f"cannot save the snapshot of projection {name!r}: {exc}"
            ) from None

    def delete(self, name: str) -> bool:
        """Remove the snapshot of projection ``name``; True if there was one."""
        with self._env.begin(write=True, db=self._db) as txn:
            return bool(txn.delete(name.encode()))

    def close(self) -> None:
        """Flush to disk and release the environment; idempotent."""
        env = self._env
        if env is None:
            return
        self._env = None
        try:
            env.sync(True)
        finally:
            env.close()
