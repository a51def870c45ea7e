"""Timestamps render as RFC 3339 UTC with milliseconds and a trailing Z."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.timefmt import format_timestamp


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_796_319_168_123_456_789, "2026-12-03T17:32:48.123Z"),
        (1_796_319_168_999_999_999, "2026-12-03T17:32:48.999Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (-62_135_596_800 * 10**9, "0001-01-01T00:00:00.000Z"),
    ],
)
def test_format_timestamp_renders_exact_text(ns: int, text: str) -> None:
    """Known instants render exactly, truncating below the millisecond."""
    rendered = format_timestamp(ns)

    assert rendered == text


def test_format_timestamp_past_year_9999_is_an_error() -> None:
    """An instant past the year 9999 cannot be rendered."""
    with pytest.raises(OverflowError):
        format_timestamp(253_402_300_800 * 10**9)


@given(st.integers(min_value=0, max_value=253_402_300_799_999_999_999))
def test_format_timestamp_parses_back_to_the_millisecond(ns: int) -> None:
    """Parsing the text gives the instant truncated to the millisecond."""
    rendered = format_timestamp(ns)

    parsed = datetime.fromisoformat(rendered)
    millis = (parsed - datetime(1970, 1, 1, tzinfo=UTC)) // datetime.resolution // 1000
    assert rendered.endswith("Z")
    assert millis == ns // 1_000_000
