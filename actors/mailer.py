"""The mailer actor: delivers mail in the background, with retries.

Requests hand a :class:`~runtime.mailer.Mail` to :meth:`MailerActor.submit`,
which never waits: a request must not be slower, or answer differently,
because a mail server is slow or down. The actor records ``mail.queued``,
tries the transport with exponential backoff, and records ``mail.sent`` or
``mail.failed``. The body is never recorded: its links carry tokens.

Without an SMTP server, local-dev writes the whole mail to the console log
(so a local user can follow a reset link); other modes record a failure and
log nothing of the body.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

import trio

from eventlog import EventLog, EventLogError
from eventlog.schemas import Payload, new_event
from eventlog.vocabulary.accounts import MailFailed, MailQueued, MailSent, mail_stream
from runtime.mailer import Mail, MailDeliveryError, SmtpTransport

MAILBOX_SIZE: Final = 256
MAX_PARALLEL_DELIVERIES: Final = 4
MAX_BACKOFF_SECONDS: Final = 300.0
RECORD_TIMEOUT: Final = 10.0
NO_TRANSPORT: Final = "no SMTP server is configured"

log = logging.getLogger(__name__)


class MailerActor:
    """Owns outgoing mail from queueing to its final event."""

    def __init__(
        self,
        event_log: EventLog,
        transport: SmtpTransport | None,
        *,
        console: bool,
        attempts: int,
        retry_seconds: float,
        mailbox_size: int = MAILBOX_SIZE,
    ) -> None:
        """Prepare the actor; nothing is sent until :meth:`run`.

        Args:
            event_log: Where ``mail.*`` events go.
            transport: The SMTP server, or None when none is configured.
            console: Without a transport, write mail to the log (local-dev).
            attempts: Deliveries tried before the mail fails for good.
            retry_seconds: Wait before the second attempt; doubles each time.
            mailbox_size: Mails waiting beyond this are refused, not queued.
        """
        self._log = event_log
        self._transport = transport
        self._console = console
        self._attempts = attempts
        self._retry_seconds = retry_seconds
        self._send, self._receive = trio.open_memory_channel[tuple[Mail, str]](
            mailbox_size
        )

    def submit(self, mail: Mail, *, workspace: str = "") -> bool:
        """Queue ``mail`` for delivery without waiting.

        Returns:
            False when the mailbox is full or closed; the mail is dropped and
            a warning logged, because waiting would hold up a request.
        """
        try:
            self._send.send_nowait((mail.with_id(), workspace))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            log.warning("mail dropped kind=%s reason=mailbox full", mail.kind)
            return False
        return True

    async def fail_interrupted(self, pending: Iterable[tuple[str, str]]) -> None:
        """Close the mails a previous process queued but never finished.

        Their bodies were only in that process's memory, so they cannot be
        sent now; each gets ``mail.failed`` so none stays pending forever.
        """
        for mail_id, workspace in pending:
            await self._record(
                mail_id,
                MailFailed(error="interrupted by a restart", attempts=0),
                workspace,
            )

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Deliver mail until cancelled; mails still queued then are abandoned."""
        limiter = trio.CapacityLimiter(MAX_PARALLEL_DELIVERIES)
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for mail, workspace in self._receive:
                await limiter.acquire_on_behalf_of(mail.mail_id)
                nursery.start_soon(self._deliver_and_release, mail, workspace, limiter)

    async def _deliver_and_release(
        self, mail: Mail, workspace: str, limiter: trio.CapacityLimiter
    ) -> None:
        try:
            await self._deliver(mail, workspace)
        finally:
            limiter.release_on_behalf_of(mail.mail_id)

    async def _deliver(self, mail: Mail, workspace: str) -> None:
        queued = MailQueued(
            mail_id=mail.mail_id, to=mail.to, subject=mail.subject, kind=mail.kind
        )
        await self._record(mail.mail_id, queued, workspace)

        transport = self._transport
        if transport is None:
            if self._console:
                log.info(
                    "mail written to console id=%s to=%s subject=%s\n%s",
                    mail.mail_id,
                    mail.to,
                    mail.subject,
                    mail.text,
                )
                outcome: Payload = MailSent(transport="console", attempts=1)
            else:
                log.warning(
                    "mail not sent id=%s kind=%s reason=%s",
                    mail.mail_id,
                    mail.kind,
                    NO_TRANSPORT,
                )
                outcome = MailFailed(error=NO_TRANSPORT, attempts=0)
            await self._record(mail.mail_id, outcome, workspace)
            return

        delay = self._retry_seconds
        for attempt in range(1, self._attempts + 1):
            try:
                await trio.to_thread.run_sync(
                    transport.send, mail, abandon_on_cancel=True
                )
            except MailDeliveryError as exc:
                last_attempt = exc.permanent or attempt == self._attempts
                log.warning(
                    "mail delivery failed id=%s attempt=%s permanent=%s error=%s",
                    mail.mail_id,
                    attempt,
                    exc.permanent,
                    exc,
                )
                if last_attempt:
                    failed = MailFailed(error=str(exc), attempts=attempt)
                    await self._record(mail.mail_id, failed, workspace)
                    return
                await trio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
            else:
                log.info(
                    "mail sent id=%s kind=%s attempts=%s",
                    mail.mail_id,
                    mail.kind,
                    attempt,
                )
                sent = MailSent(transport=transport.name, attempts=attempt)
                await self._record(mail.mail_id, sent, workspace)
                return

    async def _record(self, mail_id: str, payload: Payload, workspace: str) -> None:
        # Shielded and bounded: a mail's outcome is worth recording even while
        # the runtime shuts down, but never worth hanging the shutdown.
        with trio.move_on_after(RECORD_TIMEOUT, shield=True):
            try:
                await self._log.append(
                    mail_stream(mail_id),
                    [new_event(payload, actor="mailer", workspace=workspace)],
                )
            except EventLogError as exc:
                # The mail itself is unaffected; losing its record must not
                # take the actor, and with it the runtime, down.
                log.warning(
                    "mail event not recorded id=%s type=%s error=%s",
                    mail_id,
                    payload.EVENT_TYPE,
                    exc,
                )
