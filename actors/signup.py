"""Signup: a workspace and its Owner, atomic per email address.

The steps, each an append:

1. ``email.claimed`` on ``email-<digest>``, expecting the version at which
   the address was free. Concurrent signups for one address race here and
   exactly one wins; the others are told the address is taken.
2. ``workspace.slug_claimed`` on ``slug-<slug>``, trying ``<slug>-1``,
   ``-2``, ... while taken.
3. ``workspace.created`` on ``workspace-<id>``.
4. ``user.signed_up``, ``session.opened`` and
   ``email.verification_requested`` together on ``user-<id>``.

If anything fails before step 4 was handed to the log, the claim is released
at once. If the process dies between steps 1 and 4, :func:`release_dangling_claims`
releases it at the next start, so an address is never locked for good.
"""

from __future__ import annotations

import logging
import re
from typing import Final

import trio

from actors.accounts import (
    AccountCommands,
    AccountsBusyError,
    EmailTakenError,
    InvalidInputError,
    SignedIn,
)
from eventlog import ExpectedVersion, WrongExpectedVersionError
from eventlog.schemas import Payload, new_event
from eventlog.vocabulary.accounts import (
    EmailClaimed,
    EmailReleased,
    EmailVerificationRequested,
    UserSignedUp,
    WorkspaceCreated,
    WorkspaceSlugClaimed,
    email_stream,
    slug_stream,
    user_stream,
    workspace_stream,
)
from runtime.control_chars import (
    has_bidi_controls,
    has_control_characters,
    has_hidden_characters,
    is_blank,
)
from runtime.emails import InvalidEmailError, clean_email, email_digest
from runtime.mail_texts import welcome_mail
from runtime.passwords import InvalidPasswordError, check_password
from runtime.tokens import SESSION_PREFIX, VERIFY_PREFIX, new_id, new_token, token_hash

MAX_NAME_CHARS: Final = 200
MAX_SLUG_SUFFIX: Final = 1000
RELEASE_TIMEOUT: Final = 10.0

log = logging.getLogger(__name__)

_NOT_SLUG: Final = re.compile(r"[^a-z0-9]+")


async def sign_up(
    commands: AccountCommands,
    *,
    name: object,
    email: object,
    password: object,
    workspace: object = None,
) -> SignedIn:
    """Create a workspace with its Owner and open the Owner's first session.

    Raises:
        InvalidInputError: the first field, in the order email, password,
            name, workspace, that breaks its rule.
        EmailTakenError: an account has, or is being created with, the address.
        AccountsBusyError: the read model lagged; nothing usable was created.
    """
    clean_name, address, secret = _validate(name, email, password)
    workspace_name = _workspace_name(workspace, clean_name)
    if commands.state.user_by_email(address) is not None:
        raise EmailTakenError()

    user_id, workspace_id = new_id("usr_"), new_id("ws_")
    actor = f"user:{user_id}"
    claim = email_stream(email_digest(address))
    claimed_at = await _claim_email(commands, claim, user_id, workspace_id)
    handed_over = False
    try:
        password_hash = await commands.hasher.hash(secret)
        slug = await _claim_slug(commands, workspace_name, workspace_id, actor)
        created = WorkspaceCreated(
            workspace_id=workspace_id, name=workspace_name, slug=slug
        )
        await commands.append(
            workspace_stream(workspace_id),
            [created],
            ExpectedVersion.NO_STREAM,
            actor=actor,
            workspace=workspace_id,
        )

        token, verify_token = new_token(SESSION_PREFIX), new_token(VERIFY_PREFIX)
        events: list[Payload] = [
            UserSignedUp(
                user_id=user_id,
                workspace_id=workspace_id,
                name=clean_name,
                email=address,
                role="Owner",
                password_hash=password_hash,
            ),
            commands.session_opened(token),
            EmailVerificationRequested(
                token_hash=token_hash(verify_token),
                expires_at_ns=commands.clock()
                + commands.settings.verify_ttl_seconds * 10**9,
            ),
        ]
        # From here the append may commit even if this task is cancelled, so
        # the claim must not be released: recovery decides at the next start.
        handed_over = True
        await commands.append(
            user_stream(user_id),
            events,
            ExpectedVersion.NO_STREAM,
            actor=actor,
            workspace=workspace_id,
        )
    except BaseException:
        if not handed_over:
            await _release(commands, claim, claimed_at, user_id, "signup failed")
        raise

    account = commands.account_of(user_id)
    log.info("signed up user=%s workspace=%s", user_id, workspace_id)
    commands.mailer.submit(
        welcome_mail(
            to=address,
            name=clean_name,
            workspace=workspace_name,
            base_url=commands.public_url,
            token=verify_token,
            ttl_hours=commands.settings.verify_ttl_seconds // 3600,
        ),
        workspace=workspace_id,
    )
    return SignedIn(token, account)


