"""Facts about workspaces, users, sessions, tokens and mail.

Streams:

* ``workspace-<id>``: the workspace's own facts.
* ``user-<id>``: everything that happens to one account, including its
  sessions and its reset and verification tokens. Commands that must not
  race (a reset, a rehash) append here with the stream version they read.
* ``email-<sha256 of the normalised email>``: the uniqueness claim. Signup
  appends ``email.claimed`` expecting the version at which the address was
  free, so of any number of concurrent signups exactly one wins.
* ``slug-<slug>``: the same claim for a workspace slug.
* ``mail-<id>``: one outgoing mail, without its body (links carry tokens).
* ``$auth``: failed logins for addresses that have no account.

Tokens (session, reset, verification) appear only as the SHA-256 hex of the
token. Password hashes are argon2id encodings; they must survive restarts so
they live in the log, and every payload field holding one is listed in
``SECRET_FIELDS`` so that nothing prints it.
"""

from __future__ import annotations

from typing import ClassVar

from eventlog.schemas import Payload, event_type

AUTH_STREAM = "$auth"
ROLES = ("Owner", "Member")


def workspace_stream(workspace_id: str) -> str:
    """The stream that holds one workspace's facts."""
    return f"workspace-{workspace_id}"


def user_stream(user_id: str) -> str:
    """The stream that holds one account's facts."""
    return f"user-{user_id}"


def email_stream(email_digest: str) -> str:
    """The uniqueness stream of a normalised email, named by its SHA-256 hex."""
    return f"email-{email_digest}"


def slug_stream(slug: str) -> str:
    """The uniqueness stream of a workspace slug."""
    return f"slug-{slug}"


def mail_stream(mail_id: str) -> str:
    """The stream that holds one outgoing mail's facts."""
    return f"mail-{mail_id}"


@event_type("workspace.slug_claimed")
class WorkspaceSlugClaimed(Payload, frozen=True):
    """A workspace reserved its slug; nobody else may use it."""

    workspace_id: str


@event_type("workspace.created")
class WorkspaceCreated(Payload, frozen=True):
    """A workspace exists from now on."""

    workspace_id: str
    name: str
    slug: str


@event_type("email.claimed")
class EmailClaimed(Payload, frozen=True):
    """An account is being created for this address; nobody else may take it."""

    user_id: str
    workspace_id: str


@event_type("email.released")
class EmailReleased(Payload, frozen=True):
    """A claim whose account was never created was given back."""

    user_id: str
    reason: str


@event_type("user.signed_up")
class UserSignedUp(Payload, frozen=True):
    """An account was created in a workspace."""

    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset({"password_hash"})

    user_id: str
    workspace_id: str
    name: str
    email: str
    """The address as entered, trimmed; lookups use its normalised form."""
    role: str
    password_hash: str
    """argon2id encoding. Never returned by the API or printed by the CLI."""


@event_type("session.opened")
class SessionOpened(Payload, frozen=True):
    """The account signed in; the bearer token's hash identifies the session."""

    session_hash: str
    expires_at_ns: int


@event_type("session.closed")
class SessionClosed(Payload, frozen=True):
    """A session ended: ``logout``, ``logout_all`` or ``password_reset``."""

    session_hash: str
    reason: str


@event_type("login.failed")
class LoginFailed(Payload, frozen=True):
    """A sign-in was refused.

    ``user_id`` is empty when no account has the address; the address itself
    is then kept only as ``email_hash`` so arbitrary input is never stored.
    """

    reason: str
    email_hash: str
    client: str
    user_id: str = ""


@event_type("password.rehashed")
class PasswordRehashed(Payload, frozen=True):
    """The stored hash was upgraded to the current argon2id parameters."""

    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset({"password_hash"})

    password_hash: str


@event_type("password.reset_requested")
class PasswordResetRequested(Payload, frozen=True):
    """A reset link was issued; it works once, until ``expires_at_ns``."""

    token_hash: str
    expires_at_ns: int


@event_type("password.reset_completed")
class PasswordResetCompleted(Payload, frozen=True):
    """The reset link ``token_hash`` was used to set a new password."""

    SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset({"password_hash"})

    token_hash: str
    password_hash: str


@event_type("email.verification_requested")
class EmailVerificationRequested(Payload, frozen=True):
    """A verification link was issued; valid until ``expires_at_ns``."""

    token_hash: str
    expires_at_ns: int


@event_type("email.verified")
class EmailVerified(Payload, frozen=True):
    """The account proved it receives mail at its address."""

    token_hash: str


@event_type("mail.queued")
class MailQueued(Payload, frozen=True):
    """A mail was handed to the mailer. Its body is not recorded."""

    mail_id: str
    to: str
    subject: str
    kind: str


@event_type("mail.sent")
class MailSent(Payload, frozen=True):
    """The mail left: accepted by the SMTP server, or written to the console."""

    transport: str
    attempts: int


@event_type("mail.failed")
class MailFailed(Payload, frozen=True):
    """The mailer gave up on the mail."""

    error: str
    attempts: int
