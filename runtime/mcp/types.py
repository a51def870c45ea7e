"""What the MCP client is given: its pipes, its recorder and its settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, runtime_checkable

import trio

from runtime.config import VERSION

MIB: Final = 1 << 20

RecordKind = Literal["out", "in", "noise", "stderr"]
ToolsChangedHook = Callable[[list[dict[str, Any]]], Awaitable[None]]


class McpRecorder(Protocol):
    """Receives every frame and line of a session, in order per direction."""

    async def record(self, kind: RecordKind, value: Any) -> None:
        """Record one item.

        Args:
            kind: ``"out"`` (a message about to be sent), ``"in"`` (a message
                received), ``"noise"`` (a stdout line that is not JSON-RPC) or
                ``"stderr"`` (one line of standard error).
            value: The message (dict, or list for a batch) or the line (str).
        """


@runtime_checkable
class McpBatchRecorder(McpRecorder, Protocol):
    """A recorder that can also take several items at once.

    The client then records the messages of one read, or the messages queued
    for one write, in one go instead of waiting for each in turn.
    """

    async def record_many(self, items: Sequence[tuple[RecordKind, Any]]) -> None:
        """Record ``items`` in order, all at once, as :meth:`record` would."""


class McpTransport(Protocol):
    """The pipes of a running server; a ``SandboxedProcess`` is one."""

    @property
    def stdin(self) -> trio.abc.SendStream: ...

    @property
    def stdout(self) -> trio.abc.ReceiveStream: ...

    @property
    def stderr(self) -> trio.abc.ReceiveStream: ...


@dataclass(frozen=True)
class McpClientConfig:
    """Timeouts, bounds and identity of the client.

    Attributes:
        startup_timeout: Seconds ``initialize`` may take.
        call_timeout: Default seconds for every other request.
        max_message_bytes: The largest message accepted from the server.
        protocol_versions: Supported versions, newest first; the first one is
            offered.
        client_name: ``clientInfo.name`` sent in ``initialize``.
        client_version: ``clientInfo.version`` sent in ``initialize``.
        stderr_backlog_bytes: stderr kept waiting for the recorder; lines
            beyond it are counted and reported instead of recorded.
        stderr_line_bytes: Longer stderr lines are cut into pieces.
        stderr_tail_lines: stderr lines quoted when the server closes.
    """

    startup_timeout: float = 45.0
    call_timeout: float = 20.0
    max_message_bytes: int = 64 * MIB
    protocol_versions: tuple[str, ...] = (
        "2025-11-25",
        "2025-06-18",
        "2025-03-26",
        "2024-11-05",
    )
    client_name: str = "matrix-runtime"
    client_version: str = VERSION
    stderr_backlog_bytes: int = 4 * MIB
    stderr_line_bytes: int = 64 * 1024
    stderr_tail_lines: int = 5
