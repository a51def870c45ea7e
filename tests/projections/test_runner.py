"""The runner catches up, follows the log, skips bad events and serves waiters.

Every test runs on each log backend (the ``event_log`` fixture).
"""

from __future__ import annotations

import msgspec
import pytest
import trio
import trio.testing

from eventlog import EventLog, NewEvent
from eventlog.vocabulary.jobs import JobFinished, JobStarted, JobStep, job_stream
from projections.errors import PositionOutOfRangeError, ProjectionLagError
from projections.jobs import JobsProjection, JobsState
from projections.runner import ProjectionRunner, fold_until
from tests.projections.recorded import job_event, requested


async def append(log: EventLog, job_id: str, *events: NewEvent) -> int:
    result = await log.append(job_stream(job_id), list(events))
    return result.positions[-1]


async def test_runner_catches_up_before_start_returns(event_log: EventLog) -> None:
    """start() returns with every event committed before it folded."""
    await append(event_log, "job_a", job_event(requested("job_a")))
    await append(event_log, "job_a", job_event(JobStarted()))
    await append(event_log, "job_b", job_event(requested("job_b")))
    runner = ProjectionRunner(event_log, JobsProjection())

    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        position, applied = runner.position, runner.applied
        statuses = {job_id: v.status for job_id, v in runner.state.jobs.items()}
        nursery.cancel_scope.cancel()

    assert (position, applied, runner.skipped) == (3, 3, 0)
    assert statuses == {"job_a": "running", "job_b": "queued"}


async def test_runner_on_an_empty_log_starts_at_zero(event_log: EventLog) -> None:
    """An empty log is caught up at once, with the initial state."""
    runner = ProjectionRunner(event_log, JobsProjection())

    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        position, state = runner.position, runner.state
        nursery.cancel_scope.cancel()

    assert (position, state) == (0, JobsState())


async def test_runner_follows_live_appends(event_log: EventLog) -> None:
    """Events appended after start are folded; wait_for sees the new position."""
    runner = ProjectionRunner(event_log, JobsProjection())

    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        await append(event_log, "job_a", job_event(requested("job_a")))
        position = await append(
            event_log,
            "job_a",
            job_event(JobStarted()),
            job_event(JobStep(step="ready", status="ok")),
        )
        await runner.wait_for(position)
        view = runner.state.jobs["job_a"]
        nursery.cancel_scope.cancel()

    assert (position, view.status, view.ready, view.last_position) == (
        3,
        "running",
        True,
        3,
    )


async def test_runner_wait_for_a_reached_position_returns_at_once(
    event_log: EventLog,
) -> None:
    """Waiting for a position already folded does not block."""
    position = await append(event_log, "job_a", job_event(requested("job_a")))
    runner = ProjectionRunner(event_log, JobsProjection())

    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        await runner.wait_for(position, timeout=0)
        nursery.cancel_scope.cancel()

    assert runner.position == position


async def test_runner_wait_for_releases_every_waiter_with_one_batch(
    event_log: EventLog,
) -> None:
    """Thousands of waiters on one position all return after its append."""
    runner = ProjectionRunner(event_log, JobsProjection())
    released = 0
    all_released = trio.Event()

    async def wait(position: int) -> None:
        nonlocal released
        await runner.wait_for(position)
        released += 1
        if released == 2000:
            all_released.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        for _ in range(2000):
            nursery.start_soon(wait, 1)
        await trio.testing.wait_all_tasks_blocked()
        blocked = released
        await append(event_log, "job_a", job_event(requested("job_a")))
        with trio.fail_after(5):
            await all_released.wait()
        nursery.cancel_scope.cancel()

    assert (blocked, released) == (0, 2000)


async def test_runner_wait_for_times_out_with_a_lag_error(
    event_log: EventLog, autojump_clock: trio.testing.MockClock
) -> None:
    """A position never reached raises ProjectionLagError after the timeout."""
    await append(event_log, "job_a", job_event(requested("job_a")))
    await append(event_log, "job_a", job_event(JobStarted()))
    runner = ProjectionRunner(event_log, JobsProjection())

    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        with pytest.raises(ProjectionLagError) as raised:
            await runner.wait_for(99, timeout=0.5)
        nursery.cancel_scope.cancel()

    assert str(raised.value) == (
        "projection 'jobs' did not reach position 99 within 0.5 s (it is at 2)"
    )
    assert (raised.value.name, raised.value.wanted, raised.value.reached) == (
        "jobs",
        99,
        2,
    )


async def test_runner_wait_for_on_a_stopped_runner_fails_at_once(
    event_log: EventLog,
) -> None:
    """Once the runner stopped, a waiter is told so instead of timing out."""
    await append(event_log, "job_a", job_event(requested("job_a")))
    runner = ProjectionRunner(event_log, JobsProjection())
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        nursery.cancel_scope.cancel()

    with trio.fail_after(1), pytest.raises(ProjectionLagError) as raised:
        await runner.wait_for(5, timeout=60)

    assert str(raised.value) == (
        "projection 'jobs' stopped at position 1, before reaching 5"
    )


async def test_runner_skips_a_malformed_event_and_keeps_going(
    event_log: EventLog,
) -> None:
    """A bad payload of a known type is counted in skipped; later events apply."""
    runner = ProjectionRunner(event_log, JobsProjection())
    bad = NewEvent(type="job.step", data=msgspec.msgpack.encode({"step": 5}))

    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        await append(event_log, "job_a", job_event(requested("job_a")))
        await append(event_log, "job_a", bad)
        position = await append(
            event_log, "job_a", job_event(JobFinished(status="error", error="boom"))
        )
        await runner.wait_for(position)
        view = runner.state.jobs["job_a"]
        nursery.cancel_scope.cancel()

    assert (runner.skipped, runner.applied, runner.position) == (1, 2, 3)
    assert (view.status, view.error, view.step_count, view.last_position) == (
        "error",
        "boom",
        0,
        3,
    )


async def test_fold_until_returns_the_state_at_a_position(event_log: EventLog) -> None:
    """fold_until(N) is the state right after event N, not later."""
    await append(event_log, "job_a", job_event(requested("job_a")))
    await append(event_log, "job_a", job_event(JobStarted()))
    await append(event_log, "job_a", job_event(JobFinished(status="complete")))

    at_two = await fold_until(event_log, JobsProjection(), 2)
    at_three = await fold_until(event_log, JobsProjection(), 3)
    at_zero = await fold_until(event_log, JobsProjection(), 0)

    assert (at_two.jobs["job_a"].status, at_two.jobs["job_a"].last_position) == (
        "running",
        2,
    )
    assert at_three.jobs["job_a"].status == "complete"
    assert at_zero == JobsState()


async def test_fold_until_spans_many_read_pages(event_log: EventLog) -> None:
    """A fold across several read pages stops exactly at the position."""
    await append(event_log, "job_a", job_event(requested("job_a")))
    steps = [job_event(JobStep(step="pull", status="running")) for _ in range(2500)]
    await append(event_log, "job_a", *steps)

    state = await fold_until(event_log, JobsProjection(), 2300)

    assert (state.jobs["job_a"].step_count, state.jobs["job_a"].last_position) == (
        2299,
        2300,
    )


async def test_fold_until_past_the_head_is_an_error(event_log: EventLog) -> None:
    """A position the log has not reached is out of range."""
    await append(event_log, "job_a", job_event(requested("job_a")))

    with pytest.raises(PositionOutOfRangeError) as raised:
        await fold_until(event_log, JobsProjection(), 2)

    assert str(raised.value) == "position 2 is outside the log (1 to 1)"
