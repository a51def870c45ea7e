"""Records everything an MCP server says and is told, on its job's stream."""

from __future__ import annotations

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
        payload: Payload
        if kind in ("out", "in"):
            payload = McpFrame(direction=kind, message=value)
        elif kind == "stderr":
            payload = McpStderr(line=str(value))
        else:
            payload = McpNoise(line=str(value))
        await self._ctx.record(payload)
