"""Facts about one MCP server process, on the stream of the job that runs it."""

from __future__ import annotations

from typing import Any

from eventlog.schemas import Payload, event_type


@event_type("mcp.process_started")
class McpProcessStarted(Payload, frozen=True):
    """The server process was spawned."""

    argv: list[str]
    pid: int
    isolation: str
    attempt: int = 1


@event_type("mcp.frame")
class McpFrame(Payload, frozen=True):
    """One JSON-RPC message, ``direction`` ``out`` (to the server) or ``in``."""

    direction: str
    message: Any


@event_type("mcp.noise")
class McpNoise(Payload, frozen=True):
    """A line on the server's stdout that is not JSON-RPC; skipped."""

    line: str


@event_type("mcp.stderr")
class McpStderr(Payload, frozen=True):
    """One line the server wrote to stderr."""

    line: str


@event_type("mcp.process_exited")
class McpProcessExited(Payload, frozen=True):
    """The server process ended; ``returncode`` is negative for a signal."""

    returncode: int
    attempt: int = 1
