"""Control characters in text from outside: detect them, or escape them for logs.

Names, paths and addresses that clients send end up in mails and log lines.
A carriage return or line feed there forges a new log line or a mail header,
a NUL truncates what some readers show, and a lone surrogate cannot even be
encoded. Those characters are the ones refused or escaped here: the Unicode
categories Cc (C0, DEL and C1 controls), Cs (surrogates), Zl and Zp (the line
and paragraph separators, which some viewers break lines at).
"""

from __future__ import annotations

import unicodedata
from typing import Final

CONTROL_CATEGORIES: Final = frozenset({"Cc", "Cs", "Zl", "Zp"})

BIDI_CONTROLS: Final = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
"""The marks, embeddings, overrides and isolates that reorder text around them.

In a name they make what is shown differ from what is stored (a right-to-left
override turns ``evil\u202egnp.exe`` into what reads as ``evilexe.png``).
"""

_INVISIBLE_CATEGORIES: Final = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})

_SHORT_ESCAPES: Final = {"\\": "\\\\", "\r": "\\r", "\n": "\\n", "\t": "\\t"}


def is_control_character(char: str) -> bool:
    """Whether the single character ``char`` must not reach a mail or a log line."""
    return unicodedata.category(char) in CONTROL_CATEGORIES


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds any character :func:`is_control_character` refuses."""
    return any(is_control_character(char) for char in text)


def has_bidi_controls(text: str) -> bool:
    """Whether ``text`` holds any of :data:`BIDI_CONTROLS`."""
    return any(char in BIDI_CONTROLS for char in text)


_JOINERS: Final = frozenset("\u200c\u200d")
"""Zero-width (non-)joiners: invisible, but part of how some scripts are spelled."""


def has_hidden_characters(text: str) -> bool:
    """Whether ``text`` holds an invisible formatting character other than a joiner.

    A zero-width space or word joiner inside a name makes two names that
    look the same compare different.
    """
    return any(
        unicodedata.category(char) == "Cf" and char not in _JOINERS for char in text
    )


def is_blank(text: str) -> bool:
    """Whether ``text`` shows nothing: only spaces, separators and format marks.

    A zero-width space or joiner alone is not empty to ``str.strip`` but is
    to a reader.
    """
    return all(unicodedata.category(char) in _INVISIBLE_CATEGORIES for char in text)


def escape_control_characters(text: str) -> str:
    """``text`` with every control character and bidi control as a backslash escape.

    ``\\r``, ``\\n`` and ``\\t`` keep their usual names, other characters
    below U+0100 become ``\\xNN`` and the rest ``\\uNNNN``. A backslash is
    doubled, so an escape in the output always stands for exactly one
    character of the input and a path cannot pretend to hold one.
    """
    if (
        "\\" not in text
        and not has_control_characters(text)
        and not has_bidi_controls(text)
    ):
        return text
    return "".join(_escape(char) for char in text)


def terminal_safe(text: str) -> str:
    """``text`` with control characters and bidi controls escaped, for a screen.

    Unlike :func:`escape_control_characters` a backslash stays single, so JSON
    in a transcript reads as JSON; what matters on a terminal is that no
    escape sequence or reordering mark reaches it.
    """
    if not has_control_characters(text) and not has_bidi_controls(text):
        return text
    return "".join(char if char == "\\" else _escape(char) for char in text)


def _escape(char: str) -> str:
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    if not is_control_character(char) and char not in BIDI_CONTROLS:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
