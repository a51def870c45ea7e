"""Reset and verification links: single use, expiry, and their effects."""

from __future__ import annotations

import pytest
import trio

from actors.accounts import InvalidCredentialsError, InvalidInputError, InvalidLinkError
from actors.signup import sign_up
from eventlog import MemoryStorage
from eventlog.schemas import new_event
from eventlog.vocabulary.accounts import (
    EmailClaimed,
    MailQueued,
    email_stream,
    mail_stream,
)
from runtime.emails import email_digest
from tests.accounts.smtp_sink import link_token
from tests.accounts.support import Stack, running_stack

PASSWORD = "correct horse"
NEW_PASSWORD = "battery staple"


async def _reset_token(stack: Stack) -> str:
    issued = await stack.services.reset_requests.issue("NEO@example.com")
    assert issued is True
    return _token(stack.outbox.last("password_reset").text)


def _token(text: str) -> str:
    return link_token(text)


async def test_reset_password_sets_it_and_ends_sessions() -> None:
    """After a reset the old password and every old session stop working."""
    async with running_stack() as stack:
        signed_in = await sign_up(
            stack.commands, name="Neo", email="neo@example.com", password=PASSWORD
        )
        token = await _reset_token(stack)

        await stack.commands.reset_password(f"  {token} ", NEW_PASSWORD)

        assert stack.commands.session_user(signed_in.token) is None
        with pytest.raises(InvalidCredentialsError):
            await stack.commands.login("neo@example.com", PASSWORD, "")
        await stack.commands.login("neo@example.com", NEW_PASSWORD, "")


async def test_reset_password_concurrent_use_succeeds_once() -> None:
    """Two requests with one link at the same time: exactly one resets."""
    async with running_stack() as stack:
        await sign_up(
            stack.commands, name="Neo", email="neo@example.com", password=PASSWORD
        )
        token = await _reset_token(stack)
        outcomes: list[str] = []

        async def attempt(password: str) -> None:
            try:
                await stack.commands.reset_password(token, password)
            except InvalidLinkError as exc:
                outcomes.append(str(exc))
            else:
                outcomes.append("reset")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(attempt, NEW_PASSWORD)
            nursery.start_soon(attempt, "another password")

        assert sorted(outcomes) == ["reset", "this reset link has already been used"]
        completed = [
            e for e in await stack.events() if e.type == "password.reset_completed"
        ]
        assert len(completed) == 1


async def test_reset_password_refuses_bad_links_and_passwords() -> None:
    """Short password first, then unknown, expired and used links."""
    async with running_stack(reset_ttl_seconds=600) as stack:
        await sign_up(
            stack.commands, name="Neo", email="neo@example.com", password=PASSWORD
        )
        older = await _reset_token(stack)
        token = await _reset_token(stack)
        messages = []

        for link, password in (
            ("mxpr_unknown", "short"),
            ("mxpr_unknown", NEW_PASSWORD),
        ):
            with pytest.raises((InvalidInputError, InvalidLinkError)) as caught:
                await stack.commands.reset_password(link, password)
            messages.append(str(caught.value))
        await stack.commands.reset_password(token, NEW_PASSWORD)
        for link in (token, older):
            with pytest.raises(InvalidLinkError) as caught:
                await stack.commands.reset_password(link, NEW_PASSWORD)
            messages.append(str(caught.value))
        expiring = await _reset_token(stack)
        stack.clock.advance(600)
        with pytest.raises(InvalidLinkError) as caught:
            await stack.commands.reset_password(expiring, NEW_PASSWORD)
        messages.append(str(caught.value))

        assert messages == [
            "password must be at least 8 characters",
            "invalid or expired reset link",
            "this reset link has already been used",
            "this reset link has already been used",
            "this reset link has expired",
        ]


async def test_reset_request_for_unknown_address_records_nothing() -> None:
    """No account, no link, no mail, no event."""
    async with running_stack() as stack:
        head = stack.log.head

        issued = await stack.services.reset_requests.issue("ghost@example.com")

        assert issued is False
        assert stack.log.head == head
        assert stack.outbox.mails == []


async def test_verify_email_sets_the_flag_and_is_idempotent() -> None:
    """The welcome link verifies once; using it again still succeeds."""
    async with running_stack(verify_ttl_seconds=3600) as stack:
        signed_in = await sign_up(
            stack.commands, name="Neo", email="neo@example.com", password=PASSWORD
        )
        token = _token(stack.outbox.last("welcome").text)

        await stack.commands.verify_email(token)
        await stack.commands.verify_email(token)

        assert stack.state.users[signed_in.account.user.id].verified is True
        verified = [e for e in await stack.events() if e.type == "email.verified"]
        assert len(verified) == 1


async def test_verify_email_refuses_unknown_and_expired_links() -> None:
    """Unknown and expired links are refused with their own messages."""
    async with running_stack(verify_ttl_seconds=3600) as stack:
        await sign_up(
            stack.commands, name="Neo", email="neo@example.com", password=PASSWORD
        )
        token = _token(stack.outbox.last("welcome").text)
        stack.clock.advance(3600)
        messages = []

        for link in ("mxev_unknown", token, 17):
            with pytest.raises(InvalidLinkError) as caught:
                await stack.commands.verify_email(link)
            messages.append(str(caught.value))

        assert messages == [
            "invalid verification link",
            "verification link expired",
            "invalid verification link",
        ]


async def test_start_releases_claims_and_fails_mail_left_by_a_crash() -> None:
    """A claim without its account is released; a queued mail is failed."""
    storage = MemoryStorage()
    async with running_stack(storage) as stack:
        await stack.log.append(
            email_stream(email_digest("neo@example.com")),
            [new_event(EmailClaimed(user_id="usr_gone", workspace_id="ws_gone"))],
        )
        await stack.log.append(
            mail_stream("ml_1"),
            [new_event(MailQueued(mail_id="ml_1", to="a@b.co", subject="s", kind="k"))],
        )

    async with running_stack(storage) as stack:
        await sign_up(
            stack.commands, name="Neo", email="neo@example.com", password=PASSWORD
        )

        types = [e.type for e in await stack.events()]
        assert types.count("email.released") == 1
        assert [e.type for e in await stack.events(mail_stream("ml_1"))] == [
            "mail.queued",
            "mail.failed",
        ]
        assert stack.state.pending_mail == {}
