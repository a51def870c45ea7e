"""The physical limits: raw py-lmdb durable batched writes on the same disk.

Both baselines write ``events`` values of ``value_size`` bytes in write
transactions of ``batch`` values, with the log's durability settings
(``sync=True``, ``metasync=True``, no ``writemap``), and nothing else: no
envelope, no hash, no trio, no validation.

- ``raw_lmdb``: one put per event, 8-byte big-endian keys in append mode.
  This is what the disk and LMDB allow at that batch size.
- ``raw_lmdb.layout``: the same puts the log makes: per commit the
  records in append mode and the two meta keys; every ``INDEX_BATCH``
  events the stream index, id index (time-ordered ids) and stream heads in
  sorted bulk puts, with one stream per producer as in the append
  benchmark. This is the ceiling of the log's storage layout.
"""

from __future__ import annotations

import os
import struct
import time
from typing import Any

import lmdb

from benchmarks.support import Figure, fresh_data_dir
from eventlog.lmdb_storage import INDEX_BATCH

_U64 = struct.Struct(">Q")


def measure_raw(
    events: int, batch: int, value_size: int, *, layout: bool, streams: int = 1
) -> float:
    """Write ``events`` values in transactions of ``batch``; return values/s.

    With ``layout``, events go round-robin to ``streams`` streams.
    """
    batch = max(1, batch)
    value = os.urandom(value_size)
    names = [f"job-bench-{index:04d}".encode() for index in range(streams)]
    versions = [0] * streams
    unindexed: list[tuple[bytes, bytes, bytes]] = []
    with fresh_data_dir() as path:
        env = lmdb.open(
            str(path),
            map_size=1 << 36,
            max_dbs=8,
            sync=True,
            metasync=True,
            writemap=False,
            readahead=False,
            meminit=False,
        )
        try:
            dbs = {name: env.open_db(name) for name in _TABLES}
            written = 0
            started = time.perf_counter()
            while written < events:
                size = min(batch, events - written)
                with env.begin(write=True) as txn:
                    if layout:
                        _put_like_the_log(
                            txn, dbs, written, size, value, names, versions, unindexed
                        )
                    else:
                        cursor = txn.cursor(db=dbs[b"log"])
                        for position in range(written + 1, written + size + 1):
                            cursor.put(_U64.pack(position), value, append=True)
                written += size
            elapsed = time.perf_counter() - started
        finally:
            env.close()
    return events / elapsed


def raw_figures(
    name: str, events: int, batch: float, value_size: int, streams: int
) -> tuple[Figure, Figure]:
    """Both raw rates for the batches an ``EventLog`` run achieved."""
    size = round(batch)
    plain = measure_raw(events, size, value_size, layout=False)
    layout = measure_raw(events, size, value_size, layout=True, streams=streams)
    return (
        Figure(f"{name}.raw_lmdb", plain, "events/s"),
        Figure(f"{name}.raw_lmdb.layout", layout, "events/s"),
    )


_TABLES = (b"log", b"streams", b"heads", b"event_ids", b"meta")


def _put_like_the_log(
    txn: Any,
    dbs: dict[bytes, Any],
    written: int,
    size: int,
    value: bytes,
    names: list[bytes],
    versions: list[int],
    unindexed: list[tuple[bytes, bytes, bytes]],
) -> None:
    millis = _U64.pack(time.time_ns() // 1_000_000)[2:]
    log = txn.cursor(db=dbs[b"log"])
    for offset in range(size):
        position = _U64.pack(written + offset + 1)
        index = (written + offset) % len(names)
        versions[index] += 1
        stream_key = names[index] + b"\x00" + _U64.pack(versions[index])
        log.put(position, value, append=True)
        unindexed.append((stream_key, millis + os.urandom(10), position))
    txn.put(b"head", _U64.pack(written + size), db=dbs[b"meta"])
    txn.put(b"head_hash", os.urandom(32), db=dbs[b"meta"])
    if len(unindexed) < INDEX_BATCH:
        return
    streams = sorted((key, position) for key, _, position in unindexed)
    ids = sorted((key, position) for _, key, position in unindexed)
    heads = {key[:-9]: key[-8:] for key, _ in streams}
    txn.cursor(db=dbs[b"streams"]).putmulti(streams)
    txn.cursor(db=dbs[b"event_ids"]).putmulti(ids)
    txn.cursor(db=dbs[b"heads"]).putmulti(sorted(heads.items()))
    txn.put(b"indexed", _U64.pack(written + size), db=dbs[b"meta"])
    unindexed.clear()
