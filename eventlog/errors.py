"""The event log's exception tree.

Every failure the log reports is one of these, so callers catch by what they
must do next, never by what LMDB happened to raise::

    EventLogError
    ├── AppendRejectedError          the request was refused; nothing written
    │   ├── InvalidAppendError           the request itself is malformed
    │   ├── WrongExpectedVersionError    re-read the stream and decide again
    │   └── IdempotencyConflictError     an event id was reused for other content
    ├── StorageFullError             the map or the disk is full; nothing written
    ├── DataDirectoryError           the directory cannot be used at all
    │   ├── CorruptLogError              the files are damaged or unreadable
    │   ├── ForeignDataDirectoryError    the files belong to something else
    │   └── DataDirectoryLockedError     another process has it open for writing
    ├── LogClosedError               the log was closed; reopen it
    └── LogReadOnlyError             this handle was opened read-only
"""

from __future__ import annotations

from typing import Final

VERIFY_HINT: Final = "matrix-runtime verify names the first damaged position"
"""What a message about damage tells the reader to do next."""


class EventLogError(Exception):
    """Root of every error the event log raises."""


class AppendRejectedError(EventLogError):
    """An append was refused as a whole; none of its events were written."""


class InvalidAppendError(AppendRejectedError, ValueError):
    """The append is malformed: bad stream name, no events, or bad event ids."""


class WrongExpectedVersionError(AppendRejectedError):
    """The stream is not at the version the caller expected."""

    def __init__(self, stream: str, expected: str, actual: int) -> None:
        super().__init__(
            f"stream {stream!r} is at version {actual}, expected {expected}"
        )
        self.stream = stream
        self.expected = expected
        self.actual = actual


class IdempotencyConflictError(AppendRejectedError):
    """An event id that is already stored was sent again with other content."""

    def __init__(
        self, event_id: str, position: int, reason: str = "with different content"
    ) -> None:
        super().__init__(
            f"event id {event_id} is already stored at position {position} {reason}"
        )
        self.event_id = event_id
        self.position = position


class StorageFullError(EventLogError):
    """The log's map or disk is full; the batch was rolled back, nothing lost."""


class DataDirectoryError(EventLogError):
    """The data directory cannot be opened as an event log."""


class CorruptLogError(DataDirectoryError):
    """The stored files are damaged: not LMDB, truncated, or inconsistent."""

    def __init__(self, message: str, reason: str = "", finding: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message
        """What is wrong, without where or what to do about it."""
        self.finding = finding or message
        """Where and what is wrong, without what to do about it."""


class ForeignDataDirectoryError(DataDirectoryError):
    """The directory holds an LMDB environment that is not a Matrix Runtime log."""


class DataDirectoryLockedError(DataDirectoryError):
    """Another process already has the data directory open for writing."""


class LogClosedError(EventLogError):
    """The log has been closed and accepts no more requests."""


class LogReadOnlyError(EventLogError):
    """The log was opened read-only and cannot append."""


def damaged(where: object | None, reason: str) -> CorruptLogError:
    """The error for a damaged log, in directory ``where`` if that is known."""
    finding = f"the stored log is damaged ({reason})"
    if where is not None:
        finding = f"{where}: {finding}"
    return CorruptLogError(f"{finding}; {VERIFY_HINT}", reason, finding)
