"""Whole numbers as people type them into flags, variables and query strings.

Python's ``int()`` also takes other scripts' digits (``"١٢"``), underscores
(``"1_000"``) and surrounding blanks. A number that reaches the log or an
error message must mean one thing to every reader, so only ASCII digits,
with an optional leading minus, are accepted.
"""

from __future__ import annotations

import re
from typing import Final

_WHOLE_NUMBER: Final = re.compile(r"-?[0-9]{1,20}")


def parse_whole_number(text: str) -> int | None:
    """The value of ``text`` if it is ``-?[0-9]+`` (at most 20 digits), else None."""
    if _WHOLE_NUMBER.fullmatch(text) is None:
        return None
    return int(text)
