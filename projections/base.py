"""What a read model is: a pure fold over the log, with a snapshot encoding.

A projection owns no I/O. The :class:`~projections.runner.ProjectionRunner`
feeds it events in log order and stores its snapshots; because ``apply`` reads
nothing but its arguments, a live fold, a rebuild from position 1 and a
restore from a snapshot all end in the same state.
"""

from __future__ import annotations

import logging
from typing import Protocol, TypeVar

from eventlog import RecordedEvent

S = TypeVar("S")

log = logging.getLogger(__name__)


class Projection(Protocol[S]):
    """A read model folded from the log.

    Attributes:
        name: Stable identifier; the snapshot key. Never reuse one for a
            different read model.
        version: Format version of the snapshot encoding *and* of the fold
            rules. Bump it whenever either changes, so snapshots written by an
            older build are ignored and the state is rebuilt from the log.
    """

    name: str
    version: int

    def initial(self) -> S:
        """Return the state before any event (a fresh object every call)."""
        ...

    def apply(self, state: S, event: RecordedEvent) -> S:
        """Fold one event into ``state`` and return the new state.

        Must be deterministic: it reads only ``state`` and ``event`` (never a
        clock, a random source or a file). It may mutate ``state`` in place
        and return it. Event types it does not know leave ``state`` unchanged.

        Raises:
            Exception: any error for a malformed payload of a known type; the
                caller logs it and skips the event.
        """
        ...

    def encode(self, state: S) -> bytes:
        """Encode ``state`` for a snapshot (msgpack)."""
        ...

    def decode(self, data: bytes) -> S:
        """Decode what :meth:`encode` produced.

        Raises:
            Exception: ``data`` is not a state of this version; the caller then
                rebuilds from the log.
        """
        ...


def apply_event(
    projection: Projection[S], state: S, event: RecordedEvent
) -> tuple[S, bool]:
    """Fold one event, skipping it (logged, with its position) if ``apply`` fails.

    Every fold path goes through here, so the live runner, a rebuild and a
    time-travel fold skip exactly the same events.

    Returns:
        The state after the event, and whether the event was applied (False
        when it was skipped).
    """
    try:
        return projection.apply(state, event), True
    except Exception:
        # A malformed event must not stop the read model: everything after it
        # is still worth serving. The skip is deterministic, so a rebuild
        # skips the same event.
        log.exception(
            "projection event skipped name=%s position=%s type=%s stream=%s",
            projection.name,
            event.position,
            event.type,
            event.stream,
        )
        return state, False
