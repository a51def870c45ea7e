"""The MCP stdio client: handshake, tool listing and tool calls.

While its context is open the client runs three tasks: the stdout reader of
its :class:`~runtime.mcp.connection.JsonRpcConnection`, and the two halves of
a :class:`~runtime.mcp.stderr.StderrPump`. It offers the newest protocol
version it knows, checks the server's choice, advertises no capabilities (so
no server waits for roots or sampling from it), and keeps the tool list
fresh when the server announces a change.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import trio

from runtime.mcp.connection import JsonRpcConnection
from runtime.mcp.errors import McpClosedError, McpError, McpProtocolError
from runtime.mcp.stderr import StderrPump
from runtime.mcp.types import (
    McpClientConfig,
    McpRecorder,
    McpTransport,
    ToolsChangedHook,
)

logger = logging.getLogger(__name__)

MAX_TOOL_PAGES: Final = 1000
# Leaving the client after the server died: the recorder gets this long to
# record the stderr lines still in the backlog, which say why it died.
STDERR_DRAIN_WAIT: Final = 1.0


@asynccontextmanager
async def open_mcp_client(
    transport: McpTransport,
    recorder: McpRecorder,
    config: McpClientConfig | None = None,
    *,
    on_tools_changed: ToolsChangedHook | None = None,
) -> AsyncIterator[McpClient]:
    """Run an MCP client over a server's pipes for the duration of the block.

    Args:
        transport: The server's stdin, stdout and stderr.
        recorder: Awaited for every frame and line.
        config: Timeouts and bounds; defaults when ``None``.
        on_tools_changed: Awaited with the new tool list after each refresh
            triggered by ``notifications/tools/list_changed``.

    Yields:
        The client, not yet initialized.
    """
    config = config or McpClientConfig()
    async with trio.open_nursery() as nursery:
        stderr = StderrPump(transport.stderr, recorder, config)
        connection = JsonRpcConnection(
            transport, recorder, config, nursery, lambda: stderr.tail, stderr.eof
        )
        client = McpClient(connection, stderr, config, nursery, on_tools_changed)
        nursery.start_soon(connection.read)
        nursery.start_soon(stderr.read)
        nursery.start_soon(stderr.record)
        try:
            yield client
        finally:
            connection.close(McpClosedError, "mcp client closed")
            if stderr.eof.is_set():
                # Shielded and bounded: this also runs when the caller is
                # being cancelled, and the server's last words are worth
                # recording then too.
                with (
                    trio.CancelScope(shield=True),
                    trio.move_on_after(STDERR_DRAIN_WAIT),
                ):
                    await stderr.recorded.wait()
            nursery.cancel_scope.cancel()


class McpClient:
    """One MCP session over stdio. Create it with :func:`open_mcp_client`."""

    def __init__(
        self,
        connection: JsonRpcConnection,
        stderr: StderrPump,
        config: McpClientConfig,
        nursery: trio.Nursery,
        on_tools_changed: ToolsChangedHook | None,
    ) -> None:
        self._connection = connection
        self._stderr = stderr
        self._config = config
        self._nursery = nursery
        self._on_tools_changed = on_tools_changed
        self._initialize_result: dict[str, Any] | None = None
        self._tools: list[dict[str, Any]] = []
        self._tools_revision = 0
        self._tools_changed = trio.Event()
        self._list_sequence = itertools.count(1)
        self._stored_sequence = 0
        self._refreshing = False
        self._refresh_again = False
        connection.on_notification = self._on_notification
        connection.on_closed = lambda: self._tools_changed.set()

    @property
    def protocol_version(self) -> str | None:
        """The negotiated protocol version, once initialized."""
        result = self._initialize_result
        return None if result is None else str(result["protocolVersion"])

    @property
    def initialize_result(self) -> dict[str, Any] | None:
        """The server's ``initialize`` result, once initialized."""
        return self._initialize_result

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The tools from the latest ``tools/list`` (started last, not ended)."""
        return list(self._tools)

    @property
    def tools_revision(self) -> int:
        """Counts stored tool listings; see :meth:`wait_tools_changed`."""
        return self._tools_revision

    @property
    def closed(self) -> bool:
        """Whether the session is over."""
        return self._connection.closed

    @property
    def stderr_tail(self) -> list[str]:
        """The last stderr lines read, oldest first."""
        return self._stderr.tail

    async def wait_closed(self) -> McpClosedError:
        """Wait until the session is over and return why, as an error."""
        await self._connection.closed_event.wait()
        return self._connection.closed_error()

    async def wait_tools_changed(self, after_revision: int) -> list[dict[str, Any]]:
        """Wait until :attr:`tools_revision` exceeds ``after_revision``.

        Returns:
            The tools of the new revision.

        Raises:
            McpClosedError: When the session ends first.
        """
        while self._tools_revision <= after_revision:
            self._connection.raise_if_closed()
            # Set by a new listing, and by the end of the session.
            await self._tools_changed.wait()
        return self.tools

    async def initialize(
        self,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Perform the handshake and send ``notifications/initialized``.

        Args:
            timeout: Seconds; ``config.startup_timeout`` when ``None``.

        Returns:
            The server's ``initialize`` result.

        Raises:
            McpProtocolError: When the server picks a version this client does
                not support or answers with something other than an object.
            McpTimeoutError: When the server does not answer in time.
            McpClosedError: When the server exits first.
        """
        versions = self._config.protocol_versions
        params = {
            "protocolVersion": versions[0],
            "capabilities": {},
            "clientInfo": {
                "name": self._config.client_name,
                "version": self._config.client_version,
            },
        }
        seconds = self._config.startup_timeout if timeout is None else timeout
        result = await self._connection.request("initialize", params, seconds)
        if not isinstance(result, dict):
            raise McpProtocolError("mcp initialize result is not an object")
        chosen = result.get("protocolVersion")
        if chosen not in versions:
            raise McpProtocolError(
                f"mcp server chose protocol version {json.dumps(chosen)}, which "
                f"this client does not support (supported: {', '.join(versions)})"
            )

        # Set first: a tools/list_changed that arrives right after the
        # notification below must already see an initialized session.
        self._initialize_result = result
        # Queued, not awaited: it is recorded and written together with the
        # caller's next request (normally tools/list), one append instead of
        # two, and it still goes out first.
        self._connection.notify_soon("notifications/initialized")
        return result

    async def list_tools(
        self,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        """List every tool, following ``nextCursor`` across pages.

        Args:
            timeout: Seconds per page; ``config.call_timeout`` when ``None``.

        Returns:
            The tool objects as the server sent them; also kept in
            :attr:`tools`.

        Raises:
            McpProtocolError: For a malformed page or a repeated cursor.
        """
        self._require_initialized()
        sequence = next(self._list_sequence)
        tools: list[dict[str, Any]] = []
        seen: set[str] = set()
        cursor: str | None = None
        for _ in range(MAX_TOOL_PAGES):
            params = {} if cursor is None else {"cursor": cursor}
            result = await self.request("tools/list", params, timeout)
            page = result.get("tools") if isinstance(result, dict) else None
            if not isinstance(page, list) or not all(isinstance(t, dict) for t in page):
                raise McpProtocolError("mcp tools/list result has no list of tools")
            tools.extend(page)
            cursor = result.get("nextCursor")
            if cursor is None or cursor == "":
                break
            if not isinstance(cursor, str) or cursor in seen:
                raise McpProtocolError(
                    "mcp tools/list returned an invalid or repeated cursor "
                    f"{json.dumps(cursor)}"
                )
            seen.add(cursor)
        else:
            raise McpProtocolError(
                f"mcp tools/list returned more than {MAX_TOOL_PAGES} pages"
            )

        # Two listings may overlap (a refresh and a caller's own); the one
        # that started last reflects the newest state, whichever ends last.
        if sequence > self._stored_sequence:
            self._stored_sequence = sequence
            self._tools = tools
            self._tools_revision += 1
            self._tools_changed.set()
            self._tools_changed = trio.Event()
        return list(tools)

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Call a tool and return its raw result.

        A result with ``isError: true`` is returned, not raised.

        Args:
            name: The tool name.
            arguments: The tool arguments; ``{}`` when ``None``.
            timeout: Seconds; ``config.call_timeout`` when ``None``.

        Raises:
            McpCallError: When the server answers with a JSON-RPC error.
            McpTimeoutError: When no answer comes in time.
            McpClosedError: When the session is or becomes over.
        """
        self._require_initialized()
        params = {"name": name, "arguments": {} if arguments is None else arguments}
        result = await self.request("tools/call", params, timeout)
        if not isinstance(result, dict):
            raise McpProtocolError("mcp tools/call result is not an object")
        return result

    async def request(
        self,
        method: str,
        params: dict[str, Any],
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any:
        """Send any request and return its ``result``.

        Args:
            method: The JSON-RPC method.
            params: Its params object.
            timeout: Seconds for writing and answer; ``config.call_timeout``
                when ``None``. A later answer is dropped.

        Raises:
            McpCallError: When the server answers with a JSON-RPC error.
            McpTimeoutError: When no answer comes in time.
            McpClosedError: When the session is or becomes over.
        """
        seconds = self._config.call_timeout if timeout is None else timeout
        return await self._connection.request(method, params, seconds)

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send a notification to the server.

        Raises:
            McpClosedError: When the session is over.
        """
        await self._connection.notify(method, params)

    def _require_initialized(self) -> None:
        self._connection.raise_if_closed()
        if self._initialize_result is None:
            raise McpProtocolError("mcp session is not initialized")

    def _on_notification(self, method: str, params: Any) -> None:
        if method != "notifications/tools/list_changed":
            return
        if self._initialize_result is None or self.closed:
            return
        if self._refreshing:
            self._refresh_again = True
            return
        self._refreshing = True
        self._nursery.start_soon(self._refresh_tools)

    async def _refresh_tools(self) -> None:
        """List the tools again, once more for each change seen meanwhile."""
        try:
            again = True
            while again:
                self._refresh_again = False
                try:
                    tools = await self.list_tools()
                except McpError as exc:
                    logger.info("mcp tools refresh failed error=%s", exc)
                    return
                if self._on_tools_changed is not None:
                    await self._on_tools_changed(tools)
                again = self._refresh_again
        finally:
            self._refreshing = False
