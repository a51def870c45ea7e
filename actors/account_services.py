"""Everything accounts need at run time, built and started together."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import trio

from actors.accounts import AccountCommands
from actors.mailer import MailerActor
from actors.reset_requests import ResetRequester
from actors.signup import release_dangling_claims
from eventlog import EventLog
from projections.accounts import AccountsProjection, AccountsState
from projections.runner import ProjectionRunner
from projections.snapshots import SnapshotStore
from runtime.config import Settings
from runtime.mailer import SmtpTransport
from runtime.passwords import PasswordHasher

log = logging.getLogger(__name__)


@dataclass(slots=True)
class AccountServices:
    """The accounts read model, the commands, the mailer and the reset actor."""

    runner: ProjectionRunner[AccountsState]
    mailer: MailerActor
    commands: AccountCommands
    reset_requests: ResetRequester

    @classmethod
    def build(
        cls,
        event_log: EventLog,
        snapshots: SnapshotStore | None,
        settings: Settings,
    ) -> AccountServices:
        """Wire the services from ``settings``; nothing runs until :meth:`run`."""
        runner = ProjectionRunner(event_log, AccountsProjection(), snapshots)
        mailer = MailerActor(
            event_log,
            SmtpTransport.from_settings(settings),
            console=settings.mode == "local-dev",
            attempts=settings.mail_attempts,
            retry_seconds=settings.mail_retry_seconds,
        )
        hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        commands = AccountCommands(event_log, runner, hasher, mailer, settings)
        return cls(runner, mailer, commands, ResetRequester(commands))

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Catch up, repair what a previous process left unfinished, then serve.

        ``task_status.started()`` is called once the read model is current and
        the repairs are recorded, so the first request sees every account.
        """
        settings = self.commands.settings
        if not settings.smtp_host and settings.mode != "local-dev":
            log.warning(
                "no SMTP server configured: welcome and password-reset mails "
                "cannot be sent (set MATRIX_RUNTIME_SMTP_HOST)"
            )
        async with trio.open_nursery() as nursery:
            await nursery.start(self.runner.run)
            released = await release_dangling_claims(self.commands)
            pending = list(self.runner.state.pending_mail.items())
            await self.mailer.fail_interrupted(pending)
            if released or pending:
                log.info(
                    "accounts recovered claims_released=%s mails_failed=%s",
                    released,
                    len(pending),
                )
            await nursery.start(self.mailer.run)
            await nursery.start(self.reset_requests.run)
            task_status.started()
