"""SMTP delivery through a real server on 127.0.0.1, with retries and events."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import trio

from actors.mailer import MailerActor
from eventlog import EventLog, MemoryStorage
from eventlog.schemas import payload_as_builtins
from runtime.mailer import Mail, MailDeliveryError, SmtpTransport
from tests.accounts.smtp_sink import smtp_sink

SECRET_LINK = "http://h/reset?token=mxpr_secret"


def _mail(to: str = "neo@example.com") -> Mail:
    return Mail(
        to=to, subject="Reset", text=f"Open {SECRET_LINK}\n", kind="password_reset"
    )


def _transport(port: int, username: str = "", password: str = "") -> SmtpTransport:
    return SmtpTransport(
        host="127.0.0.1",
        port=port,
        security="none",
        sender="Matrix Runtime <noreply@example.com>",
        username=username,
        password=password,
        timeout=5,
    )


@pytest.fixture
async def event_log() -> AsyncIterator[EventLog]:
    log = EventLog(MemoryStorage())
    async with trio.open_nursery() as nursery:
        await nursery.start(log.run)
        yield log
        nursery.cancel_scope.cancel()


async def _outcome(log: EventLog) -> None:
    """Wait, following the log, until a mail was sent or failed."""
    with trio.fail_after(10):
        async for batch in log.tail(0):
            if any(e.type in ("mail.sent", "mail.failed") for e in batch):
                return


async def _mail_events(log: EventLog) -> list[tuple[str, object]]:
    return [(e.type, payload_as_builtins(e)) for e in await log.read_all(0, 100)]


# Plain-text AUTH is what this test wants (loopback only); aiosmtpd warns.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.filterwarnings("ignore:Session.login_data is deprecated")
def test_smtp_transport_logs_in_and_delivers() -> None:
    """With credentials the transport authenticates, then the mail arrives."""
    with smtp_sink(credentials=("mailer", "s3cret")) as sink:
        _transport(sink.port, username="mailer", password="s3cret").send(_mail())

        [received] = sink.received
        assert received.recipients == ["neo@example.com"]
        assert received.message["From"] == "Matrix Runtime <noreply@example.com>"
        assert received.token() == "mxpr_secret"


def test_smtp_transport_reports_permanent_refusals() -> None:
    """A 5xx answer is permanent; a 4xx one is worth retrying."""
    with smtp_sink() as sink:
        sink.refusals = ["550 5.1.1 mailbox unavailable", "451 4.3.0 try later"]
        transport = _transport(sink.port)
        errors = []

        for _ in range(2):
            with pytest.raises(MailDeliveryError) as caught:
                transport.send(_mail())
            errors.append((str(caught.value), caught.value.permanent))

        assert errors == [
            ("server answered 550: 5.1.1 mailbox unavailable", True),
            ("server answered 451: 4.3.0 try later", False),
        ]


def test_smtp_transport_reports_an_unreachable_server() -> None:
    """Nothing listening is a transient failure naming the address."""
    with smtp_sink() as sink:
        port = sink.port

    with pytest.raises(MailDeliveryError) as caught:
        _transport(port).send(_mail())

    assert caught.value.permanent is False
    assert str(caught.value).startswith(f"cannot talk to 127.0.0.1:{port}: ")


async def test_mailer_retries_until_accepted(event_log: EventLog) -> None:
    """Two temporary refusals, then delivery; events carry no body."""
    with smtp_sink() as sink:
        sink.refusals = ["451 busy", "421 closing"]
        mailer = MailerActor(
            event_log,
            _transport(sink.port),
            console=False,
            attempts=3,
            retry_seconds=0.01,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(mailer.run)

            assert mailer.submit(_mail()) is True
            received = await sink.receive("neo@example.com", "Reset")
            await _outcome(event_log)
            nursery.cancel_scope.cancel()

    assert received.token() == "mxpr_secret"
    assert sink.attempts == 3
    events = await _mail_events(event_log)
    assert [t for t, _ in events] == ["mail.queued", "mail.sent"]
    assert events[1][1] == {"transport": "smtp", "attempts": 3}
    assert "mxpr_secret" not in repr(events)


async def test_mailer_gives_up_on_a_permanent_refusal(event_log: EventLog) -> None:
    """A 5xx answer fails the mail at once, recorded with the reason."""
    with smtp_sink() as sink:
        sink.refusals = ["550 no such user"]
        mailer = MailerActor(
            event_log,
            _transport(sink.port),
            console=False,
            attempts=5,
            retry_seconds=0.01,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(mailer.run)

            mailer.submit(_mail())
            await _outcome(event_log)
            nursery.cancel_scope.cancel()

    events = await _mail_events(event_log)
    assert events[1] == (
        "mail.failed",
        {"error": "server answered 550: no such user", "attempts": 1},
    )
    assert sink.attempts == 1


async def test_mailer_without_smtp_writes_local_dev_mail_to_the_console(
    event_log: EventLog, caplog: pytest.LogCaptureFixture
) -> None:
    """In local-dev the link is logged so a local user can follow it."""
    caplog.set_level(logging.INFO, logger="actors.mailer")
    mailer = MailerActor(event_log, None, console=True, attempts=1, retry_seconds=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(mailer.run)

        mailer.submit(_mail())
        await _outcome(event_log)
        nursery.cancel_scope.cancel()

    assert SECRET_LINK in caplog.text
    assert (await _mail_events(event_log))[1] == (
        "mail.sent",
        {"transport": "console", "attempts": 1},
    )


async def test_mailer_without_smtp_elsewhere_fails_and_hides_the_link(
    event_log: EventLog, caplog: pytest.LogCaptureFixture
) -> None:
    """Outside local-dev nothing of the body is logged and the mail fails."""
    caplog.set_level(logging.INFO)
    mailer = MailerActor(event_log, None, console=False, attempts=1, retry_seconds=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(mailer.run)

        mailer.submit(_mail())
        await _outcome(event_log)
        nursery.cancel_scope.cancel()

    assert "mxpr_secret" not in caplog.text
    assert (await _mail_events(event_log))[1] == (
        "mail.failed",
        {"error": "no SMTP server is configured", "attempts": 0},
    )


async def test_mailer_submit_drops_when_the_mailbox_is_full(
    event_log: EventLog,
) -> None:
    """submit never waits: past the mailbox size it refuses."""
    mailer = MailerActor(
        event_log, None, console=True, attempts=1, retry_seconds=1, mailbox_size=1
    )

    first = mailer.submit(_mail())
    second = mailer.submit(_mail())

    assert (first, second) == (True, False)
