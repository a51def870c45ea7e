"""Turning what a damaged LMDB file makes the library raise into log errors.

A flipped byte in ``data.mdb`` surfaces far from where it sits: LMDB reports
a page of the wrong type or one that does not exist, a key comes back the
wrong length, or a record no longer decodes. Each of those, and LMDB's other
failures on a read, becomes a :class:`~eventlog.errors.CorruptLogError` or
:class:`~eventlog.errors.EventLogError` that names the directory, so a
command prints one clear line instead of a traceback from deep inside a
reader thread.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Concatenate, Final, ParamSpec, Protocol, TypeVar

import lmdb
import msgspec

from eventlog.errors import EventLogError, damaged

P = ParamSpec("P")
T = TypeVar("T")


class _Storage(Protocol):
    @property
    def path(self) -> Path: ...


S = TypeVar("S", bound=_Storage)

DAMAGE_ERRORS: Final[tuple[type[lmdb.Error], ...]] = (
    lmdb.CorruptedError,
    lmdb.PageNotFoundError,
    lmdb.CursorFullError,
    lmdb.InvalidError,
    lmdb.PanicError,
    lmdb.BadValsizeError,
    lmdb.IncompatibleError,
    lmdb.VersionMismatchError,
    # A read-only transaction only goes bad when a page it met was damaged.
    lmdb.BadTxnError,
)
"""What LMDB raises when the bytes of its file are not what it wrote."""


# py-lmdb prefixes the failing C function's name, or the path it opened.
_CALL_PREFIX = re.compile(r"^[^:]*: (?=MDB_)")


def lmdb_reason(exc: lmdb.Error) -> str:
    """LMDB's own words for ``exc``, without the C function or path before them."""
    return _CALL_PREFIX.sub("", str(exc), count=1)


def read_error(
    path: Path, exc: Exception, position: int | None = None
) -> EventLogError:
    """The log error for ``exc``, raised while reading the log in ``path``.

    ``position`` is the record being decoded, when a decode failed and the
    reader knows which.
    """
    if isinstance(exc, lmdb.Error) and not isinstance(exc, DAMAGE_ERRORS):
        return EventLogError(f"{path}: the log could not be read: {lmdb_reason(exc)}")
    if isinstance(exc, lmdb.Error):
        reason = lmdb_reason(exc)
    elif isinstance(exc, struct.error):
        reason = "a key or value has the wrong size"
    elif isinstance(exc, UnicodeDecodeError):
        reason = "a stored stream or checkpoint name is not UTF-8"
    else:
        record = "a record" if position is None else f"record {position}"
        reason = f"{record} does not decode: {exc}"
    return damaged(path, reason)


READ_FAILURES: Final = (
    lmdb.Error,
    struct.error,
    msgspec.DecodeError,
    UnicodeDecodeError,
)
"""Everything a read of damaged storage can raise below the log's own errors."""


@contextmanager
def reading_storage(path: Path) -> Iterator[None]:
    """Raise :func:`read_error`'s error for a read failure inside the block."""
    try:
        yield
    except READ_FAILURES as exc:
        raise read_error(path, exc) from None


def reads_storage(
    method: Callable[Concatenate[S, P], T],
) -> Callable[Concatenate[S, P], T]:
    """Report a read failure inside a storage's ``method`` as a log error."""

    @functools.wraps(method)
    def reading(storage: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(storage, *args, **kwargs)
        except READ_FAILURES as exc:
            raise read_error(storage.path, exc) from None

    return reading
