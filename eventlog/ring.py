"""A fixed-size ring of the most recently committed events, by position."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from eventlog.envelope import RecordedEvent


class EventRing:
    """The last ``capacity`` committed events, addressable by global position.

    Only the writer adds to it, and only after a commit returned, so it never
    holds an event past the committed head.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("ring capacity must be at least 1")
        self._slots: list[RecordedEvent | None] = [None] * capacity
        self._capacity = capacity
        self._first = 0
        self._last = 0

    def extend(self, events: Sequence[RecordedEvent]) -> None:
        """Add events that directly follow the newest one held."""
        if not events:
            return
        if not self._first:
            # A log reopened at head N starts its ring at N+1: the slots
            # below that were never filled, whatever the capacity says.
            self._first = events[0].position
        self._last = events[-1].position
        capacity = self._capacity
        # The events fill consecutive slots: copy them in runs, one per pass
        # of the slot list, rather than one slot at a time.
        while events:
            start = events[0].position % capacity
            run = events[: capacity - start]
            self._slots[start : start + len(run)] = run
            events = events[len(run) :]

    def slice(self, after: int, until: int) -> list[RecordedEvent] | None:
        """Events ``after+1 .. until``, or ``None`` if any of them has left the ring."""
        if until <= after:
            return []
        oldest = max(self._first, self._last - self._capacity + 1)
        if until > self._last or not self._first or after + 1 < oldest:
            return None
        capacity = self._capacity
        start, stop = (after + 1) % capacity, until % capacity + 1
        if start < stop:
            held = self._slots[start:stop]
        else:
            # The range wraps around the end of the slot list.
            held = self._slots[start:] + self._slots[:stop]
        # Slots are filled in position order with no gaps, so a run whose
        # ends hold the right positions holds the right events in between.
        first, last = held[0], held[-1]
        assert first is not None and first.position == after + 1
        assert last is not None and last.position == until
        return cast(list[RecordedEvent], held)
