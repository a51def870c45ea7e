"""A raw pass over every page of an LMDB data file, for ``verify``.

Walking the log's tables reads only the pages that hold live entries. LMDB
also keeps pages of older transactions, listed in its free-page table, which
py-lmdb cannot open; a writer reads and reuses them later, and a damaged
header there stops it. Every page LMDB has written carries its own number
and its kind in its header, so reading each header in file order finds such
damage without trusting any pointer: a header naming another page, a kind
that is none of LMDB's, node bounds outside the page, or an overflow run
past the end.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Final

_HEADER = struct.Struct("<QHHHH")
"""Page number, padding, flags, then lower and upper node bounds."""
_OVERFLOW_PAGES = struct.Struct("<I")
_HEADER_SIZE: Final = 16
_BRANCH: Final = 0x01
_LEAF: Final = 0x02
_OVERFLOW: Final = 0x04
_META: Final = 0x08
_KINDS: Final = (_BRANCH, _LEAF, _OVERFLOW)
_KNOWN_FLAGS: Final = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x40 | 0x4000 | 0x8000
_META_PAGES: Final = 2


def first_bad_page(data_file: Path, page_size: int, last_page: int) -> str | None:
    """What is wrong with the first damaged page header, or None.

    ``last_page`` is the highest page number LMDB has handed out; pages up to
    it are read. A page of zeros was handed out and freed again before it was
    ever written, and is not damage.
    """
    with open(data_file, "rb") as data:
        page = _META_PAGES
        while page <= last_page:
            data.seek(page * page_size)
            header = data.read(page_size)
            if len(header) < page_size:
                return f"page {page} is cut short"
            if not any(header):
                page += 1
                continue
            number, _, flags, lower, upper = _HEADER.unpack_from(header)
            kind = flags & (_BRANCH | _LEAF | _OVERFLOW | _META)
            if number != page:
                return f"page {page} says it is page {number}"
            if flags & ~_KNOWN_FLAGS or kind not in _KINDS:
                return f"page {page} has flags {flags:#06x}, which LMDB never writes"
            if kind == _OVERFLOW:
                (count,) = _OVERFLOW_PAGES.unpack_from(header, 12)
                if count < 1 or page + count - 1 > last_page:
                    return f"page {page} starts an overflow run of {count} pages"
                page += count
                continue
            if not _HEADER_SIZE <= lower <= upper <= page_size:
                return f"page {page} has node bounds {lower}..{upper}"
            page += 1
    return None
