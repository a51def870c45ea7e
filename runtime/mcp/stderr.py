"""Draining a server's stderr so that a chatty server never blocks.

Two tasks: one reads the pipe all the time and puts lines into a backlog
bounded in bytes; the other hands the backlog to the recorder. A slow recorder
therefore never stops the pipe from being read. When the backlog is full,
lines are counted instead of kept, and the count is recorded in their place.
"""

from __future__ import annotations

import collections

import trio

from runtime.mcp.lines import LineSplitter
from runtime.mcp.types import McpClientConfig, McpRecorder

READ_SIZE = 64 * 1024


class StderrPump:
    """Reads, keeps the tail of, and records one stderr stream."""

    def __init__(
        self,
        stream: trio.abc.ReceiveStream,
        recorder: McpRecorder,
        config: McpClientConfig,
    ) -> None:
        self._stream = stream
        self._recorder = recorder
        self._config = config
        self._tail: collections.deque[str] = collections.deque(
            maxlen=config.stderr_tail_lines
        )
        # Unbounded by count; _queue bounds it by bytes instead.
        self._send, self._receive = trio.open_memory_channel[tuple[str, int]](
            float("inf")
        )
        self._backlog = 0
        self._dropped = 0
        self.eof = trio.Event()
        """Set once the stream ended (or broke)."""
        self.recorded = trio.Event()
        """Set once every line read has gone to the recorder."""

    @property
    def tail(self) -> list[str]:
        """The last lines read, oldest first."""
        return list(self._tail)

    async def read(self) -> None:
        """Read the stream to its end; never waits for the recorder."""
        splitter = LineSplitter(self._config.stderr_line_bytes, cut_long_lines=True)
        try:
            while True:
                try:
                    chunk = await self._stream.receive_some(READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                if not chunk:
                    break
                for line in splitter.feed(chunk):
                    self._queue(line)
            self._queue(splitter.rest())
            if self._dropped:
                self._send.send_nowait((_dropped_text(self._dropped), 0))
        finally:
            self.eof.set()
            self._send.close()

    async def record(self) -> None:
        """Hand every queued line to the recorder, in order."""
        try:
            async with self._receive:
                async for text, size in self._receive:
                    await self._recorder.record("stderr", text)
                    self._backlog -= size
        finally:
            # Also when cancelled: nothing more will be recorded then, and a
            # client waiting to drain the backlog must not wait for nothing
            # (that wait used to add its whole bound to every cancellation).
            self.recorded.set()

    def _queue(self, raw: bytes) -> None:
        text = raw.rstrip(b"\r").decode("utf-8", errors="replace")
        if not text.strip():
            return
        self._tail.append(text)
        if self._backlog + len(raw) > self._config.stderr_backlog_bytes:
            self._dropped += 1
            return
        if self._dropped:
            self._send.send_nowait((_dropped_text(self._dropped), 0))
            self._dropped = 0
        self._backlog += len(raw)
        self._send.send_nowait((text, len(raw)))


def _dropped_text(count: int) -> str:
    return f"[{count} stderr lines not recorded: the recorder fell behind]"
