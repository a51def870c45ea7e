"""The root of the actor tree: one actor per job, a FIFO concurrency limit.

The supervisor accepts jobs (validating them before anything is written),
starts one :class:`~actors.job_actor.JobActor` per job in its nursery,
routes cancellations and tool calls to them, and at start-up recovers what
a previous process left unfinished.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import trio

from actors.errors import (
    InvalidJobError,
    JobFailedError,
    SandboxNotReadyError,
    SandboxNotRunningError,
    UnknownJobError,
    UnprocessableJobError,
)
from actors.job_actor import Handler, JobActor, JobSpec, Outcome, record_outcome
from actors.leftovers import clear_sandbox
from actors.mailbox import ToolCall, ToolCallOutcome
from actors.payloads import PAYLOAD_TYPES, PayloadError, decode_payload
from eventlog import EventLog, ExpectedVersion
from eventlog.schemas import Payload, new_event
from eventlog.vocabulary.jobs import (
    TERMINAL_STATUSES,
    JobCancelRequested,
    JobRequested,
    JobStep,
    SandboxOpened,
    job_stream,
)
from projections.jobs import JobsState, JobView
from projections.runner import ProjectionRunner
from runtime.command_policy import CommandPolicy, CommandRejectedError
from runtime.mcp import McpError

CANCEL_WAIT_SECONDS: Final = 10.0
CALL_TIMEOUT_MARGIN: Final = 5.0
INTERRUPTED: Final = "Job interrupted: the runtime restarted"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SubmittedJob:
    """A job that was accepted and recorded."""

    job_id: str
    session_id: str
    created_at_ns: int
    expires_at_ns: int
    position: int


class JobSupervisor:
    """Owns every job actor of the runtime."""

    def __init__(
        self,
        event_log: EventLog,
        jobs: ProjectionRunner[JobsState],
        *,
        max_ttl_seconds: int,
        max_concurrent_jobs: int,
        policy: CommandPolicy,
        sandboxes_dir: Path,
        call_timeout: float,
    ) -> None:
        self._log = event_log
        self._jobs = jobs
        self._max_ttl = max_ttl_seconds
        self._policy = policy
        self._sandboxes_dir = sandboxes_dir
        self._call_timeout = call_timeout
        self._slots = trio.Semaphore(max_concurrent_jobs)
        self._handlers: dict[str, Handler] = {}
        self._actors: dict[str, JobActor] = {}
        self._nursery: trio.Nursery | None = None

    @property
    def job_types(self) -> frozenset[str]:
        """The job types this runtime can run."""
        return frozenset(self._handlers)

    def register(self, handlers: dict[str, Handler]) -> None:
        """Make job types runnable; call before :meth:`run`."""
        self._handlers.update(handlers)

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Recover unfinished jobs, then host job actors until cancelled.

        Cancelling this task cancels every actor; each running job records
        its end, and queued jobs stay queued for the next start.
        """
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._recover()
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None

    # -- commands ------------------------------------------------------------

    async def submit(
        self,
        job_type: str,
        ttl_seconds: int | None,
        payload: Any,
        *,
        workspace: str,
        caused_by: str,
        sandbox: bool = False,
    ) -> SubmittedJob:
        """Validate, record and start a job; return once it is readable.

        Raises:
            InvalidJobError: unknown type or malformed payload.
            UnprocessableJobError: bad TTL or a start command the policy refuses.
        """
        ttl = self._check(job_type, ttl_seconds, payload)
        job_id = "job_" + secrets.token_hex(9)
        session_id = "sbx_" + secrets.token_hex(9) if sandbox else ""
        created_at_ns = time.time_ns()
        expires_at_ns = created_at_ns + ttl * 1_000_000_000

        events: list[Payload] = [
            JobRequested(
                job_id=job_id,
                type=job_type,
                ttl_seconds=ttl,
                payload=payload,
                created_at_ns=created_at_ns,
                expires_at_ns=expires_at_ns,
                session_id=session_id,
            )
        ]
        if sandbox:
            events.append(
                SandboxOpened(
                    session_id=session_id, job_id=job_id, expires_at_ns=expires_at_ns
                )
            )
        events.append(
            JobStep(
                step="queue",
                status="queued",
                message="Job queued",
                data={"type": job_type},
            )
        )
        result = await self._log.append(
            job_stream(job_id),
            [new_event(e, actor=caused_by, workspace=workspace) for e in events],
            ExpectedVersion.NO_STREAM,
        )
        log.info("job accepted job_id=%s type=%s ttl=%s", job_id, job_type, ttl)

        spec = JobSpec(
            job_id=job_id,
            type=job_type,
            payload=payload,
            ttl_seconds=ttl,
            expires_at_ns=expires_at_ns,
            workspace=workspace,
            session_id=session_id,
        )
        self._start(spec)
        await self._jobs.wait_for(result.positions[-1])
        return SubmittedJob(
            job_id, session_id, created_at_ns, expires_at_ns, result.positions[-1]
        )

    async def cancel(self, job_id: str, *, caused_by: str) -> str:
        """Cancel a job and return its status once it has ended (bounded wait).

        A job that already ended is left as it is and its status returned.

        Raises:
            UnknownJobError: no such job.
        """
        view = self._view(job_id)
        if view.status in TERMINAL_STATUSES:
            return view.status
        await self._log.append(
            job_stream(job_id),
            [
                new_event(
                    JobCancelRequested(reason="requested"),
                    actor=caused_by,
                    workspace=view.workspace,
                )
            ],
        )
        actor = self._actors.get(job_id)
        if actor is not None:
            actor.cancel()
            with trio.move_on_after(CANCEL_WAIT_SECONDS):
                await actor.finished.wait()
        await self._jobs.wait_for(self._log.head)
        return self._view(job_id).status

    async def call_tool(
        self, job_id: str, name: str, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        """Call a tool on the live server of a running MCP job.

        Raises:
            UnknownJobError: no such job.
            SandboxNotReadyError: the server has not finished starting.
            SandboxNotRunningError: the job or its server has ended.
            runtime.mcp.McpError: the server answered with an error,
                timed out or closed.
        """
        view = self._view(job_id)
        actor = self._actors.get(job_id)
        if view.status in TERMINAL_STATUSES or actor is None:
            raise SandboxNotRunningError("sandbox not running")
        if not view.ready:
            raise SandboxNotReadyError("sandbox not ready")

        reply_send, reply_receive = trio.open_memory_channel[ToolCallOutcome](1)
        # The server's own call timeout answers first; this bound only
        # catches an actor that stopped reading its mailbox.
        with trio.fail_after(self._call_timeout + CALL_TIMEOUT_MARGIN):
            try:
                await actor.mailbox.send(ToolCall(name, arguments, reply_send))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise SandboxNotRunningError("sandbox not running") from None
            try:
                outcome = await reply_receive.receive()
            except trio.EndOfChannel:
                raise SandboxNotRunningError("sandbox not running") from None
        if outcome.error is not None:
            raise outcome.error
        assert outcome.result is not None
        return outcome.result

    async def call_on_job(
        self, job_id: str, workspace: str, name: str, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        """:meth:`call_tool` on behalf of a job of ``workspace`` (``tool.run``).

        Only a job of the same workspace can be called; any other answers
        like an unknown one. The local workspace is the empty id, which
        holds no other workspace's jobs.
        """
        view = self._jobs.state.jobs.get(job_id)
        if view is None or view.workspace != workspace:
            raise JobFailedError(f"job {job_id} not found")
        try:
            return await self.call_tool(job_id, name, arguments)
        except (SandboxNotReadyError, SandboxNotRunningError, McpError) as exc:
            raise JobFailedError(f"job {job_id}: {exc}") from None

    # -- internals -------------------------------------------------------------

    def _check(self, job_type: str, ttl_seconds: int | None, payload: Any) -> int:
        if job_type not in self._handlers:
            raise InvalidJobError(f'unknown job type: "{job_type}"')
        if ttl_seconds is not None and ttl_seconds < 0:
            raise UnprocessableJobError("ttl_seconds must not be negative")
        if ttl_seconds is not None and ttl_seconds > self._max_ttl:
            raise UnprocessableJobError(
                f"ttl_seconds {ttl_seconds} exceeds maximum {self._max_ttl}"
            )
        if job_type in PAYLOAD_TYPES:
            try:
                spec = decode_payload(job_type, payload)
            except PayloadError as exc:
                raise InvalidJobError(str(exc)) from None
            if spec.start_command.strip() or not getattr(spec, "job_id", ""):
                try:
                    self._policy.validate(spec.start_command, spec.env)
                except CommandRejectedError as exc:
                    raise UnprocessableJobError(str(exc)) from None
        return ttl_seconds or self._max_ttl

    def _view(self, job_id: str) -> JobView:
        view = self._jobs.state.jobs.get(job_id)
        if view is None:
            raise UnknownJobError("job not found")
        return view

    def _start(self, spec: JobSpec) -> None:
        if self._nursery is None:
            # Accepted while the runtime shuts down: the job is recorded as
            # queued, and recovery starts it with the next runtime.
            log.info("job left queued for the next start job_id=%s", spec.job_id)
            return
        actor = JobActor(
            spec,
            self._handlers[spec.type],
            self._log,
            None if _uses_live_server(spec) else self._slots,
        )
        self._actors[spec.job_id] = actor
        self._nursery.start_soon(self._run_actor, actor)

    async def _run_actor(self, actor: JobActor) -> None:
        try:
            await actor.run()
        finally:
            self._actors.pop(actor.spec.job_id, None)
            # Shielded: this also runs while the runtime shuts down, and a
            # sandbox must not outlive its job. clear_sandbox bounds the wait.
            with trio.CancelScope(shield=True):
                await clear_sandbox(self._sandboxes_dir / actor.spec.job_id)

    async def _recover(self) -> None:
        """Finish or restart whatever the previous process left unfinished."""
        now_ns = time.time_ns()
        pending = [
            view
            for view in self._jobs.state.jobs.values()
            if view.status not in TERMINAL_STATUSES
        ]
        for view in sorted(pending, key=lambda v: (v.created_at_ns, v.job_id)):
            spec = JobSpec(
                job_id=view.job_id,
                type=view.type,
                payload=view.payload,
                ttl_seconds=view.ttl_seconds,
                expires_at_ns=view.expires_at_ns,
                workspace=view.workspace,
                session_id=view.session_id,
            )
            await clear_sandbox(self._sandboxes_dir / view.job_id)
            if view.status == "running":
                # The job's error is the terminal step's message, as for every
                # other failure, so the snapshot and the stream say the same.
                outcome = Outcome("error", INTERRUPTED, INTERRUPTED)
            elif view.expires_at_ns <= now_ns:
                outcome = Outcome(
                    "expired", f"Job expired after {view.ttl_seconds} seconds"
                )
            elif view.type not in self._handlers:
                outcome = Outcome(
                    "error",
                    f'unknown job type: "{view.type}"',
                    f'unknown job type: "{view.type}"',
                )
            else:
                log.info("job requeued job_id=%s type=%s", view.job_id, view.type)
                self._start(spec)
                continue
            await record_outcome(self._log, spec, outcome)
        await self._jobs.wait_for(self._log.head)


def _uses_live_server(spec: JobSpec) -> bool:
    """Whether the job only calls into another job's running server.

    Such a job starts no process, so it takes no concurrency slot: were it to
    wait for one, the very sandboxes it calls could hold every slot.
    """
    payload = spec.payload if isinstance(spec.payload, dict) else {}
    return spec.type == "tool.run" and bool(payload.get("job_id"))
