"""The accounts read model: workspaces, users, sessions and one-time tokens.

Folded from the account events (see :mod:`eventlog.vocabulary.accounts`).
Sessions and tokens are keyed by the SHA-256 hex of the token, which is all
the log holds. Expired sessions and long-expired tokens are swept by the
recorded time of the events being folded, never by the wall clock, so a
rebuild reaches exactly the live state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec

from eventlog import RecordedEvent
from eventlog.schemas import Payload, decode_payload
from eventlog.vocabulary.accounts import (
    EmailClaimed,
    EmailReleased,
    EmailVerificationRequested,
    EmailVerified,
    MailFailed,
    MailQueued,
    MailSent,
    PasswordRehashed,
    PasswordResetCompleted,
    PasswordResetRequested,
    SessionClosed,
    SessionOpened,
    UserSignedUp,
    WorkspaceCreated,
    WorkspaceSlugClaimed,
)
from runtime.emails import email_digest, normalise_email

SWEEP_INTERVAL_NS: Final = 3600 * 10**9
TOKEN_GRACE_NS: Final = 7 * 24 * 3600 * 10**9
"""How long an expired token is kept, so using it says "expired", not "invalid"."""


class Workspace(msgspec.Struct, kw_only=True):
    """A workspace as the API shows it."""

    id: str
    name: str
    slug: str
    created_at_ns: int


class User(msgspec.Struct, kw_only=True):
    """An account. ``password_hash`` must never leave the process."""

    id: str
    workspace_id: str
    name: str
    email: str
    """Normalised (NFKC, case-folded): the identity and what the API shows."""
    address: str
    """As entered, trimmed: where mail is sent."""
    role: str
    password_hash: str
    verified: bool = False
    version: int = 0
    """Version of the stream ``user-<id>`` after the last folded event."""
    sessions: set[str] = msgspec.field(default_factory=set)
    created_at_ns: int = 0


class Session(msgspec.Struct, kw_only=True):
    """A signed-in session, keyed by its token hash."""

    user_id: str
    expires_at_ns: int


class OneTimeToken(msgspec.Struct, kw_only=True):
    """A reset or verification link, keyed by its token hash."""

    user_id: str
    expires_at_ns: int
    used: bool = False


class AccountsState(msgspec.Struct, kw_only=True):
    """Everything the door and the auth endpoints read."""

    workspaces: dict[str, Workspace] = msgspec.field(default_factory=dict)
    users: dict[str, User] = msgspec.field(default_factory=dict)
    users_by_email: dict[str, str] = msgspec.field(default_factory=dict)
    sessions: dict[str, Session] = msgspec.field(default_factory=dict)
    reset_tokens: dict[str, OneTimeToken] = msgspec.field(default_factory=dict)
    verify_tokens: dict[str, OneTimeToken] = msgspec.field(default_factory=dict)
    slugs: dict[str, str] = msgspec.field(default_factory=dict)
    """Workspace slug -> workspace id, claimed or created."""
    open_claims: dict[str, str] = msgspec.field(default_factory=dict)
    """Email digest -> user id of claims whose account does not exist yet."""
    pending_mail: dict[str, str] = msgspec.field(default_factory=dict)
    """Mail id -> workspace of mail queued but neither sent nor failed."""
    next_sweep_ns: int = 0

    def user_by_email(self, email: str) -> User | None:
        """The account whose normalised address equals that of ``email``."""
        user_id = self.users_by_email.get(normalise_email(email))
        return None if user_id is None else self.users.get(user_id)

    def live_session(self, session_hash: str, now_ns: int) -> User | None:
        """The user of session ``session_hash`` if it is open and not expired."""
        session = self.sessions.get(session_hash)
        if session is None or session.expires_at_ns <= now_ns:
            return None
        return self.users.get(session.user_id)


class AccountsProjection:
    """Folds account events into :class:`AccountsState`."""

    name = "accounts"
    version = 1

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(AccountsState)

    def initial(self) -> AccountsState:
        """An empty state."""
        return AccountsState()

    def apply(self, state: AccountsState, event: RecordedEvent) -> AccountsState:
        """Fold one event; other areas' events leave the state unchanged."""
        if event.recorded_at_ns >= state.next_sweep_ns:
            _sweep(state, event.recorded_at_ns)
        # Dispatch on the type name first: most of the log is job and MCP
        # traffic this model ignores, and decoding it would be wasted work.
        handler = _HANDLERS_BY_TYPE.get(event.type)
        if handler is not None:
            handler(state, event, decode_payload(event))
        if event.stream.startswith("user-"):
            # Every event on the stream counts, including those this model
            # has no use for (login.failed): commands append at this version.
            _touch(state, event)
        return state

    def encode(self, state: AccountsState) -> bytes:
        """msgpack of the whole state."""
        return self._encoder.encode(state)

    def decode(self, data: bytes) -> AccountsState:
        """The state :meth:`encode` wrote."""
        return self._decoder.decode(data)


def _workspace_created(state: AccountsState, event: RecordedEvent, p: object) -> None:
    assert isinstance(p, WorkspaceCreated)
    state.workspaces[p.workspace_id] = Workspace(
        id=p.workspace_id, name=p.name, slug=p.slug, created_at_ns=event.recorded_at_ns
    )
    state.slugs[p.slug] = p.workspace_id


def _slug_claimed(state: AccountsState, event: RecordedEvent, p: object) -> None:
    assert isinstance(p, WorkspaceSlugClaimed)
    state.slugs[event.stream.removeprefix("slug-")] = p.workspace_id