async def release_dangling_claims(commands: AccountCommands) -> int:
    """Release every email claim whose account was never created.

    Run once at start-up, after the read model caught up and before requests
    are served, so no signup of this process can be in flight.

    Returns:
        How many claims were released.
    """
    released = 0
    for digest, user_id in list(commands.state.open_claims.items()):
        if user_id in commands.state.users:
            continue
        if await commands.log.stream_version(user_stream(user_id)):
            continue
        stream = email_stream(digest)
        version = await commands.log.stream_version(stream)
        await _release(commands, stream, version, user_id, "interrupted by a restart")
        released += 1
    return released


def slugify(name: str) -> str:
    """The URL form of a workspace name: ``Neo's workspace`` -> ``neo-s-workspace``."""
    slug = _NOT_SLUG.sub("-", name.strip().lower()).strip("-")
    return slug or "workspace"


def _validate(name: object, email: object, password: object) -> tuple[str, str, str]:
    try:
        address = clean_email(email)
        secret = check_password(password)
    except (InvalidEmailError, InvalidPasswordError) as exc:
        raise InvalidInputError(str(exc)) from None
    clean_name = name.strip() if isinstance(name, str) else ""
    if is_blank(clean_name):
        raise InvalidInputError("name is required")
    if len(clean_name) > MAX_NAME_CHARS:
        raise InvalidInputError(f"name must be at most {MAX_NAME_CHARS} characters")
    if isinstance(name, str) and has_control_characters(name):
        # Checked before trimming too: the name is written into the welcome
        # mail, which local-dev logs, and a stray CR or LF is a mistake.
        raise InvalidInputError("name must not contain control characters")
    if has_bidi_controls(clean_name):
        raise InvalidInputError("name must not contain bidirectional controls")
    if has_hidden_characters(clean_name):
        raise InvalidInputError("name must not contain invisible characters")
    return clean_name, address, secret


def _workspace_name(workspace: object, owner_name: str) -> str:
    given = workspace.strip() if isinstance(workspace, str) else ""
    if len(given) > MAX_NAME_CHARS:
        raise InvalidInputError(
            f"workspace must be at most {MAX_NAME_CHARS} characters"
        )
    if isinstance(workspace, str) and has_control_characters(workspace):
        raise InvalidInputError("workspace must not contain control characters")
    if has_bidi_controls(given):
        raise InvalidInputError("workspace must not contain bidirectional controls")
    if has_hidden_characters(given) and not is_blank(given):
        raise InvalidInputError("workspace must not contain invisible characters")
    if is_blank(given):
        given = ""
    return given or f"{owner_name}'s workspace"


async def _claim_email(
    commands: AccountCommands, stream: str, user_id: str, workspace_id: str
) -> int:
    """Claim the address; the claim stream's version after the claim."""
    version = await commands.log.stream_version(stream)
    if version:
        last = await commands.log.read_stream(stream, version, 1)
        if not last or last[0].type != EmailReleased.EVENT_TYPE:
            raise EmailTakenError()
    expected = version if version else ExpectedVersion.NO_STREAM
    claim = EmailClaimed(user_id=user_id, workspace_id=workspace_id)
    try:
        # Not waiting for the read model: nothing reads the claim back, and a
        # wait that timed out here would leave the claim unreleased.
        await commands.log.append(
            stream,
            [new_event(claim, actor=f"user:{user_id}", workspace=workspace_id)],
            expected,
        )
    except WrongExpectedVersionError:
        raise EmailTakenError() from None
    return version + 1


async def _claim_slug(
    commands: AccountCommands, name: str, workspace_id: str, actor: str
) -> str:
    base = slugify(name)
    for suffix in range(MAX_SLUG_SUFFIX):
        slug = f"{base}-{suffix}" if suffix else base
        if slug in commands.state.slugs:
            continue
        try:
            await commands.append(
                slug_stream(slug),
                [WorkspaceSlugClaimed(workspace_id=workspace_id)],
                ExpectedVersion.NO_STREAM,
                actor=actor,
                workspace=workspace_id,
            )
        except WrongExpectedVersionError:
            continue
        return slug
    raise AccountsBusyError()


async def _release(
    commands: AccountCommands, stream: str, version: int, user_id: str, reason: str
) -> None:
    # Shielded: the failure being handled may be a cancellation, and an
    # unreleased claim would lock the address until the next restart.
    with trio.move_on_after(RELEASE_TIMEOUT, shield=True):
        try:
            await commands.append(
                stream,
                [EmailReleased(user_id=user_id, reason=reason)],
                version,
                actor="system",
                workspace="",
            )
        except Exception as exc:
            log.warning(
                "email claim not released user=%s reason=%s error=%s",
                user_id,
                reason,
                exc,
            )
            return
    log.info("email claim released user=%s reason=%s", user_id, reason)
