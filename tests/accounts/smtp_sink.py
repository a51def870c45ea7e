"""A real SMTP server on 127.0.0.1 that keeps what it receives, for tests."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

import trio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

_LINK = re.compile(r"https?://\S+?/(?:reset|verify)\?token=(\S+)")


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the server accepted it."""

    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        """The plain-text body."""
        body = self.message.get_body(("plain",))
        assert body is not None
        content: str = body.get_content()
        return content

    def token(self) -> str:
        """The token of the reset or verification link in the body."""
        return link_token(self.text)


def link_token(text: str) -> str:
    """The token of the reset or verification link in a mail's text."""
    match = _LINK.search(text)
    assert match is not None, text
    return match.group(1)


@dataclass
class SmtpSink:
    """The handler: stores messages, or refuses the next ones on request."""

    port: int = 0
    received: list[ReceivedMail] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    """Answers to give instead of accepting, one per incoming message."""
    attempts: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._changed:
            self.attempts += 1
            if self.refusals:
                return self.refusals.pop(0)
            message = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.received.append(
                ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message)
            )
            self._changed.notify_all()
        return "250 OK"

    def wait(
        self, predicate: Callable[[ReceivedMail], bool], timeout: float
    ) -> ReceivedMail:
        """Block until a message matching ``predicate`` arrived.

        Raises:
            TimeoutError: none arrived within ``timeout`` seconds.
        """
        with self._changed:
            found: list[ReceivedMail] = []

            def arrived() -> bool:
                found[:] = [m for m in self.received if predicate(m)]
                return bool(found)

            if not self._changed.wait_for(arrived, timeout):
                raise TimeoutError(f"no matching mail within {timeout} s")
            return found[-1]

    async def receive(
        self, to: str, subject: str, within: float = 15.0
    ) -> ReceivedMail:
        """The last mail to ``to`` with ``subject``, waiting for it if needed."""

        def matches(mail: ReceivedMail) -> bool:
            return to in mail.recipients and mail.message["Subject"] == subject

        return await trio.to_thread.run_sync(self.wait, matches, within)

    def count(self, to: str) -> int:
        """How many messages were accepted for ``to``."""
        with self._changed:
            return sum(to in mail.recipients for mail in self.received)


class _Controller(Controller):
    """Binds to an ephemeral port and learns it before the readiness probe."""

    def _trigger_server(self) -> None:
        server = cast(asyncio.Server, self.server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@contextmanager
def smtp_sink(credentials: tuple[str, str] | None = None) -> Iterator[SmtpSink]:
    """Run an SMTP server on 127.0.0.1 for the ``with`` block.

    With ``credentials`` the server requires AUTH with that user and password
    (over plain text, which is fine on loopback).
    """
    sink = SmtpSink()
    kwargs: dict[str, Any] = {}
    if credentials is not None:

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and (
                    data.login.decode(),
                    data.password.decode(),
                )
                == credentials
            )
            return AuthResult(success=ok)

        kwargs = {
            "authenticator": authenticate,
            "auth_required": True,
            "auth_require_tls": False,
        }
    controller = _Controller(sink, hostname="127.0.0.1", port=0, **kwargs)
    controller.start()
    sink.port = controller.port
    try:
        yield sink
    finally:
        controller.stop()
