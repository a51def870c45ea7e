"""Tests for splitting a byte stream into lines with a size bound."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from runtime.mcp.lines import LineSplitter

_LINE = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@given(lines=st.lists(_LINE, max_size=20), cuts=st.lists(st.integers(0, 10_000)))
def test_splitter_gives_same_lines_for_any_chunking(
    lines: list[bytes], cuts: list[int]
) -> None:
    """However the stream is cut into chunks, the same lines come out."""
    data = b"".join(line + b"\n" for line in lines)
    splitter = LineSplitter(64)

    out = [line for chunk in _chunks(data, cuts) for line in splitter.feed(chunk)]

    assert out == lines
    assert splitter.rest() == b""


def test_splitter_returns_final_line_without_newline() -> None:
    """Bytes after the last newline come out of rest() at end of file."""
    splitter = LineSplitter(64)

    lines = splitter.feed(b'{"a":1}\n{"b":')
    lines += splitter.feed(b"2}")

    assert lines == [b'{"a":1}']
    assert splitter.rest() == b'{"b":2}'


def test_splitter_accepts_line_of_exactly_the_bound() -> None:
    """A line as long as the bound is still a line."""
    splitter = LineSplitter(8)

    lines = splitter.feed(b"12345678\n")

    assert lines == [b"12345678"]
    assert splitter.overflow is None


def test_splitter_reports_overflow_before_the_newline_arrives() -> None:
    """An unfinished line past the bound is reported without waiting for more."""
    splitter = LineSplitter(8)

    lines = splitter.feed(b"ok\n123456789")

    assert lines == [b"ok"]
    assert splitter.overflow == 9
    assert splitter.feed(b"\nmore\n") == []


def test_splitter_reports_overflow_of_complete_line() -> None:
    """A complete line over the bound stops the splitter after earlier lines."""
    splitter = LineSplitter(4)

    lines = splitter.feed(b"a\n123456\nb\n")

    assert lines == [b"a"]
    assert splitter.overflow == 6


def test_splitter_cuts_long_lines_when_asked() -> None:
    """In cutting mode a long line comes out in bound-sized pieces."""
    splitter = LineSplitter(4, cut_long_lines=True)

    lines = splitter.feed(b"abcdefghij\nxy")
    lines += splitter.feed(b"zw12345")

    assert lines == [b"abcd", b"efgh", b"ij", b"xyzw", b"1234"]
    assert splitter.rest() == b"5"
