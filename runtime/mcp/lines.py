"""Splitting a byte stream into lines without a fixed line-length limit.

MCP servers put each JSON-RPC message on one line, and a single result can be
tens of megabytes, so the reader accumulates chunks and splits on newlines
itself. A bound still applies: past it the reader either reports the overflow
(stdout, where a message cannot be cut) or cuts the line (stderr, where it
can).
"""

from __future__ import annotations


class LineSplitter:
    """Accumulates chunks and hands out complete lines, without the newline.

    Args:
        max_line_bytes: The longest line accepted, newline excluded.
        cut_long_lines: Hand out the first ``max_line_bytes`` of a longer line
            as a line of its own instead of reporting an overflow.
    """

    def __init__(self, max_line_bytes: int, *, cut_long_lines: bool = False) -> None:
        self._max = max_line_bytes
        self._cut = cut_long_lines
        self._buffer = bytearray()
        self._scanned = 0
        self.overflow: int | None = None
        """Bytes seen of the first line over the bound, once one was seen."""

    def feed(self, chunk: bytes | bytearray) -> list[bytes]:
        """Add a chunk and return the lines it completed.

        After an overflow, lines before the oversized one are still returned,
        :attr:`overflow` is set, and nothing further is handed out.
        """
        if self.overflow is not None:
            return []
        self._buffer += chunk
        lines: list[bytes] = []
        while True:
            # Only the newly added bytes need scanning for a newline.
            end = self._buffer.find(b"\n", self._scanned)
            if end < 0:
                break
            if end > self._max and not self._cut:
                self.overflow = end
                return lines
            while self._cut and end > self._max:
                lines.append(bytes(self._buffer[: self._max]))
                del self._buffer[: self._max]
                end -= self._max
            lines.append(bytes(self._buffer[:end]))
            # Deleting from the front of a bytearray is amortised O(1) in
            # CPython, so this does not copy the remaining buffer.
            del self._buffer[: end + 1]
            self._scanned = 0
        while len(self._buffer) > self._max:
            if not self._cut:
                self.overflow = len(self._buffer)
                return lines
            lines.append(bytes(self._buffer[: self._max]))
            del self._buffer[: self._max]
        self._scanned = len(self._buffer)
        return lines

    def rest(self) -> bytes:
        """The bytes after the last newline: a final line without one at EOF."""
        if self.overflow is not None:
            return b""
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._scanned = 0
        return rest
