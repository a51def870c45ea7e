"""Index entries of committed events that the index tables do not hold yet.

Writing the stream and event-id index with every commit would dirty one
page per active stream per commit, and each dirty page costs a write and a
flush. So a commit stores only the records and the head; the index entries
of the events above the ``indexed`` mark live here, in memory, and are
written to the index tables together, thousands of events at a time.

Nothing here needs to be durable: every entry is derived from a committed
record, so after a crash the entries above the mark are read back from the
log (:func:`scan_pending`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from eventlog.envelope import RecordedEvent, parse_event_id


@dataclass(slots=True, eq=False)
class PendingIndex:
    """Index entries for the positions ``base + 1 .. last``.

    Only the writer adds to it, after each commit; readers in other threads
    only look things up, which the GIL keeps consistent for single dict and
    list operations. After the entries reach the tables the writer replaces
    the whole object rather than emptying it, so a reader holding the old
    one never sees it change under it.
    """

    base: int
    last: int = 0
    ids: dict[bytes, int] = field(default_factory=dict)
    # stream -> (its first version held here, positions of that and later
    # versions): versions above the mark are contiguous per stream.
    streams: dict[str, tuple[int, list[int]]] = field(default_factory=dict)
    # stream -> its latest version, kept apart for the writer's lookups.
    versions: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.last = max(self.last, self.base)

    @property
    def size(self) -> int:
        """How many events the entries cover."""
        return self.last - self.base

    def add(
        self,
        events: Sequence[RecordedEvent],
        keys: Sequence[bytes],
        versions: Mapping[str, int],
    ) -> None:
        """Take the entries of committed, consecutive events.

        ``keys`` are their 16-byte ids and ``versions`` each stream's version
        after the last of them.
        """
        if not events:
            return
        first = events[0].position
        last = first + len(events) - 1
        streams = self.streams
        for event in events:
            entry = streams.get(event.stream)
            if entry is None:
                streams[event.stream] = (event.version, [event.position])
            else:
                entry[1].append(event.position)
        # Whole-batch updates run in C: the dicts get their new entries in
        # one call each instead of one Python statement per event.
        self.ids.update(zip(keys, range(first, last + 1), strict=True))
        self.versions.update(versions)
        self.last = last

    def version(self, stream: str) -> int | None:
        """The stream's version if it has events here, else ``None``."""
        return self.versions.get(stream)

    def position(self, stream: str, version: int) -> int | None:
        """The position of ``stream`` at ``version`` if held here."""
        entry = self.streams.get(stream)
        if entry is None:
            return None
        first, positions = entry
        index = version - first
        return positions[index] if 0 <= index < len(positions) else None

    def positions(
        self, stream: str, from_version: int, limit: int, until: int
    ) -> list[int]:
        """Positions of ``stream`` from ``from_version``, at most ``limit``.

        Positions past ``until`` (committed after the caller's snapshot)
        are left out.
        """
        entry = self.streams.get(stream)
        if entry is None or limit <= 0:
            return []
        first, positions = entry
        start = max(from_version - first, 0)
        # Copy before filtering: the writer may append while we read.
        chosen = positions[start : start + limit]
        return [position for position in chosen if position <= until]


def scan_pending(base: int, records: Sequence[RecordedEvent]) -> PendingIndex:
    """Rebuild the entries above ``base`` from the committed records after it."""
    pending = PendingIndex(base)
    pending.add(
        records,
        [parse_event_id(event.event_id) for event in records],
        {event.stream: event.version for event in records},
    )
    return pending
