"""Outgoing mail over SMTP with the standard library, one blocking send at a time.

The transport knows nothing of retries or events; the mailer actor in
:mod:`actors.mailer` runs :meth:`SmtpTransport.send` in a worker thread and
decides what to do with a :class:`MailDeliveryError`.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Final

from runtime.config import Settings

PERMANENT_CODES: Final = range(500, 600)


@dataclass(frozen=True, slots=True)
class Mail:
    """One plain-text message to one address."""

    to: str
    subject: str
    text: str
    kind: str
    """What the mail is for (``welcome``, ``password_reset``); recorded in the log."""
    mail_id: str = ""

    def with_id(self) -> Mail:
        """A copy with a fresh ``mail_id`` if it has none."""
        if self.mail_id:
            return self
        return Mail(self.to, self.subject, self.text, self.kind, new_mail_id())


class MailDeliveryError(Exception):
    """The mail was not accepted; ``permanent`` says whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class SmtpTransport:
    """Sends through one SMTP server: plain, STARTTLS or implicit TLS."""

    name = "smtp"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: str,
        sender: str,
        username: str = "",
        password: str = "",
        timeout: float = 20.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.security = security
        self.sender = sender
        self._username = username
        self._password = password
        self._timeout = timeout
        self._tls = tls_context or ssl.create_default_context()

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpTransport | None:
        """The configured transport, or None when no SMTP host is set."""
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout_seconds,
        )

    def send(self, mail: Mail) -> None:
        """Deliver ``mail``; blocks, so call it from a worker thread.

        Raises:
            MailDeliveryError: the server refused the mail (``permanent`` for
                5xx answers) or could not be reached.
        """
        message = self._message(mail)
        try:
            with self._connect() as smtp:
                if self.security == "starttls":
                    smtp.starttls(context=self._tls)
                if self._username:
                    smtp.login(self._username, self._password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise MailDeliveryError(
                f"recipient refused: {_first_reason(exc.recipients)}", permanent=True
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise MailDeliveryError(
                f"server answered {exc.smtp_code}: {_text(exc.smtp_error)}",
                permanent=exc.smtp_code in PERMANENT_CODES,
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailDeliveryError(
                f"cannot talk to {self.host}:{self.port}: {exc}", permanent=False
            ) from None

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self._timeout, context=self._tls
            )
        return smtplib.SMTP(self.host, self.port, timeout=self._timeout)

    def _message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = make_msgid(domain=domain)
        message.set_content(mail.text)
        return message


def new_mail_id() -> str:
    """A fresh mail id such as ``ml_6f1c...``."""
    return "ml_" + uuid.uuid4().hex[:16]


def _first_reason(recipients: dict[str, tuple[int, bytes]]) -> str:
    for address, (code, reason) in recipients.items():
        return f"{address} {code} {_text(reason)}"
    return "no recipient accepted"


def _text(value: bytes | str) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
