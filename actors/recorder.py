"""Records everything an MCP server says and is told, on its job's stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actors.job_actor import JobContext
from eventlog.schemas import Payload
from eventlog.vocabulary.mcp import McpFrame, McpNoise, McpStderr
from runtime.mcp import RecordKind


class JobRecorder:
    """The MCP client's recorder: one durable event per frame or line."""

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx

    async def record(self, kind: RecordKind, value: Any) -> None:
        """Append the frame or line; returns once it is durable."""
        await self._ctx.record(_payload(kind, value))

    async def record_many(self, items: Sequence[tuple[RecordKind, Any]]) -> None:
        """Append the frames and lines in one append; returns once durable."""
        await self._ctx.record(*(_payload(kind, value) for kind, value in items))


def _payload(kind: RecordKind, value: Any) -> Payload:
    if kind in ("out", "in"):
        return McpFrame(direction=kind, message=value)
    if kind == "stderr":
        return McpStderr(line=str(value))
    return McpNoise(line=str(value))
