"""Account commands: signup, login, logout, password reset, verification.

Each command validates its input, appends its facts and waits until the
accounts read model includes them before it returns, so the caller's next
request sees its own write. Races are settled by the log, never by a
read-then-write check:

* signup claims the email's uniqueness stream; of concurrent signups for
  one address exactly one claim is accepted, the others are told the
  address is taken;
* a reset, a verification and a login append to the user's stream at the
  version they read, so a reset link works once however many requests use
  it together, and a login that checked a password a reset just replaced
  does not open a session.

Errors (the API maps each to one status)::

    AccountError
    ├── InvalidInputError        400, the message says what is wrong
    ├── EmailTakenError          409
    ├── InvalidCredentialsError  401
    ├── InvalidLinkError         400, the message says what is wrong
    └── AccountsBusyError        503, the read model lags or the races
                                 did not settle; safe to retry
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from eventlog import EventLog, ExpectedVersion, WrongExpectedVersionError
from eventlog.envelope import Expected
from eventlog.schemas import Payload, new_event
from eventlog.vocabulary.accounts import (
    AUTH_STREAM,
    EmailVerified,
    LoginFailed,
    PasswordRehashed,
    PasswordResetCompleted,
    SessionClosed,
    SessionOpened,
    user_stream,
)
from projections.accounts import AccountsState, User, Workspace
from projections.errors import ProjectionLagError
from projections.runner import ProjectionRunner
from runtime.config import Settings
from runtime.emails import email_digest
from runtime.mailer import Mail
from runtime.passwords import InvalidPasswordError, PasswordHasher, check_password
from runtime.tokens import SESSION_PREFIX, new_token, token_hash

MAX_ATTEMPTS: Final = 5
"""Appends retried after a concurrent write to the same stream."""

log = logging.getLogger(__name__)


class AccountError(Exception):
    """Root of the errors account commands raise; ``str()`` is the answer text."""


class InvalidInputError(AccountError):
    """A field is missing or breaks a rule."""


class EmailTakenError(AccountError):
    """Another account already has this address."""

    def __init__(self) -> None:
        super().__init__("an account with this email already exists")


class InvalidCredentialsError(AccountError):
    """The email and password do not match an account."""

    def __init__(self) -> None:
        super().__init__("invalid email or password")


class InvalidLinkError(AccountError):
    """A reset or verification token is unknown, used or expired."""


class AccountsBusyError(AccountError):
    """The command could not settle in time; nothing was changed."""

    def __init__(self) -> None:
        super().__init__("accounts are busy, please retry")


@dataclass(frozen=True, slots=True)
class Account:
    """A user with its workspace, as the API shows them together."""

    user: User
    workspace: Workspace


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: the bearer token (shown once) and its account."""

    token: str
    account: Account


class MailSubmitter(Protocol):
    """Where account flows hand their mails: the mailer actor."""

    def submit(self, mail: Mail, *, workspace: str = "") -> bool:
        """Queue ``mail`` without waiting; False if it was dropped."""
        ...


