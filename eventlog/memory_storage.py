"""An in-memory backend with the same behaviour as LMDB, for fast unit tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from eventlog.batch import AppendRequest, BatchPlan, plan_batch
from eventlog.chain import HASH_SIZE, ChainBrokenError, check_records, is_intact
from eventlog.envelope import GENESIS_HASH, RecordedEvent
from eventlog.errors import damaged


class MemoryStorage:
    """A log that lives and dies with the process."""

    blocking = False
    readonly = False

    def __init__(self) -> None:
        self._records: list[bytes] = []
        self._events: list[RecordedEvent] = []
        self._streams: dict[str, list[int]] = {}
        self._ids: dict[bytes, int] = {}
        # The whole state is in memory: a batch finds everything here.
        self.recent_versions: dict[str, int] = {}
        self.recent_ids = self._ids
        self._checkpoints: dict[str, int] = {}
        self._head_hash = GENESIS_HASH

    def head(self) -> tuple[int, bytes]:
        return len(self._events), self._head_hash

    def commit(
        self,
        requests: list[AppendRequest],
        checkpoints: Mapping[str, int],
        now_ns: int,
    ) -> BatchPlan:
        plan = plan_batch(requests, self, len(self._events), self._head_hash, now_ns)
        self._records += plan.records
        self._events += plan.events
        for event, key in zip(plan.events, plan.keys, strict=True):
            self._streams.setdefault(event.stream, []).append(event.position)
            self._ids[key] = event.position
        self.recent_versions.update(plan.stream_versions)
        self._head_hash = plan.head_hash
        self._checkpoints.update(checkpoints)
        return plan

    def read_log(self, after: int, limit: int, until: int) -> list[RecordedEvent]:
        if limit <= 0:
            return []
        last = min(until, after + limit, len(self._events))
        return self._events[max(after, 0) : last]

    def read_log_checked(
        self, after: int, limit: int, until: int
    ) -> list[RecordedEvent]:
        last = min(until, after + max(limit, 0), len(self._records))
        first = max(after, 0)
        if last <= first:
            return []
        prev = self._records[first - 1][:HASH_SIZE] if first else GENESIS_HASH
        pairs = zip(range(first + 1, last + 1), self._records[first:last], strict=True)
        try:
            return check_records(pairs, prev)
        except ChainBrokenError as exc:
            raise damaged(None, str(exc)) from None

    def read_stream(
        self, stream: str, from_version: int, limit: int
    ) -> list[RecordedEvent]:
        positions = self._streams.get(stream, [])
        start = max(from_version, 1) - 1
        return [self._events[p - 1] for p in positions[start : start + max(limit, 0)]]

    def stream_version(self, stream: str) -> int:
        return len(self._streams.get(stream, ()))

    def is_stored(self, event_key: bytes) -> bool:
        # Nothing is stored beyond ``recent_ids``.
        return False

    def position_of(self, event_key: bytes) -> int | None:
        return self._ids.get(event_key)

    def event_at(self, position: int) -> RecordedEvent:
        return self._events[position - 1]

    def checkpoint(self, name: str) -> int:
        return self._checkpoints.get(name, 0)

    def first_altered(self, positions: Iterable[int]) -> int | None:
        records = self._records
        for position in positions:
            if not 0 < position <= len(records) or not is_intact(records[position - 1]):
                return position
        return None

    def iter_records(self) -> Iterator[tuple[int, bytes]]:
        for index, record in enumerate(self._records):
            yield index + 1, record

    def indexed_position(self, stream: str, version: int) -> int | None:
        positions = self._streams.get(stream, [])
        return positions[version - 1] if 0 < version <= len(positions) else None

    def index_sizes(self) -> tuple[int, int, dict[str, int]]:
        heads = {stream: len(positions) for stream, positions in self._streams.items()}
        return sum(heads.values()), len(self._ids), heads

    def close(self) -> None:
        pass
