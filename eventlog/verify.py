"""Walk a log's hash chain and indexes and report the first damage found."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from eventlog.chain import check_record
from eventlog.envelope import GENESIS_HASH, parse_event_id
from eventlog.errors import CorruptLogError
from eventlog.storage import Storage


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of a verification walk."""

    head: int
    head_hash: bytes
    events: int
    first_bad_position: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        """True when the chain and every index check out."""
        return self.first_bad_position is None and not self.problem


@dataclass(slots=True)
class _Walk:
    """How far the walk got: events checked, and each stream's version."""

    count: int = 0
    last_hash: bytes = GENESIS_HASH
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def next_position(self) -> int:
        return self.count + 1


def verify(
    storage: Storage, checked: Callable[[int], None] | None = None
) -> VerifyReport:
    """Check every record's chain link and index entries, in position order.

    A changed byte anywhere in a record breaks that record's own hash, so the
    position named is the event that was altered, not the one after it. A
    byte changed in the storage's own structure shows up as a record that
    cannot be read; the position named is then the first one that could not.
    ``checked``, if given, is told the number of events checked after each.

    Raises:
        EventLogError: not even the head could be read.
    """
    head, head_hash = storage.head()
    walk = _Walk()

    def bad(position: int | None, problem: str) -> VerifyReport:
        return VerifyReport(head, head_hash, walk.count, position, problem)

    try:
        found = _check_records(storage, walk, checked)
    except CorruptLogError as exc:
        return bad(walk.next_position, f"the stored log is damaged: {exc.reason}")
    if found is not None:
        return bad(*found)
    try:
        stream_entries, id_entries, heads = storage.index_sizes()
    except CorruptLogError as exc:
        return bad(None, f"the stored log is damaged: {exc.reason}")

    if walk.count != head:
        return bad(walk.next_position, f"log ends before head {head}")
    if walk.last_hash != head_hash:
        return bad(head, "head hash does not match the chain")
    if (
        stream_entries != walk.count
        or id_entries != walk.count
        or heads != walk.versions
    ):
        return bad(None, "indexes hold entries for events that are not in the log")
    return VerifyReport(head, head_hash, walk.count)


def _check_records(
    storage: Storage, walk: _Walk, checked: Callable[[int], None] | None
) -> tuple[int, str] | None:
    """The first bad position and what is wrong there, or None."""
    for position, record in storage.iter_records():
        if position != walk.next_position:
            return walk.next_position, "position is missing"
        try:
            event, own_hash = check_record(record, walk.last_hash)
        except ValueError as exc:
            return position, str(exc)
        if event.position != position:
            return position, "envelope names another position"
        version = walk.versions.get(event.stream, 0) + 1
        if event.version != version:
            return position, f"stream {event.stream!r} jumps to version {event.version}"
        if storage.indexed_position(event.stream, version) != position:
            return position, "stream index disagrees"
        if storage.position_of(parse_event_id(event.event_id)) != position:
            return position, "event id index disagrees"
        walk.versions[event.stream] = version
        walk.last_hash = own_hash
        walk.count += 1
        if checked is not None:
            checked(walk.count)
    return None
