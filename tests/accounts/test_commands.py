"""Account commands on the in-memory log: signup, login, logout, expiry."""

from __future__ import annotations

import pytest
import trio

from actors.accounts import EmailTakenError, InvalidCredentialsError, InvalidInputError
from actors.signup import sign_up, slugify
from eventlog import MemoryStorage
from eventlog.schemas import decode_payload
from eventlog.vocabulary.accounts import AUTH_STREAM, LoginFailed, user_stream
from runtime.emails import email_digest
from tests.accounts.support import Stack, running_stack

PASSWORD = "correct horse"


async def _signup(
    stack: Stack, email: str = "neo@example.com", name: str = "Neo"
) -> str:
    signed_in = await sign_up(stack.commands, name=name, email=email, password=PASSWORD)
    return signed_in.token


async def test_sign_up_creates_an_owner_with_a_session() -> None:
    """Signup records a workspace and its Owner and opens a live session."""
    async with running_stack() as stack:
        signed_in = await sign_up(
            stack.commands, name=" Neo ", email="Neo@Example.com", password=PASSWORD
        )

        account = signed_in.account
        assert (account.user.name, account.user.email, account.user.role) == (
            "Neo",
            "neo@example.com",
            "Owner",
        )
        assert (account.workspace.name, account.workspace.slug) == (
            "Neo's workspace",
            "neo-s-workspace",
        )
        assert stack.commands.session_user(signed_in.token) == account.user
        assert stack.outbox.last("welcome").to == "Neo@Example.com"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"name": "", "email": "bad", "password": "short"},
            "enter a valid email address",
        ),
        (
            {"name": "", "email": "a@b.co", "password": "short"},
            "password must be at least 8 characters",
        ),
        ({"name": " ", "email": "a@b.co", "password": PASSWORD}, "name is required"),
        (
            {"name": "x" * 201, "email": "a@b.co", "password": PASSWORD},
            "name must be at most 200 characters",
        ),
        (
            {
                "name": "A",
                "email": "a@b.co",
                "password": PASSWORD,
                "workspace": "w" * 201,
            },
            "workspace must be at most 200 characters",
        ),
        (
            {"name": "Neo\r\nBcc: x@y.z", "email": "a@b.co", "password": PASSWORD},
            "name must not contain control characters",
        ),
        (
            {"name": "Neo\n", "email": "a@b.co", "password": PASSWORD},
            "name must not contain control characters",
        ),
        (
            {"name": "N\x00eo", "email": "a@b.co", "password": PASSWORD},
            "name must not contain control characters",
        ),
        (
            {"name": "Neo\u2028", "email": "a@b.co", "password": PASSWORD},
            "name must not contain control characters",
        ),
        (
            {"name": "N\x1beo", "email": "a@b.co", "password": "short"},
            "password must be at least 8 characters",
        ),
        (
            {
                "name": "A",
                "email": "a@b.co",
                "password": PASSWORD,
                "workspace": "Lab\x85",
            },
            "workspace must not contain control characters",
        ),
    ],
)
async def test_sign_up_checks_fields_in_order(
    fields: dict[str, str], message: str
) -> None:
    """Email, then password, then name, then workspace; nothing is written."""
    async with running_stack() as stack:
        head = stack.log.head

        with pytest.raises(InvalidInputError) as caught:
            await sign_up(stack.commands, **fields)

        assert str(caught.value) == message
        assert stack.log.head == head


async def test_sign_up_concurrent_same_address_has_one_winner() -> None:
    """Twenty concurrent signups for one address (any case): one account."""
    async with running_stack() as stack:
        outcomes: list[str] = []

        async def attempt(i: int) -> None:
            email = "neo@example.com" if i % 2 else "NEO@EXAMPLE.com"
            try:
                await _signup(stack, email=email, name=f"Neo {i}")
            except EmailTakenError as exc:
                outcomes.append(str(exc))
            else:
                outcomes.append("created")

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(attempt, i)

        assert sorted(outcomes) == [
            "an account with this email already exists"
        ] * 19 + ["created"]
        signed_up = [e for e in await stack.events() if e.type == "user.signed_up"]
        assert len(signed_up) == 1
        assert len(stack.state.users) == 1
        assert stack.state.open_claims == {}


