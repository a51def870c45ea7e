"""One actor per job: queue, slot, TTL, cancellation and the terminal event.

The actor owns its job's cancel scope. Whatever ends the job (the handler
returning, an error, the TTL, a DELETE, or the runtime shutting down), the
actor appends exactly one terminal ``job.step`` together with
``job.finished``, and cleans up before it does.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from actors.errors import find_job_failure
from actors.mailbox import drain, open_mailbox
from eventlog import EventLog, EventLogError
from eventlog.schemas import Payload, new_event
from eventlog.vocabulary.jobs import (
    JobFinished,
    JobResult,
    JobStarted,
    JobStep,
    job_stream,
)
from runtime.listen import first_error

FINAL_APPEND_TIMEOUT: Final = 10.0

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a job actor needs to know about its job."""

    job_id: str
    type: str
    payload: Any
    ttl_seconds: int
    expires_at_ns: int
    workspace: str
    session_id: str = ""


@dataclass(slots=True)
class Outcome:
    """How a job ended: its terminal status, step message and error text."""

    status: str
    message: str
    error: str = ""


Handler = Callable[["JobContext"], Awaitable[Any]]


@dataclass(slots=True, eq=False)
class JobContext:
    """What a running handler may do: record steps and results, serve calls."""

    spec: JobSpec
    log: EventLog
    actor: JobActor
    stream: str = field(init=False)
    held: list[Payload] = field(default_factory=list, init=False)
    """Facts appended in front of the next ones recorded (``job.started``)."""

    def __post_init__(self) -> None:
        self.stream = job_stream(self.spec.job_id)

    async def step(
        self,
        step: str,
        status: str,
        message: str = "",
        data: dict[str, Any] | None = None,
    ) -> None:
        """Append one progress step, as clients will see it."""
        await self.record(
            JobStep(step=step, status=status, message=message, data=data or {})
        )

    async def set_result(self, result: Any) -> None:
        """Append the job's result (the latest one wins)."""
        await self.record(JobResult(result=result))

    async def record(self, *payloads: Payload) -> None:
        """Append facts to the job's stream, in order, atomically.

        Held facts go first, in the same append.
        """
        facts = [*self.held, *payloads]
        # Taken in the same step that queues the append (queueing needs no
        # checkpoint unless the log applies back-pressure): whatever is
        # recorded after this call is appended after the held facts.
        self.held.clear()
        await append_job_events(self.log, self.spec, *facts)


class JobActor:
    """Runs one job from queue to terminal event."""

    def __init__(
        self,
        spec: JobSpec,
        handler: Handler,
        event_log: EventLog,
        slots: trio.Semaphore | None,
    ) -> None:
        """Prepare the actor; ``slots`` is None for a job that runs no process."""
        self.spec = spec
        self.finished = trio.Event()
        self.started = False
        self.context = JobContext(spec, event_log, self)
        self._handler = handler
        self._slots = slots
        self._cancel_scope = trio.CancelScope()
        self._cancel_reason = ""
        self.services: dict[str, Any] = {}
        """Live handles a handler exposes while it runs (e.g. the MCP server)."""
        self.mailbox, self.calls = open_mailbox()

    def cancel(self, reason: str = "requested") -> None:
        """Ask the job to end as ``cancelled``; idempotent."""
        if not self._cancel_reason:
            self._cancel_reason = reason
        self._cancel_scope.cancel()

    async def run(self) -> None:
        """Queue for a slot, run the handler under the TTL, record the end."""
        outcome: Outcome | None = None
        try:
            outcome = await self._run_handler()
        except Exception as exc:
            failure = find_job_failure(exc)
            refused = first_error(exc, EventLogError)
            if failure is not None:
                outcome = Outcome("error", str(failure), str(failure))
            elif refused is not None:
                # The log itself refused what the job had to record (full,
                # damaged): not a bug, and the log said why already.
                log.error(
                    "job stopped: the event log refused its events job_id=%s: %s",
                    self.spec.job_id,
                    refused,
                )
                message = "Job stopped: the event log refused its events"
                outcome = Outcome("error", message, message)
            else:
                # A bug in one job must not take the runtime down: record it
                # as this job's failure and keep serving the others.
                log.exception("job crashed job_id=%s", self.spec.job_id)
                message = f"internal error: {type(exc).__name__}"
                outcome = Outcome("error", message, message)
        finally:
            self.services.clear()
            drain(self.calls)
            if outcome is None and self.started:
                # Cancelled from outside: the runtime is shutting down.
                outcome = Outcome("cancelled", "Job cancelled: the runtime shut down")
            if outcome is not None:
                await self._finish(outcome)
            # A queued job cancelled by shutdown keeps no terminal event: it is
            # still queued in the log and starts again when the runtime does.
            self.finished.set()

    async def _run_handler(self) -> Outcome:
        spec = self.spec
        remaining = (spec.expires_at_ns - time.time_ns()) / 1e9
        with self._cancel_scope:
            with trio.move_on_after(max(remaining, 0.0)) as ttl_scope:
                async with self._slots or contextlib.nullcontext():
                    self.started = True
                    # Appended with the handler's first facts instead of on
                    # its own: one commit less before a job's first step.
                    # Handlers record a first step before any slow work; one
                    # that ends without a step has it with its terminal one.
                    self.context.held.append(JobStarted())
                    result = await self._handler(self.context)
                    if isinstance(result, Outcome):
                        return result
                    return Outcome("complete", "Job complete")
            if ttl_scope.cancelled_caught:
                return Outcome(
                    "expired", f"Job expired after {spec.ttl_seconds} seconds"
                )
        return Outcome("cancelled", "Job cancelled")

    async def _finish(self, outcome: Outcome) -> None:
        held = list(self.context.held)
        self.context.held.clear()
        await record_outcome(self.context.log, self.spec, outcome, held)


async def append_job_events(
    event_log: EventLog, spec: JobSpec, *payloads: Payload
) -> None:
    """Append runtime-caused facts to a job's stream, in order, atomically."""
    await event_log.append(
        job_stream(spec.job_id),
        [new_event(p, actor="runtime", workspace=spec.workspace) for p in payloads],
    )


async def record_outcome(
    event_log: EventLog,
    spec: JobSpec,
    outcome: Outcome,
    held: Sequence[Payload] = (),
) -> None:
    """Append the terminal step and ``job.finished`` of a job, atomically.

    ``held`` are facts not recorded yet that go first (``job.started``).
    """
    # Shielded and bounded: the terminal event must be written even while
    # this task is being cancelled, but a wedged log must not hang shutdown.
    with trio.CancelScope(shield=True) as scope:
        scope.deadline = trio.current_time() + FINAL_APPEND_TIMEOUT
        try:
            await append_job_events(
                event_log,
                spec,
                *held,
                JobStep(
                    step=_TERMINAL_STEPS[outcome.status],
                    status=outcome.status,
                    message=outcome.message,
                ),
                JobFinished(status=outcome.status, error=outcome.error),
            )
        except EventLogError as exc:
            # The log is full or damaged. The job stays unfinished in the
            # log, and the next start records it as interrupted; the other
            # jobs must not go down with this one.
            log.error("terminal event not recorded job_id=%s: %s", spec.job_id, exc)
            return
    if scope.cancelled_caught:
        log.error("terminal event not recorded job_id=%s", spec.job_id)
        return
    log.info(
        "job finished job_id=%s type=%s status=%s",
        spec.job_id,
        spec.type,
        outcome.status,
    )


_TERMINAL_STEPS: Final = {
    "complete": "complete",
    "error": "error",
    "expired": "expire",
    "cancelled": "cancel",
}
