"""The MCP stdio client: see :mod:`runtime.mcp.client` and :mod:`runtime.mcp.errors`."""

from runtime.mcp.client import McpClient, open_mcp_client
from runtime.mcp.errors import (
    McpCallError,
    McpClosedError,
    McpError,
    McpMessageTooLargeError,
    McpProtocolError,
    McpTimeoutError,
)
from runtime.mcp.types import (
    McpClientConfig,
    McpRecorder,
    McpTransport,
    RecordKind,
    ToolsChangedHook,
)

__all__ = [
    "McpCallError",
    "McpClient",
    "McpClientConfig",
    "McpClosedError",
    "McpError",
    "McpMessageTooLargeError",
    "McpProtocolError",
    "McpRecorder",
    "McpTimeoutError",
    "McpTransport",
    "RecordKind",
    "ToolsChangedHook",
    "open_mcp_client",
]
