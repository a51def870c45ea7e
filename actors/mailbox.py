"""A job actor's mailbox: requests that need an answer from its live server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import trio

MAILBOX_SIZE: Final = 64
"""Calls waiting for the actor beyond this make their senders wait."""


@dataclass(slots=True)
class ToolCallOutcome:
    """The server's raw result, or the error that prevented one."""

    result: dict[str, Any] | None = None
    error: Exception | None = None


@dataclass(slots=True, eq=False)
class ToolCall:
    """A request, from outside the actor, to call one tool on its server."""

    name: str
    arguments: dict[str, Any]
    reply: trio.MemorySendChannel[ToolCallOutcome]


def open_mailbox() -> tuple[
    trio.MemorySendChannel[ToolCall], trio.MemoryReceiveChannel[ToolCall]
]:
    """A bounded channel for tool calls to one actor."""
    return trio.open_memory_channel[ToolCall](MAILBOX_SIZE)


def drain(calls: trio.MemoryReceiveChannel[ToolCall]) -> None:
    """Close the mailbox, closing the reply of every call still waiting.

    Each waiting caller then sees its reply channel end and reports the
    sandbox as no longer running, instead of waiting for its timeout.
    """
    while True:
        try:
            call = calls.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            break
        call.reply.close()
    calls.close()