async def test_sign_up_gives_taken_slugs_a_suffix() -> None:
    """A second "Neo's workspace" becomes neo-s-workspace-1."""
    async with running_stack() as stack:
        await _signup(stack, email="a@example.com")

        second = await sign_up(
            stack.commands, name="Neo", email="b@example.com", password=PASSWORD
        )

        assert second.account.workspace.slug == "neo-s-workspace-1"


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Neo's workspace", "neo-s-workspace"),
        ("  --Ünïcode!!  ", "n-code"),
        ("!!!", "workspace"),
    ],
)
def test_slugify_keeps_only_ascii_letters_and_digits(name: str, slug: str) -> None:
    """Runs of anything else become one dash; nothing left is "workspace"."""

    assert slugify(name) == slug


async def test_login_records_failures_without_the_password() -> None:
    """Wrong password and unknown address both fail the same way, recorded."""
    async with running_stack() as stack:
        await _signup(stack)
        user_id = next(iter(stack.state.users))

        for email, password in (
            ("neo@example.com", "wrong pass"),
            ("ghost@x.io", PASSWORD),
        ):
            with pytest.raises(InvalidCredentialsError) as caught:
                await stack.commands.login(email, password, "10.0.0.7")
            assert str(caught.value) == "invalid email or password"

        mine = [decode_payload(e) for e in await stack.events(user_stream(user_id))]
        assert (
            LoginFailed(
                reason="wrong_password",
                email_hash=email_digest("neo@example.com"),
                client="10.0.0.7",
                user_id=user_id,
            )
            in mine
        )
        unknown = [decode_payload(e) for e in await stack.events(AUTH_STREAM)]
        assert unknown == [
            LoginFailed(
                reason="unknown_email",
                email_hash=email_digest("ghost@x.io"),
                client="10.0.0.7",
            )
        ]


async def test_login_rehashes_when_parameters_change() -> None:
    """A hash made with older parameters is replaced at the next login, once."""
    storage = MemoryStorage()
    async with running_stack(storage) as stack:
        await _signup(stack)
    async with running_stack(storage, argon2_time_cost=2) as stack:
        await stack.commands.login("neo@example.com", PASSWORD, "127.0.0.1")
        await stack.commands.login("neo@example.com", PASSWORD, "127.0.0.1")

        rehashed = [e for e in await stack.events() if e.type == "password.rehashed"]
        assert len(rehashed) == 1
        user = next(iter(stack.state.users.values()))
        assert user.password_hash.startswith("$argon2id$v=19$m=8192,t=2,p=1$")


async def test_logout_everywhere_ends_every_session() -> None:
    """?all ends all of the user's sessions; a plain logout only its own."""
    async with running_stack() as stack:
        first = await _signup(stack)
        second = (await stack.commands.login("neo@example.com", PASSWORD, "")).token
        third = (await stack.commands.login("neo@example.com", PASSWORD, "")).token

        await stack.commands.logout(third, everywhere=False)
        assert stack.commands.session_user(third) is None
        assert stack.commands.session_user(first) is not None
        await stack.commands.logout(first, everywhere=True)

        assert stack.commands.session_user(first) is None
        assert stack.commands.session_user(second) is None
        assert stack.state.sessions == {}


async def test_logout_with_an_unknown_token_changes_nothing() -> None:
    """Logging out a token that is no session appends nothing."""
    async with running_stack() as stack:
        head = stack.log.head

        await stack.commands.logout("mxs_nope", everywhere=True)
        await stack.commands.logout(None, everywhere=False)

        assert stack.log.head == head


async def test_session_expires_after_its_ttl() -> None:
    """A session is valid until its absolute TTL, then it is not."""
    async with running_stack(session_ttl_seconds=3600) as stack:
        token = await _signup(stack)

        stack.clock.advance(3599)
        alive = stack.commands.session_user(token)
        stack.clock.advance(1)

        assert alive is not None
        assert stack.commands.session_user(token) is None
