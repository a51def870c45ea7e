"""The one timestamp format the API shows: RFC 3339, UTC, milliseconds, ``Z``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

_EPOCH: Final = datetime(1970, 1, 1)
_NS_PER_SECOND: Final = 1_000_000_000
_NS_PER_MS: Final = 1_000_000


def format_timestamp(ns: int) -> str:
    """Render nanoseconds since the Unix epoch, e.g. ``2026-12-03T17:32:48.123Z``.

    Sub-millisecond digits are truncated, never rounded, so a rendered time is
    never later than the instant it stands for.

    Raises:
        OverflowError: the instant is outside the years 1 to 9999.
    """
    seconds, rest = divmod(ns, _NS_PER_SECOND)
    # Naive datetimes plus a timedelta avoid the platform's gmtime limits and
    # give a zero-padded four-digit year for every representable instant.
    moment = _EPOCH + timedelta(seconds=seconds)
    return f"{moment.isoformat(timespec='seconds')}.{rest // _NS_PER_MS:03d}Z"
