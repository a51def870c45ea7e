"""The payload each job type accepts, decoded strictly from the request JSON."""

from __future__ import annotations

from typing import Any, Final

import msgspec

RESTART_POLICIES: Final = ("never", "on-failure", "always")
MAX_RESTARTS_CEILING: Final = 100


class PayloadError(ValueError):
    """The payload does not have the shape its job type needs."""


class ServerSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """How to start an MCP server: the fields shared by every MCP job type."""

    start_command: str = ""
    transport: str = ""
    runtime: str = ""
    env: dict[str, str] = msgspec.field(default_factory=dict)


class McpTestPayload(ServerSpec, frozen=True):
    """``mcp.test``: start a server, handshake, list tools, stay up until TTL."""


class McpRunPayload(ServerSpec, frozen=True):
    """``mcp.run``: run a server as a supervised service, restarting on crashes."""

    restart: str = "on-failure"
    max_restarts: int = 5


class ToolRunPayload(ServerSpec, frozen=True):
    """``tool.run``: call one tool, on a new server or a running job's server."""

    job_id: str = ""
    tool: str = ""
    name: str = ""
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def tool_name(self) -> str:
        """The tool to call; ``tool`` and ``name`` are accepted spellings."""
        return self.tool or self.name


PAYLOAD_TYPES: Final[dict[str, type[ServerSpec]]] = {
    "mcp.test": McpTestPayload,
    "mcp.run": McpRunPayload,
    "tool.run": ToolRunPayload,
}


def decode_payload(job_type: str, payload: Any) -> ServerSpec:
    """Decode and check the payload of a job of ``job_type``.

    ``None`` stands for an empty payload.

    Raises:
        PayloadError: with the user-facing message ``invalid payload: ...``.
    """
    struct_type = PAYLOAD_TYPES[job_type]
    try:
        decoded = msgspec.convert(payload if payload is not None else {}, struct_type)
    except msgspec.ValidationError as exc:
        raise PayloadError(f"invalid payload: {exc}") from None
    _check(decoded)
    return decoded


def _check(payload: ServerSpec) -> None:
    if payload.transport not in ("", "stdio"):
        raise PayloadError(
            f'unsupported transport "{payload.transport}" (only stdio is supported)'
        )
    if isinstance(payload, McpRunPayload):
        if payload.restart not in RESTART_POLICIES:
            raise PayloadError(
                f"invalid payload: restart must be one of {', '.join(RESTART_POLICIES)}"
            )
        if not 0 <= payload.max_restarts <= MAX_RESTARTS_CEILING:
            raise PayloadError(
                "invalid payload: max_restarts must be between 0 and "
                f"{MAX_RESTARTS_CEILING}"
            )
    if isinstance(payload, ToolRunPayload):
        if not payload.tool_name:
            raise PayloadError("invalid payload: tool is required")
        if not payload.job_id and not payload.start_command.strip():
            raise PayloadError("invalid payload: start_command or job_id is required")
