"""JSON-RPC 2.0 over a server's stdin and stdout, one message per line.

Requests carry unique integer ids and wait on their own slot, so responses
may arrive in any order and requests may run concurrently. A message with a
``method`` is a request or notification from the server, never a response,
whatever its id. Requests from the server are answered at once: ``ping`` with
an empty result, anything else with error -32601. Every frame goes through the
recorder, awaited, before it is written or acted on. The messages of one read
are recorded together, and so are the messages queued while an earlier write
was being recorded, so a busy session needs one append per batch, not one per
message.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Final

import msgspec
import trio

from runtime.mcp.errors import (
    McpClosedError,
    McpError,
    McpMessageTooLargeError,
    McpTimeoutError,
)
from runtime.mcp.lines import LineSplitter
from runtime.mcp.messages import as_request_id, call_error, parse_line
from runtime.mcp.types import (
    McpBatchRecorder,
    McpClientConfig,
    McpRecorder,
    McpTransport,
    RecordKind,
)

logger = logging.getLogger(__name__)

READ_SIZE: Final = 256 * 1024
METHOD_NOT_FOUND: Final = -32601
# When stdout ends, stderr usually ends a moment later; its last lines explain
# the exit, so the closing error waits this long for them.
STDERR_EOF_WAIT: Final = 0.5

NotificationHandler = Callable[[str, Any], None]


class JsonRpcConnection:
    """Requests, responses and notifications over one server's pipes.

    Args:
        transport: The server's pipes.
        recorder: Awaited for every frame and non-JSON line.
        config: Bounds and timeouts.
        nursery: Where answers to server requests and cancel notices run.
        stderr_tail: Returns the last stderr lines, quoted when closing.
        stderr_eof: Set when stderr ended; closing waits briefly for it.
    """

    def __init__(
        self,
        transport: McpTransport,
        recorder: McpRecorder,
        config: McpClientConfig,
        nursery: trio.Nursery,
        stderr_tail: Callable[[], list[str]],
        stderr_eof: trio.Event,
    ) -> None:
        self._transport = transport
        self._recorder = recorder
        self._config = config
        self._nursery = nursery
        self._stderr_tail = stderr_tail
        self._stderr_eof = stderr_eof
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._send_lock = trio.Lock()
        self._outbox: list[_Outgoing] = []
        self._record_many = (
            recorder.record_many if isinstance(recorder, McpBatchRecorder) else None
        )
        self._close_reason: tuple[type[McpClosedError], str] | None = None
        self.closed_event = trio.Event()
        """Set when the session is over."""
        self.on_notification: NotificationHandler | None = None
        """Called, without awaiting, with the method and params of each
        notification from the server."""
        self.on_closed: Callable[[], None] | None = None
        """Called once, without awaiting, when the session ends."""

    @property
    def closed(self) -> bool:
        """Whether the session is over."""
        return self._close_reason is not None

    def closed_error(self) -> McpClosedError:
        """A fresh error saying why the session is over."""
        assert self._close_reason is not None
        kind, message = self._close_reason
        return kind(message)

    def raise_if_closed(self) -> None:
        """Raise the closing error when the session is over."""
        if self._close_reason is not None:
            raise self.closed_error()

    async def request(self, method: str, params: dict[str, Any], seconds: float) -> Any:
        """Send a request and wait for its result.

        The deadline covers writing the request as well as the answer. When
        it passes, the server is told with ``notifications/cancelled``
        (except for ``initialize``) and a later answer is dropped.

        Raises:
            McpCallError: For a JSON-RPC error response.
            McpTimeoutError: When no answer comes within ``seconds``.
            McpClosedError: When the session is or becomes over.
        """
        self.raise_if_closed()
        request_id = next(self._ids)
        slot = _Pending(method)
        self._pending[request_id] = slot
        message = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": method,
            "params": params,
        }
        sent = False
        try:
            with trio.move_on_after(seconds):
                await self._send(message)
                sent = True
                await slot.done.wait()
        finally:
            # Also reached when the caller is cancelled: the request is
            # abandoned either way, and the server may stop working on it.
            self._pending.pop(request_id, None)
            if sent and not slot.done.is_set() and method != "initialize":
                self._start_cancel_notice(request_id)

        if not slot.done.is_set():
            raise McpTimeoutError(f"mcp {method} timed out after {seconds:g}s")
        if slot.error is not None:
            raise slot.error
        return slot.result

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send a notification.

        Raises:
            McpClosedError: When the session is over.
        """
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self._send(message)

    def notify_soon(self, method: str) -> None:
        """Queue a notification without params, without waiting for it.

        It is recorded and written with the next message sent, or on its own
        a moment later; either way before anything sent after it.

        Raises:
            McpClosedError: When the session is over.
        """
        self._queue({"jsonrpc": "2.0", "method": method})
        try:
            self._nursery.start_soon(self._write_queued_soon)
        except RuntimeError:
            logger.debug("mcp notification not sent method=%s: client closed", method)

    async def read(self) -> None:
        """Read stdout until it ends or a message is too large, then close."""
        splitter = LineSplitter(self._config.max_message_bytes)
        while True:
            try:
                chunk = await self._transport.stdout.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                break
            if not chunk:
                break
            await self._handle_lines(splitter.feed(chunk))
            if splitter.overflow is not None:
                limit = self._config.max_message_bytes
                logger.info(
                    "mcp message too large bytes_seen=%s limit=%s",
                    splitter.overflow,
                    limit,
                )
                self.close(
                    McpMessageTooLargeError,
                    f"mcp server sent a message over the {limit}-byte limit "
                    "(max_message_bytes); the session is closed",
                )
                return
        rest = splitter.rest()
        if rest:
            await self._handle_lines([rest])

        with trio.move_on_after(STDERR_EOF_WAIT):
            await self._stderr_eof.wait()
        self.close(McpClosedError, self._closed_message("its output ended"))

    def close(self, kind: type[McpClosedError], message: str) -> None:
        """End the session once; fail every waiting and every later request."""
        if self._close_reason is not None:
            return
        self._close_reason = (kind, message)
        logger.info("mcp session closed reason=%s", message)
        pending = list(self._pending.values())
        self._pending.clear()
        for slot in pending:
            slot.error = kind(message)
            slot.done.set()
        self.closed_event.set()
        if self.on_closed is not None:
            self.on_closed()

    # -- private -----------------------------------------------------------

    async def _send(self, message: dict[str, Any]) -> None:
        outgoing = self._queue(message)
        try:
            async with self._send_lock:
                # Another sender may have taken it along in its batch.
                if not outgoing.taken:
                    await self._write_queued()
        except trio.Cancelled:
            if not outgoing.taken:
                # Withdrawn before it was recorded: it is never sent.
                self._outbox.remove(outgoing)
            raise
        if outgoing.error is not None:
            raise outgoing.error

    def _queue(self, message: dict[str, Any]) -> _Outgoing:
        self.raise_if_closed()
        outgoing = _Outgoing(message, msgspec.json.encode(message) + b"\n")
        self._outbox.append(outgoing)
        return outgoing

    async def _write_queued_soon(self) -> None:
        async with self._send_lock:
            if self._outbox:
                await self._write_queued()

    async def _write_queued(self) -> None:
        """Record, then write, every queued message; call with the send lock.

        Failures are left on the messages for their senders to raise.
        """
        batch, self._outbox = self._outbox, []
        for outgoing in batch:
            outgoing.taken = True
        if self.closed:
            for outgoing in batch:
                outgoing.error = self.closed_error()
            return
        try:
            # Shielded so that a frame in the log was also written: the
            # write below needs no checkpoint while the pipe has room, so a
            # cancellation arriving meanwhile is only seen after it.
            with trio.CancelScope(shield=True):
                await self._record([("out", outgoing.message) for outgoing in batch])
            await self._transport.stdin.send_all(b"".join(o.data for o in batch))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            # The server is most likely gone; the stdout reader is about
            # to close the session with its last stderr lines, which say
            # more than a broken pipe does.
            with trio.move_on_after(2 * STDERR_EOF_WAIT):
                await self.closed_event.wait()
            self.close(McpClosedError, self._closed_message("its input closed"))
            for outgoing in batch:
                outgoing.error = self.closed_error()
                outgoing.error.__cause__ = exc
        except trio.Cancelled:
            # send_all only yields once the pipe is full, so part of the
            # batch is out already; whatever followed would be glued to it.
            self.close(
                McpClosedError,
                "mcp session broken: a write to the server was interrupted",
            )
            for outgoing in batch:
                outgoing.error = self.closed_error()
            raise
        except Exception as exc:
            # The recorder failed, so nothing was written.
            for outgoing in batch:
                outgoing.error = exc

    async def _record(self, items: list[tuple[RecordKind, Any]]) -> None:
        if self._record_many is not None and len(items) > 1:
            await self._record_many(items)
            return
        for kind, value in items:
            await self._recorder.record(kind, value)

    def _start_cancel_notice(self, request_id: int) -> None:
        if self.closed:
            return
        try:
            self._nursery.start_soon(self._send_cancel_notice, request_id)
        except RuntimeError:
            logger.debug("mcp cancel notice skipped id=%s: client closed", request_id)

    async def _send_cancel_notice(self, request_id: int) -> None:
        params = {"requestId": request_id, "reason": "request abandoned by the client"}
        with suppress(McpError):
            await self.notify("notifications/cancelled", params)

    async def _answer(self, request_id: str | int, method: str) -> None:
        response: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        if method == "ping":
            response["result"] = {}
        else:
            response["error"] = {
                "code": METHOD_NOT_FOUND,
                "message": f"method not supported by this client: {method}",
            }
        with suppress(McpClosedError):
            await self._send(response)

    async def _handle_lines(self, lines: list[bytes]) -> None:
        """Record everything one read brought in one go, then act on it."""
        items = [item for line in lines if (item := parse_line(line)) is not None]
        if not items:
            return
        await self._record(items)
        for kind, value in items:
            if kind == "in":
                for message in value if isinstance(value, list) else [value]:
                    self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        message_id = message.get("id")
        if isinstance(method, str):
            if "id" not in message:
                if self.on_notification is not None:
                    self.on_notification(method, message.get("params"))
            elif (request_id := as_request_id(message_id)) is not None:
                # Answered from its own task: writing may wait for the server
                # to read, and this reader must keep reading meanwhile.
                self._nursery.start_soon(self._answer, request_id, method)
            else:
                logger.debug("mcp request with invalid id ignored id=%r", message_id)
            return

        if "result" not in message and "error" not in message:
            logger.debug("mcp message of unknown shape ignored")
            return
        response_id = as_request_id(message_id)
        slot = None
        if isinstance(response_id, int):
            slot = self._pending.pop(response_id, None)
        if slot is None:
            # Typically the answer to a request that timed out.
            logger.debug("mcp response dropped: nothing waits for id=%r", message_id)
            return
        if "error" in message:
            slot.error = call_error(slot.method, message["error"])
        else:
            slot.result = message["result"]
        slot.done.set()

    def _closed_message(self, what: str) -> str:
        tail = [line[:300] for line in self._stderr_tail()]
        stderr = " | ".join(tail) if tail else "(nothing)"
        return f"mcp server closed: {what}; last stderr: {stderr}"


class _Outgoing:
    """A message queued for writing, and what became of it."""

    __slots__ = ("data", "error", "message", "taken")

    def __init__(self, message: dict[str, Any], data: bytes) -> None:
        self.message = message
        self.data = data
        self.taken = False
        """Taken into a batch: it is being, or has been, recorded and written."""
        self.error: BaseException | None = None


class _Pending:
    """The waiting slot of one request."""

    __slots__ = ("done", "error", "method", "result")

    def __init__(self, method: str) -> None:
        self.method = method
        self.done = trio.Event()
        self.result: Any = None
        self.error: McpError | None = None
