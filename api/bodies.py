"""Strict decoding of JSON request bodies into typed requests."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from quart import request

from api.errors import ApiError

T = TypeVar("T")


class CreateJobRequest(msgspec.Struct, frozen=True):
    """Body of ``POST /v1/jobs``."""

    type: str = ""
    ttl_seconds: int | None = None
    payload: dict[str, Any] | None = None


class SandboxRequest(msgspec.Struct, frozen=True):
    """Body of ``POST /v1/sandbox/sessions``."""

    start_command: str = ""
    entity_id: str = ""
    ttl_seconds: int | None = None
    runtime: str = ""
    transport: str = ""
    env: dict[str, str] = msgspec.field(default_factory=dict)


class ToolCallRequest(msgspec.Struct, frozen=True):
    """Body of ``POST /v1/sandbox/sessions/{id}/tools/call``."""

    name: str = ""
    arguments: dict[str, Any] | None = None


async def read_body(kind: type[T]) -> T:
    """Decode the request body as ``kind``.

    Raises:
        ApiError: 400 ``invalid JSON body: ...`` for anything that is not a
            JSON object of the right shape (empty bodies included).
    """
    raw = await request.get_data(cache=False, as_text=False)
    if not raw.strip():
        raise ApiError(400, "invalid JSON body: the body is empty")
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise ApiError(400, f"invalid JSON body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"invalid JSON body: {exc}") from None