def _email_claimed(state: AccountsState, event: RecordedEvent, p: object) -> None:
    assert isinstance(p, EmailClaimed)
    state.open_claims[event.stream.removeprefix("email-")] = p.user_id


def _email_released(state: AccountsState, event: RecordedEvent, p: object) -> None:
    assert isinstance(p, EmailReleased)
    state.open_claims.pop(event.stream.removeprefix("email-"), None)


def _signed_up(state: AccountsState, event: RecordedEvent, p: object) -> None:
    assert isinstance(p, UserSignedUp)
    email = normalise_email(p.email)
    state.users[p.user_id] = User(
        id=p.user_id,
        workspace_id=p.workspace_id,
        name=p.name,
        email=email,
        address=p.email,
        role=p.role,
        password_hash=p.password_hash,
        version=event.version,
        created_at_ns=event.recorded_at_ns,
    )
    state.users_by_email[email] = p.user_id
    state.open_claims.pop(email_digest(email), None)


def _session_opened(state: AccountsState, event: RecordedEvent, p: object) -> None:
    assert isinstance(p, SessionOpened)
    user = _touch(state, event)
    if user is not None:
        state.sessions[p.session_hash] = Session(
            user_id=user.id, expires_at_ns=p.expires_at_ns
        )
        user.sessions.add(p.session_hash)


def _session_closed(state: AccountsState, event: RecordedEvent, p: object) -> None:
    assert isinstance(p, SessionClosed)
    user = _touch(state, event)
    state.sessions.pop(p.session_hash, None)
    if user is not None:
        user.sessions.discard(p.session_hash)


def _rehashed(state: AccountsState, event: RecordedEvent, p: object) -> None:
    assert isinstance(p, PasswordRehashed)
    user = _touch(state, event)
    if user is not None:
        user.password_hash = p.password_hash


def _reset_requested(state: AccountsState, event: RecordedEvent, p: object) -> None:
    assert isinstance(p, PasswordResetRequested)
    user = _touch(state, event)
    if user is not None:
        state.reset_tokens[p.token_hash] = OneTimeToken(
            user_id=user.id, expires_at_ns=p.expires_at_ns
        )


def _reset_completed(state: AccountsState, event: RecordedEvent, p: object) -> None:
    assert isinstance(p, PasswordResetCompleted)
    user = _touch(state, event)
    if user is None:
        return
    user.password_hash = p.password_hash
    # A new password voids every reset link issued before it, not only the
    # one that was used.
    for token in state.reset_tokens.values():
        if token.user_id == user.id:
            token.used = True


def _verification_requested(
    state: AccountsState, event: RecordedEvent, p: object
) -> None:
    assert isinstance(p, EmailVerificationRequested)
    user = _touch(state, event)
    if user is not None:
        state.verify_tokens[p.token_hash] = OneTimeToken(
            user_id=user.id, expires_at_ns=p.expires_at_ns
        )


def _verified(state: AccountsState, event: RecordedEvent, p: object) -> None:
    assert isinstance(p, EmailVerified)
    user = _touch(state, event)
    if user is not None:
        user.verified = True
    token = state.verify_tokens.get(p.token_hash)
    if token is not None:
        token.used = True


def _mail_queued(state: AccountsState, event: RecordedEvent, p: object) -> None:
    assert isinstance(p, MailQueued)
    state.pending_mail[p.mail_id] = event.workspace


def _mail_done(state: AccountsState, event: RecordedEvent, p: object) -> None:
    state.pending_mail.pop(event.stream.removeprefix("mail-"), None)


def _touch(state: AccountsState, event: RecordedEvent) -> User | None:
    """The user whose stream ``event`` is on, with its version advanced."""
    user = state.users.get(event.stream.removeprefix("user-"))
    if user is not None:
        user.version = event.version
    return user


def _sweep(state: AccountsState, now_ns: int) -> None:
    for session_hash in [
        h for h, s in state.sessions.items() if s.expires_at_ns <= now_ns
    ]:
        session = state.sessions.pop(session_hash)
        user = state.users.get(session.user_id)
        if user is not None:
            user.sessions.discard(session_hash)
    for tokens in (state.reset_tokens, state.verify_tokens):
        for token_hash in [
            h for h, t in tokens.items() if t.expires_at_ns + TOKEN_GRACE_NS <= now_ns
        ]:
            del tokens[token_hash]
    state.next_sweep_ns = now_ns + SWEEP_INTERVAL_NS


_Handler = Callable[[AccountsState, RecordedEvent, object], None]

_HANDLERS: dict[type[Payload], _Handler] = {
    WorkspaceSlugClaimed: _slug_claimed,
    WorkspaceCreated: _workspace_created,
    EmailClaimed: _email_claimed,
    EmailReleased: _email_released,
    UserSignedUp: _signed_up,
    SessionOpened: _session_opened,
    SessionClosed: _session_closed,
    PasswordRehashed: _rehashed,
    PasswordResetRequested: _reset_requested,
    PasswordResetCompleted: _reset_completed,
    EmailVerificationRequested: _verification_requested,
    EmailVerified: _verified,
    MailQueued: _mail_queued,
    MailSent: _mail_done,
    MailFailed: _mail_done,
}

_HANDLERS_BY_TYPE = {cls.EVENT_TYPE: handler for cls, handler in _HANDLERS.items()}
