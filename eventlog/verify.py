"""Walk a log's hash chain and indexes and report the first damage found."""

from __future__ import annotations

from dataclasses import dataclass

from eventlog.chain import check_record
from eventlog.envelope import GENESIS_HASH, parse_event_id
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


def verify(storage: Storage) -> VerifyReport:
    """Check every record's chain link and index entries, in position order.

    A changed byte anywhere in a record breaks that record's own hash, so the
    position named is the event that was altered, not the one after it.
    """
    head, head_hash = storage.head()
    expected_prev = GENESIS_HASH
    expected_position = 1
    count = 0
    versions: dict[str, int] = {}

    for position, record in storage.iter_records():
        if position != expected_position:
            return _bad(
                head, head_hash, count, expected_position, "position is missing"
            )
        try:
            event, expected_prev = check_record(record, expected_prev)
        except ValueError as exc:
            return _bad(head, head_hash, count, position, str(exc))
        if event.position != position:
            return _bad(
                head, head_hash, count, position, "envelope names another position"
            )
        version = versions.get(event.stream, 0) + 1
        if event.version != version:
            return _bad(
                head,
                head_hash,
                count,
                position,
                f"stream {event.stream!r} jumps to version {event.version}",
            )
        versions[event.stream] = version
        if storage.indexed_position(event.stream, version) != position:
            return _bad(head, head_hash, count, position, "stream index disagrees")
        if storage.position_of(parse_event_id(event.event_id)) != position:
            return _bad(head, head_hash, count, position, "event id index disagrees")
        count += 1
        expected_position += 1

    if count != head:
        return _bad(head, head_hash, count, count + 1, f"log ends before head {head}")
    if expected_prev != head_hash:
        return _bad(head, head_hash, count, head, "head hash does not match the chain")
    stream_entries, id_entries, heads = storage.index_sizes()
    if stream_entries != count or id_entries != count or heads != versions:
        return VerifyReport(
            head,
            head_hash,
            count,
            None,
            "indexes hold entries for events that are not in the log",
        )
    return VerifyReport(head, head_hash, count)


def _bad(
    head: int, head_hash: bytes, count: int, position: int, problem: str
) -> VerifyReport:
    return VerifyReport(head, head_hash, count, position, problem)
