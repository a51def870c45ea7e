"""Errors of the MCP client, one tree under :class:`McpError`.

::

    McpError                      anything the MCP client raises
    ├── McpProtocolError          bad handshake, unsupported protocol version,
    │                             a result of the wrong shape
    ├── McpCallError              the server answered with a JSON-RPC error
    ├── McpTimeoutError           no answer within the timeout
    └── McpClosedError            the session is over: the server closed its
        │                         output, its input broke, or the client closed
        └── McpMessageTooLargeError
                                  a message exceeded max_message_bytes, which
                                  also ends the session
"""

from __future__ import annotations

from typing import Any


class McpError(Exception):
    """Root of every error the MCP client raises."""


class McpProtocolError(McpError):
    """The server broke the protocol: handshake, version or message shape."""


class McpCallError(McpError):
    """The server answered a request with a JSON-RPC error.

    Attributes:
        code: The JSON-RPC error code.
        message: The server's error message.
        method: The method of the request that failed.
        data: The error's optional ``data`` member.
    """

    def __init__(
        self, code: int, message: str, method: str = "tools/call", data: Any = None
    ) -> None:
        super().__init__(f"mcp {method} error {code}: {message}")
        self.code = code
        self.message = message
        self.method = method
        self.data = data


class McpTimeoutError(McpError):
    """A request got no answer in time; its late answer will be dropped."""


class McpClosedError(McpError):
    """The session is over; no request can succeed any more."""


class McpMessageTooLargeError(McpClosedError):
    """The server sent a message over the size bound; the session is over."""