class AccountCommands:
    """The write side of accounts, reading its own writes from the projection."""

    def __init__(
        self,
        event_log: EventLog,
        accounts: ProjectionRunner[AccountsState],
        hasher: PasswordHasher,
        mailer: MailSubmitter,
        settings: Settings,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.log = event_log
        self.accounts = accounts
        self.hasher = hasher
        self.mailer = mailer
        self.settings = settings
        self.clock = clock
        self.public_url = settings.public_url
        """Base of the links in mails; the server fills it in from its bind
        address when no public URL is configured."""

    @property
    def state(self) -> AccountsState:
        """The accounts read model as it is now."""
        return self.accounts.state

    def account(self, user_id: str) -> Account | None:
        """The user ``user_id`` with its workspace, if both exist."""
        user = self.state.users.get(user_id)
        if user is None:
            return None
        workspace = self.state.workspaces.get(user.workspace_id)
        return None if workspace is None else Account(user, workspace)

    def session_user(self, token: str) -> User | None:
        """The user of a live session whose bearer token is ``token``."""
        return self.state.live_session(token_hash(token), self.clock())

    async def login(self, email: object, password: object, client: str) -> SignedIn:
        """Check the password and open a session.

        Raises:
            InvalidCredentialsError: no such account, or a wrong password.
            AccountsBusyError: concurrent changes to the account did not settle.
        """
        address = email.strip() if isinstance(email, str) else ""
        if not isinstance(password, str) or len(password) > 1024:
            # Refused before hashing: an oversized password buys no work.
            password = ""
        user = self.state.user_by_email(address) if address else None
        if user is None:
            await self.hasher.verify_decoy(password)
            await self._login_failed(AUTH_STREAM, "", "unknown_email", address, client)
            raise InvalidCredentialsError()

        verified = ""
        for _ in range(MAX_ATTEMPTS):
            # Read models change in place while this task awaits: the version
            # and hash are captured together, before any await, so the append
            # below is refused if anything changed after they were read.
            version, stored = user.version, user.password_hash
            if stored != verified:
                if not await self.hasher.verify(stored, password):
                    await self._login_failed(
                        user_stream(user.id),
                        user.workspace_id,
                        "wrong_password",
                        address,
                        client,
                    )
                    raise InvalidCredentialsError()
                verified = stored
            token = new_token(SESSION_PREFIX)
            events: list[Payload] = [self.session_opened(token)]
            if self.hasher.needs_rehash(verified):
                events.append(
                    PasswordRehashed(password_hash=await self.hasher.hash(password))
                )
            try:
                await self._append_user(user, events, version)
            except WrongExpectedVersionError:
                # The account changed since it was read; if its password did,
                # the check above runs again against the new one.
                user = await self._reread(user.id)
                continue
            return SignedIn(token, self.account_of(user.id))
        raise AccountsBusyError()

    async def logout(self, token: str | None, *, everywhere: bool) -> None:
        """End the session of ``token``, or with ``everywhere`` all its user's.

        An unknown or expired token is not an error: there is nothing to end.
        """
        if not token:
            return
        session_hash = token_hash(token)
        session = self.state.sessions.get(session_hash)
        user = None if session is None else self.state.users.get(session.user_id)
        if user is None:
            return
        live = self.state.live_session(session_hash, self.clock()) is not None
        hashes = sorted(user.sessions) if everywhere and live else [session_hash]
        reason = "logout_all" if everywhere and live else "logout"
        closed: list[Payload] = [
            SessionClosed(session_hash=h, reason=reason) for h in hashes
        ]
        await self._append_user(user, closed, ExpectedVersion.ANY)

    async def verify_email(self, token: object) -> None:
        """Mark the address of the verification link's account as verified.

        A link that was already used succeeds again without a change.

        Raises:
            InvalidLinkError: the link is unknown or has expired.
        """
        digest = token_hash(token.strip()) if isinstance(token, str) else ""
        for _ in range(MAX_ATTEMPTS):
            link = self.state.verify_tokens.get(digest)
            user = None if link is None else self.state.users.get(link.user_id)
            if link is None or user is None:
                raise InvalidLinkError("invalid verification link")
            if link.used:
                return
            if link.expires_at_ns <= self.clock():
                raise InvalidLinkError("verification link expired")
            version = user.version
            try:
                await self._append_user(
                    user, [EmailVerified(token_hash=digest)], version
                )
            except WrongExpectedVersionError:
                await self._catch_up()
                continue
            return
        raise AccountsBusyError()

    async def reset_password(self, token: object, password: object) -> None:
        """Set a new password with a reset link and end every session.

        Raises:
            InvalidInputError: the new password breaks the password rule.
            InvalidLinkError: the link is unknown, used or expired.
        """
        try:
            new_password = check_password(password)
        except InvalidPasswordError as exc:
            raise InvalidInputError(str(exc)) from None
        digest = token_hash(token.strip()) if isinstance(token, str) else ""
        new_hash = ""
        for _ in range(MAX_ATTEMPTS):
            link = self.state.reset_tokens.get(digest)
            user = None if link is None else self.state.users.get(link.user_id)
            if link is None or user is None:
                raise InvalidLinkError("invalid or expired reset link")
            if link.used:
                raise InvalidLinkError("this reset link has already been used")
            if link.expires_at_ns <= self.clock():
                raise InvalidLinkError("this reset link has expired")
            # Captured before the await: see login.
            version, sessions = user.version, sorted(user.sessions)
            new_hash = new_hash or await self.hasher.hash(new_password)
            events: list[Payload] = [
                PasswordResetCompleted(token_hash=digest, password_hash=new_hash)
            ]
            events += [
                SessionClosed(session_hash=h, reason="password_reset") for h in sessions
            ]
            try:
                await self._append_user(user, events, version)
            except WrongExpectedVersionError:
                # Another request changed the account first, possibly with
                # this very link: re-read and decide again.
                await self._catch_up()
                continue
            log.info("password reset user=%s", user.id)
            return
        raise AccountsBusyError()

    # -- shared with signup and the reset requester ----------------------

    async def append(
        self,
        stream: str,
        events: list[Payload],
        expected: Expected,
        *,
        actor: str,
        workspace: str,
    ) -> int:
        """Append and wait until the read model includes it; the last position.

        Raises:
            eventlog.WrongExpectedVersionError: the stream moved on.
            AccountsBusyError: the read model did not catch up in time.
        """
        result = await self.log.append(
            stream,
            [new_event(p, actor=actor, workspace=workspace) for p in events],
            expected,
        )
        position = result.positions[-1]
        try:
            await self.accounts.wait_for(position)
        except ProjectionLagError:
            raise AccountsBusyError() from None
        return position

    def account_of(self, user_id: str) -> Account:
        """Like :meth:`account`, for a user this process just wrote.

        Raises:
            AccountsBusyError: the read model does not have it (yet).
        """
        account = self.account(user_id)
        if account is None:
            raise AccountsBusyError()
        return account

    def session_opened(self, token: str) -> SessionOpened:
        """The event that opens a session for ``token``, expiring per settings."""
        expires = self.clock() + self.settings.session_ttl_seconds * 10**9
        return SessionOpened(session_hash=token_hash(token), expires_at_ns=expires)

    # -- private helpers ----------------------------------------------------

    async def _append_user(
        self, user: User, events: list[Payload], expected: Expected
    ) -> int:
        return await self.append(
            user_stream(user.id),
            events,
            expected,
            actor=f"user:{user.id}",
            workspace=user.workspace_id,
        )

    async def _catch_up(self) -> None:
        try:
            await self.accounts.wait_for(self.log.head)
        except ProjectionLagError:
            raise AccountsBusyError() from None

    async def _reread(self, user_id: str) -> User:
        await self._catch_up()
        user = self.state.users.get(user_id)
        if user is None:
            raise AccountsBusyError()
        return user

    async def _login_failed(
        self, stream: str, workspace: str, reason: str, email: str, client: str
    ) -> None:
        failed = LoginFailed(
            reason=reason,
            email_hash=email_digest(email),
            client=client,
            user_id=stream.removeprefix("user-") if workspace else "",
        )
        await self.log.append(
            stream, [new_event(failed, actor="anonymous", workspace=workspace)]
        )
        log.info("login failed reason=%s client=%s", reason, client)
