"""Control characters: which ones are refused, and how logs escape them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.control_chars import (
    escape_control_characters,
    has_bidi_controls,
    has_control_characters,
    is_blank,
    terminal_safe,
)


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("/v1/jobs", "/v1/jobs"),
        ("/a\r\nb", "/a\\r\\nb"),
        ("/a\x00b\tc", "/a\\x00b\\tc"),
        ("\x1b[31m\x7f", "\\x1b[31m\\x7f"),
        ("\x85\u2028\u2029", "\\x85\\u2028\\u2029"),
        ("\ud800", "\\ud800"),
        ("a\\nb", "a\\\\nb"),
        ("caf\u00e9 \u6f22\u5b57 \U0001f600", "caf\u00e9 \u6f22\u5b57 \U0001f600"),
    ],
)
def test_escape_control_characters_examples(text: str, escaped: str) -> None:
    """Named escapes for CR, LF and tab, hex for the rest, doubled backslashes."""

    assert escape_control_characters(text) == escaped


@given(st.text())
def test_escape_control_characters_leaves_none(text: str) -> None:
    """Whatever goes in, the escaped form holds no control character."""

    escaped = escape_control_characters(text)

    assert not has_control_characters(escaped)
    assert escaped.count("\n") == 0


@given(st.text(alphabet=st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"])))
def test_escape_control_characters_keeps_plain_text(text: str) -> None:
    """Text without control characters or backslashes comes back unchanged."""

    escaped = escape_control_characters(text)

    assert escaped == text.replace("\\", "\\\\")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Neo", False),
        ("Jos\u00e9 \u00c1lvarez", False),
        ("Neo\r\n", True),
        ("N\x00eo", True),
        ("Neo\u2028", True),
        ("Neo\x9b", True),
        ("Neo\u200d", False),
    ],
)
def test_has_control_characters_examples(text: str, found: bool) -> None:
    """C0, DEL, C1 and line separators count; joiners used in names do not."""

    assert has_control_characters(text) is found


@pytest.mark.parametrize(
    ("text", "blank"),
    [
        ("", True),
        (" \t\u00a0", True),
        ("\u200b\u2060\ufeff", True),
        ("\u200d", True),
        ("Neo", False),
        ("\u0939\u200d\u093f", False),
        ("\u200bx", False),
    ],
)
def test_is_blank_sees_only_what_a_reader_sees(text: str, blank: bool) -> None:
    """Spaces, separators and zero-width marks show nothing; any glyph does."""

    assert is_blank(text) is blank


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("evil\u202egnp.exe", True),
        ("\u2066isolated\u2069", True),
        ("mark\u200f", True),
        ("\u05e9\u05dc\u05d5\u05dd", False),
        ("zero\u200dwidth joiner", False),
    ],
)
def test_has_bidi_controls_finds_reordering_marks(text: str, found: bool) -> None:
    """Overrides, isolates and marks are found; right-to-left letters are not."""

    assert has_bidi_controls(text) is found


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('{"text": "a\\nb"}', '{"text": "a\\nb"}'),
        ("\x1b[2J\x1b[31mRED\x08\x08", "\\x1b[2J\\x1b[31mRED\\x08\\x08"),
        ("module\u202e", "module\\u202e"),
        ("line\r\nforged", "line\\r\\nforged"),
    ],
)
def test_terminal_safe_escapes_what_a_terminal_acts_on(text: str, shown: str) -> None:
    """Escape sequences, controls and bidi marks are escaped; backslashes stay."""

    assert terminal_safe(text) == shown
