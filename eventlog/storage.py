"""The interface every log backend implements.

A backend is synchronous. The :class:`~eventlog.log.EventLog` runs its calls
in worker threads when ``blocking`` is true, and never runs two ``commit``
calls at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from eventlog.batch import AppendRequest, BatchPlan
from eventlog.envelope import RecordedEvent


class Storage(Protocol):
    """Committed state of one log, and the single way to change it."""

    blocking: bool
    """True when calls touch the disk and must run in a worker thread."""

    readonly: bool

    def head(self) -> tuple[int, bytes]:
        """The last committed position (0 when empty) and its chain hash."""
        ...

    def commit(
        self,
        requests: list[AppendRequest],
        checkpoints: Mapping[str, int],
        now_ns: int,
    ) -> BatchPlan:
        """Validate, write and durably commit one batch in one transaction.

        Rejected requests get ``error`` set and are not written. Raises
        :class:`~eventlog.errors.StorageFullError` (nothing written) when the
        batch does not fit.
        """
        ...

    def read_log(self, after: int, limit: int, until: int) -> list[RecordedEvent]:
        """Events at positions ``after+1 ..`` up to ``until``, at most ``limit``."""
        ...

    def read_log_checked(
        self, after: int, limit: int, until: int
    ) -> list[RecordedEvent]:
        """Like :meth:`read_log`, checking every record against the chain.

        Raises:
            CorruptLogError: at the first record whose bytes no longer match
                its hash or whose link does not follow the record before it.
        """
        ...

    def read_stream(
        self, stream: str, from_version: int, limit: int
    ) -> list[RecordedEvent]:
        """Events of ``stream`` from version ``from_version`` on, at most ``limit``."""
        ...

    def stream_version(self, stream: str) -> int:
        """The stream's current version, 0 when it has no events."""
        ...

    def checkpoint(self, name: str) -> int:
        """The saved checkpoint ``name``, 0 when none was saved."""
        ...

    def first_altered(self, positions: Iterable[int]) -> int | None:
        """The first of ``positions`` whose record is missing or fails its hash."""
        ...

    def iter_records(self) -> Iterator[tuple[int, bytes]]:
        """Every stored record with the position its key says, in key order."""
        ...

    def indexed_position(self, stream: str, version: int) -> int | None:
        """The position the stream index stores for ``stream`` at ``version``."""
        ...

    def position_of(self, event_key: bytes) -> int | None:
        """The position the id index stores for a 16-byte event id."""
        ...

    def index_sizes(self) -> tuple[int, int, dict[str, int]]:
        """Entries in the stream index, in the id index, and the stream heads."""
        ...

    def close(self) -> None:
        """Release files and locks; idempotent."""
        ...
