"""Strict decoding of JSON request bodies into typed requests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final, TypeVar

import msgspec
from quart import request

from api.errors import ApiError

T = TypeVar("T")

MAX_DEPTH: Final = 64
"""Deepest nesting of objects and arrays a body may have, itself counted."""
MIN_INT: Final = -(2**63)
MAX_INT: Final = 2**64 - 1
"""The integers the log's msgpack encoding can store."""
TOO_DEEP: Final = "invalid JSON body: nested too deeply"
OUT_OF_RANGE: Final = "invalid JSON body: integer out of range"


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


_FLAG_VALUES: Final = {"true": True, "1": True, "false": False, "0": False}


def query_flag(name: str) -> bool:
    """The boolean query parameter ``name``; False when absent.

    Raises:
        ApiError: 400 unless it is given once as true, false, 1 or 0 (in any
            case): a request that says ``?all=yes`` must not silently get the
            opposite of what it asked for.
    """
    values = request.args.getlist(name)
    if not values:
        return False
    value = _FLAG_VALUES.get(values[0].lower()) if len(values) == 1 else None
    if value is None:
        raise ApiError(400, f"{name} must be given once, as true or false")
    return value


async def read_body(kind: type[T]) -> T:
    """Decode the request body as ``kind``.

    Raises:
        ApiError: 400 ``invalid JSON body: ...`` for anything that is not a
            JSON object of the right shape (empty bodies included), is nested
            more than :data:`MAX_DEPTH` deep, or holds an integer the log
            cannot store.
    """
    raw = await request.get_data(cache=False, as_text=False)
    return decode_body(raw, kind)


def decode_body(raw: bytes | str, kind: type[T]) -> T:
    """Decode ``raw`` as ``kind`` with the rules of :func:`read_body`.

    Raises:
        ApiError: 400 ``invalid JSON body: ...``; see :func:`read_body`.
    """
    if not raw.strip():
        raise ApiError(400, "invalid JSON body: the body is empty")
    try:
        body = msgspec.json.decode(raw, type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ApiError(400, f"invalid JSON body: {exc}") from None
    except RecursionError:
        # The decoder recurses once per level and gives up near the
        # interpreter's limit; that is a client's input, not a crash.
        raise ApiError(400, TOO_DEEP) from None
    _check_storable(body)
    _refuse_duplicate_keys(raw)
    return body


def _refuse_duplicate_keys(raw: bytes | str) -> None:
    """Refuse an object that names a key twice.

    Decoders keep one of the two values, and which one differs between
    them: a body whose meaning depends on the reader is refused instead.
    Parsed a second time with the standard library, which reports every
    object's pairs; the body is already known to be valid and shallow.
    """

    def check(pairs: list[tuple[str, Any]]) -> None:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ApiError(
                    400,
                    f"invalid JSON body: the key {key!r} appears twice in an object",
                )
            seen.add(key)

    json.loads(raw, object_pairs_hook=check)


def _check_storable(body: object) -> None:
    """Refuse values that would fail later, when the request is recorded.

    Walked without recursion: a body just under the decoder's own limit
    would otherwise overflow the stack here, or in the log's encoder, far
    from the request that caused it.
    """
    pending: list[tuple[object, int]] = [(body, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, msgspec.Struct):
            children: Iterable[object] = (
                getattr(value, name) for name in value.__struct_fields__
            )
        elif isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            if isinstance(value, int) and not MIN_INT <= value <= MAX_INT:
                raise ApiError(400, OUT_OF_RANGE)
            continue
        if depth >= MAX_DEPTH:
            raise ApiError(400, TOO_DEEP)
        pending.extend((child, depth + 1) for child in children)
