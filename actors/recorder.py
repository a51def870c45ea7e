"""Records everything an MCP server says and is told, on its job's stream.

Every frame and line becomes a durable event, so what a server may write
unasked is bounded: its stderr lines, the noise on its stdout, the
notifications it sends (incoming frames without an id) and any other
incoming frame that is not the answer to one of the runtime's requests (the
server's own requests, answers to nothing) share one output budget per job.
Once that is spent, one line says so and the rest is counted instead of
recorded; the count is recorded when the server is gone. An item costs its
bytes plus what an event costs the log beyond its text, so a server writing
``yes`` to stdout or stderr costs the disk about one budget, not 25 MB a
second. Everything the runtime sends, and the server's answers to the
runtime's requests, are always recorded: they are what a replay needs.

Known shortcoming: the runtime answers each request a server sends (``ping``
with an empty result, anything else with an error), and those answers are
recorded like everything else it sends. A server that floods requests is
bounded by how fast the runtime answers, not by the budget; bounding it needs
the client to stop answering such a server, which it does not do yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec

from actors.job_actor import JobContext
from eventlog.schemas import Payload
from eventlog.vocabulary.mcp import McpFrame, McpNoise, McpStderr
from runtime.mcp import RecordKind

EVENT_COST_BYTES: Final = 320
"""What one event of a short line takes in the log beyond the line itself
(envelope, hash chain, stream and id indexes, LMDB pages), as measured with
40-byte stderr lines: about 350 bytes of log each."""


class OutputBudget:
    """The bytes of unasked-for server output one job may still record.

    Args:
        limit: Bytes of stderr lines, noise lines and notifications (their
            JSON encoding), each plus ``event_cost``, recorded before the
            rest is dropped.
        event_cost: Bytes charged per item on top of its own size.
    """

    def __init__(self, limit: int, event_cost: int = EVENT_COST_BYTES) -> None:
        self.limit = limit
        self.event_cost = event_cost
        self._asked: set[str | int] = set()
        self.used = 0
        """Bytes recorded so far."""
        self.spent = False
        """Whether an item has been dropped; from then on every one is."""
        self.dropped = 0
        """Items dropped and not yet reported by :meth:`take_dropped`."""

    def admit(self, kind: RecordKind, value: Any) -> list[Payload]:
        """What to record for one item: itself, nothing, or the notice of the end.

        Returns:
            ``[payload]`` while the budget lasts or for an item outside it;
            for the first item that does not fit, the one ``mcp.stderr`` line
            saying the budget is spent; ``[]`` for every item after that.
        """
        size = self._budgeted_size(kind, value)
        if size is None:
            return [_payload(kind, value)]
        size += self.event_cost
        if not self.spent and self.used + size <= self.limit:
            self.used += size
            return [_payload(kind, value)]
        self.dropped += 1
        if self.spent:
            return []
        self.spent = True
        return [McpStderr(line=spent_text(self.limit))]

    def _budgeted_size(self, kind: RecordKind, value: Any) -> int | None:
        """The bytes an item costs the budget, or ``None`` when it is exempt."""
        if kind in ("stderr", "noise"):
            return len(str(value).encode("utf-8", errors="replace"))
        messages = value if isinstance(value, list) else [value]
        if kind == "out":
            # Recorded before it is written, so an answer never arrives
            # before its request is known here.
            for message in messages:
                if isinstance(message, dict) and "method" in message:
                    self._asked.update(_ids(message))
            return None
        answers = [_ids(m) if _is_answer(m) else set() for m in messages]
        if all(ids and ids <= self._asked for ids in answers):
            for ids in answers:
                self._asked.difference_update(ids)
            return None
        return len(msgspec.json.encode(value))

    def take_dropped(self) -> McpStderr | None:
        """The line reporting items dropped since the last report, if any."""
        if not self.dropped:
            return None
        count, self.dropped = self.dropped, 0
        return McpStderr(line=dropped_text(count))


class JobRecorder:
    """The MCP client's recorder: one durable event per frame or line.

    Args:
        ctx: The job whose stream the events go to.
        budget: The job's output budget, shared by every server it starts.
    """

    def __init__(self, ctx: JobContext, budget: OutputBudget) -> None:
        self._ctx = ctx
        self._budget = budget

    async def record(self, kind: RecordKind, value: Any) -> None:
        """Append the frame or line; returns once it is durable (or dropped)."""
        payloads = self._budget.admit(kind, value)
        if payloads:
            await self._ctx.record(*payloads)

    async def record_many(self, items: Sequence[tuple[RecordKind, Any]]) -> None:
        """Append the frames and lines in one append; returns once durable."""
        payloads = [p for kind, value in items for p in self._budget.admit(kind, value)]
        if payloads:
            await self._ctx.record(*payloads)


def spent_text(limit: int) -> str:
    """The one line recorded when a job's output budget is spent."""
    return (
        f"[output budget of {limit} bytes spent: further stderr, noise and "
        "notifications of this job are not recorded]"
    )


def dropped_text(count: int) -> str:
    """The line recorded when a server is gone, counting what was dropped."""
    return (
        f"[{count} stderr lines, noise lines and notifications of this job "
        "were not recorded: the output budget was spent]"
    )


def _is_answer(message: Any) -> bool:
    return isinstance(message, dict) and "method" not in message


def _ids(message: Any) -> set[str | int]:
    """The message's id as a one-item set, or empty when it has no usable id."""
    found = message.get("id") if isinstance(message, dict) else None
    if isinstance(found, str) or (
        isinstance(found, int) and not isinstance(found, bool)
    ):
        return {found}
    return set()


def _payload(kind: RecordKind, value: Any) -> Payload:
    if kind in ("out", "in"):
        return McpFrame(direction=kind, message=value)
    if kind == "stderr":
        return McpStderr(line=str(value))
    return McpNoise(line=str(value))
