"""The output budget of a job: what a server writes unasked is bounded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgspec
import trio
from hypothesis import given
from hypothesis import strategies as st

from actors.job_actor import JobActor, JobSpec
from actors.mcp_environment import McpEnvironment
from actors.mcp_jobs import mcp_handlers
from actors.recorder import EVENT_COST_BYTES, OutputBudget, dropped_text, spent_text
from eventlog import EventLog, MemoryStorage, RecordedEvent
from eventlog.schemas import payload_as_builtins
from eventlog.vocabulary.mcp import McpFrame, McpNoise, McpStderr
from runtime.command_policy import CommandPolicy
from runtime.mcp import McpClientConfig, RecordKind
from runtime.replay import read_job_events
from runtime.sandbox import SandboxLimits
from tests.runtime.support import SEARCH_PATH

JOB_ID = "job_00112233445566778899"
FLOOD_SERVER = Path(__file__).parent / "programs" / "flood_mcp.py"
NOTE = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"n": 1}}
NOTE_SIZE = len(msgspec.json.encode(NOTE))


def test_output_budget_records_until_spent_then_one_notice() -> None:
    """Items fit until the budget is spent; one notice, then nothing, counted."""
    budget = OutputBudget(10, event_cost=0)

    admitted = [
        budget.admit("stderr", "12345"),
        budget.admit("noise", "abcde"),
        budget.admit("stderr", "x"),
        budget.admit("noise", "y"),
        budget.admit("in", NOTE),
    ]
    dropped = budget.take_dropped()
    again = budget.take_dropped()

    assert admitted == [
        [McpStderr(line="12345")],
        [McpNoise(line="abcde")],
        [
            McpStderr(
                line="[output budget of 10 bytes spent: further stderr, noise and "
                "notifications of this job are not recorded]"
            )
        ],
        [],
        [],
    ]
    assert budget.used == 10
    assert dropped == McpStderr(
        line="[3 stderr lines, noise lines and notifications of this job were not "
        "recorded: the output budget was spent]"
    )
    assert again is None


def test_output_budget_always_records_the_runtime_side() -> None:
    """After the budget is spent, frames sent and answers to them still record."""
    budget = OutputBudget(0, event_cost=0)
    request = {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}
    answer = {"jsonrpc": "2.0", "id": 7, "result": {"tools": []}}
    reply = {"jsonrpc": "2.0", "id": "s1", "result": {}}

    admitted = [
        budget.admit("stderr", "spent at once"),
        budget.admit("out", request),
        budget.admit("in", answer),
        budget.admit("in", answer),
        budget.admit("in", {"jsonrpc": "2.0", "id": "s1", "method": "ping"}),
        budget.admit("out", reply),
        budget.admit("in", {"jsonrpc": "2.0", "id": 99, "result": {}}),
    ]

    assert admitted == [
        [McpStderr(line=spent_text(0))],
        [McpFrame(direction="out", message=request)],
        [McpFrame(direction="in", message=answer)],
        [],
        [],
        [McpFrame(direction="out", message=reply)],
        [],
    ]
    assert budget.dropped == 4


def test_output_budget_counts_notifications_by_their_json_size() -> None:
    """A notification costs the length of its JSON encoding."""
    budget = OutputBudget(NOTE_SIZE, event_cost=0)

    first = budget.admit("in", NOTE)
    second = budget.admit("in", [NOTE])

    assert first == [McpFrame(direction="in", message=NOTE)]
    assert second == [McpStderr(line=spent_text(NOTE_SIZE))]
    assert budget.used == NOTE_SIZE


def test_output_budget_charges_each_event_its_log_cost() -> None:
    """By default an item costs its bytes plus what its event costs the log."""
    budget = OutputBudget(2 * (EVENT_COST_BYTES + 1))

    admitted = [budget.admit("stderr", line) for line in ("a", "b", "c")]

    assert admitted == [
        [McpStderr(line="a")],
        [McpStderr(line="b")],
        [McpStderr(line=spent_text(2 * (EVENT_COST_BYTES + 1)))],
    ]
    assert budget.used == 2 * (EVENT_COST_BYTES + 1)


_ITEMS = st.lists(
    st.tuples(
        st.sampled_from(["stderr", "noise"]),
        st.text(alphabet="aé€x", min_size=1, max_size=40),
    ),
    max_size=60,
)


@given(limit=st.integers(min_value=0, max_value=400), items=_ITEMS)
def test_output_budget_never_records_more_than_its_limit(
    limit: int, items: list[tuple[RecordKind, str]]
) -> None:
    """Recorded bytes stay within the limit; recorded plus dropped is everything."""
    budget = OutputBudget(limit, event_cost=0)

    recorded = [p for kind, line in items for p in budget.admit(kind, line)]

    lines = [p.line for p in recorded if isinstance(p, (McpStderr, McpNoise))]
    notices = [line for line in lines if line == spent_text(limit)]
    kept = [line for line in lines if line != spent_text(limit)]
    assert sum(len(line.encode()) for line in kept) == budget.used <= limit
    assert len(notices) == (1 if budget.dropped else 0)
    assert len(kept) + budget.dropped == len(items)


async def test_job_records_a_flood_within_its_budget(tmp_path: Path) -> None:
    """A server flooding stderr, noise and notifications costs one budget."""
    lines, limit = 300, 16384
    events = await _run_flood_job(tmp_path, lines, limit)

    data = [(event.type, payload_as_builtins(event)) for event in events]
    stderr = [d["line"] for kind, d in data if kind == "mcp.stderr"]
    budgeted = [
        _size(kind, d) + EVENT_COST_BYTES
        for kind, d in data
        if (kind == "mcp.stderr" and not d["line"].startswith("["))
        or kind == "mcp.noise"
        or (kind == "mcp.frame" and d["direction"] == "in" and "method" in d["message"])
    ]
    frames = [d["message"] for kind, d in data if kind == "mcp.frame"]
    dropped = 3 * lines + 1 - len(budgeted)
    # Full up to less than the largest item: a notification whose n has
    # three digits is NOTE_SIZE + 2 bytes.
    assert limit - (NOTE_SIZE + 2 + EVENT_COST_BYTES) < sum(budgeted) <= limit
    assert stderr.count(spent_text(limit)) == 1
    exited = "mcp server exited with code 0"
    assert data[-4:] == [
        ("mcp.stderr", {"line": dropped_text(dropped)}),
        ("mcp.process_exited", {"returncode": 0}),
        ("job.step", {"step": "error", "status": "error", "message": exited}),
        ("job.finished", {"status": "error", "error": exited}),
    ]
    assert [m["id"] for m in frames if "result" in m] == [1, 2, "flood-done"]
    assert [m["method"] for m in frames if "id" in m and "method" in m][:2] == [
        "initialize",
        "tools/list",
    ]


async def _run_flood_job(tmp_path: Path, lines: int, limit: int) -> list[RecordedEvent]:
    """Run an ``mcp.test`` job of the flood server to its end; its events."""
    env = McpEnvironment(
        policy=CommandPolicy(),
        sandboxes_dir=tmp_path / "sandboxes",
        cache_dir=None,
        limits=SandboxLimits(),
        client=McpClientConfig(),
        # The server closes its stderr early to end it before stdout; under
        # bubblewrap the sandbox's own processes would hold it open.
        isolation="process-group",
        search_path=SEARCH_PATH,
        max_output_bytes=limit,
    )

    async def no_call(*_: Any) -> dict[str, Any]:
        raise AssertionError("no tool call is made")

    handler = mcp_handlers(env, no_call)["mcp.test"]
    spec = JobSpec(
        job_id=JOB_ID,
        type="mcp.test",
        payload={"start_command": f"python {FLOOD_SERVER} {lines}"},
        ttl_seconds=60,
        expires_at_ns=time.time_ns() + 60 * 1_000_000_000,
        workspace="",
    )
    event_log = EventLog(MemoryStorage())
    async with trio.open_nursery() as nursery:
        await nursery.start(event_log.run)
        with trio.fail_after(30):
            await JobActor(spec, handler, event_log, trio.Semaphore(1)).run()
        events = await read_job_events(event_log, JOB_ID)
        event_log.close()
    return events


def _size(kind: str, data: dict[str, Any]) -> int:
    if kind == "mcp.frame":
        return len(msgspec.json.encode(data["message"]))
    return len(data["line"].encode())
