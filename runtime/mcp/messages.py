"""Classifying what a server writes: JSON-RPC messages, ids, errors, noise."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from runtime.mcp.errors import McpCallError
from runtime.mcp.types import RecordKind

NOISE_RECORD_CHARS: Final = 64 * 1024
"""A stdout line that is not JSON-RPC is recorded up to this many characters."""


def as_request_id(value: Any) -> str | int | None:
    """The value as a JSON-RPC id, or ``None`` when it cannot be one."""
    # bool is an int subclass, but true and false are never request ids.
    if isinstance(value, str) or (
        isinstance(value, int) and not isinstance(value, bool)
    ):
        return value
    return None


def call_error(method: str, error: Any) -> McpCallError:
    """The exception for a JSON-RPC error object answering ``method``."""
    if not isinstance(error, dict):
        return McpCallError(-32603, f"malformed error object {error!r}", method)
    code = error.get("code")
    return McpCallError(
        code if isinstance(code, int) and not isinstance(code, bool) else -32603,
        str(error.get("message", "")),
        method,
        error.get("data"),
    )


def parse_line(line: bytes) -> tuple[RecordKind, Any] | None:
    """What to record for one stdout line: a message, a batch or noise."""
    line = line.rstrip(b"\r")
    if not line.strip():
        return None
    try:
        message = msgspec.json.decode(line)
    except msgspec.DecodeError:
        message = None
    if isinstance(message, dict) or (
        isinstance(message, list)
        and message
        and all(isinstance(item, dict) for item in message)
    ):
        return "in", message
    return "noise", _noise_text(line)


def _noise_text(line: bytes) -> str:
    text = line.decode("utf-8", errors="replace")
    if len(text) <= NOISE_RECORD_CHARS:
        return text
    return f"{text[:NOISE_RECORD_CHARS]}... [{len(line)} bytes]"
