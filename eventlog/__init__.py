"""The durable, hash-chained, append-only event log everything is built on.

Nothing here imports the rest of the product.
"""

from eventlog.envelope import (
    AppendResult,
    Expected,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
)
from eventlog.errors import (
    AppendRejectedError,
    CorruptLogError,
    DataDirectoryError,
    DataDirectoryLockedError,
    EventLogError,
    ForeignDataDirectoryError,
    IdempotencyConflictError,
    InvalidAppendError,
    LogClosedError,
    LogReadOnlyError,
    StorageFullError,
    WrongExpectedVersionError,
)
from eventlog.lmdb_storage import LmdbStorage
from eventlog.log import EventLog
from eventlog.memory_storage import MemoryStorage
from eventlog.verify import VerifyReport, verify

__all__ = [
    "AppendRejectedError",
    "AppendResult",
    "CorruptLogError",
    "DataDirectoryError",
    "DataDirectoryLockedError",
    "EventLog",
    "EventLogError",
    "Expected",
    "ExpectedVersion",
    "ForeignDataDirectoryError",
    "IdempotencyConflictError",
    "InvalidAppendError",
    "LmdbStorage",
    "LogClosedError",
    "LogReadOnlyError",
    "MemoryStorage",
    "NewEvent",
    "RecordedEvent",
    "StorageFullError",
    "VerifyReport",
    "WrongExpectedVersionError",
    "verify",
]
