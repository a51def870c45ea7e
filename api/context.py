"""What the HTTP layer is given by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from actors.accounts import AccountCommands
from actors.reset_requests import ResetRequester
from actors.supervisor import JobSupervisor
from eventlog import EventLog
from projections.jobs import JobsState
from projections.runner import ProjectionRunner
from runtime.config import Settings


@dataclass(slots=True)
class ApiContext:
    """Services and settings the blueprints read from and command."""

    settings: Settings
    log: EventLog
    jobs: ProjectionRunner[JobsState]
    supervisor: JobSupervisor
    accounts: AccountCommands
    reset_requests: ResetRequester
    isolation: str = "process-group"
    network: str = "host"
    sse_keepalive_seconds: float = 15.0
