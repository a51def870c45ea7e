"""The forgot-password actor: issues reset links away from the request.

``POST /v1/auth/forgot`` hands the address to :meth:`ResetRequester.submit`
and answers at once, the same way whether or not an account has the address
and whether or not the mail can be sent: the lookup, the append and the
mail all happen here, later, where no answer or timing can reveal them.
"""

from __future__ import annotations

import logging
from typing import Final

import trio

from actors.accounts import AccountCommands
from eventlog import ExpectedVersion
from eventlog.vocabulary.accounts import PasswordResetRequested, user_stream
from runtime.mail_texts import reset_mail
from runtime.tokens import RESET_PREFIX, new_token, token_hash

MAILBOX_SIZE: Final = 256

log = logging.getLogger(__name__)


class ResetRequester:
    """Turns forgot-password requests into reset links and mails."""

    def __init__(
        self, commands: AccountCommands, *, mailbox_size: int = MAILBOX_SIZE
    ) -> None:
        self._commands = commands
        self._send, self._receive = trio.open_memory_channel[str](mailbox_size)

    def submit(self, address: str) -> None:
        """Queue a reset for ``address`` without waiting.

        When the mailbox is full the request is dropped with a warning: the
        caller is answered the same either way, and the per-address rate
        limit already keeps one address from filling it.
        """
        try:
            self._send.send_nowait(address)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            log.warning("password reset request dropped reason=mailbox full")

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Handle queued requests one by one until cancelled."""
        task_status.started()
        async for address in self._receive:
            try:
                await self.issue(address)
            except Exception:
                # One failed request (a full disk, a lagging read model) must
                # not stop the requests behind it.
                log.exception("password reset request failed")

    async def issue(self, address: str) -> bool:
        """Record a reset link for ``address`` and mail it, if it has an account.

        Returns:
            True when a link was issued.
        """
        commands = self._commands
        user = commands.state.user_by_email(address)
        if user is None:
            log.info("password reset requested for an unknown address")
            return False

        token = new_token(RESET_PREFIX)
        ttl = commands.settings.reset_ttl_seconds
        requested = PasswordResetRequested(
            token_hash=token_hash(token), expires_at_ns=commands.clock() + ttl * 10**9
        )
        await commands.append(
            user_stream(user.id),
            [requested],
            ExpectedVersion.ANY,
            actor="anonymous",
            workspace=user.workspace_id,
        )

        mail = reset_mail(
            to=user.address,
            base_url=commands.public_url,
            token=token,
            ttl_minutes=ttl // 60,
        )
        commands.mailer.submit(mail, workspace=user.workspace_id)
        log.info("password reset issued user=%s", user.id)
        return True
