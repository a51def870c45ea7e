"""Account events keep password hashes in the log but never display them."""

from __future__ import annotations

import msgspec
import pytest

from eventlog import RecordedEvent
from eventlog.schemas import Payload, new_event, payload_for_display
from eventlog.vocabulary.accounts import (
    PasswordRehashed,
    PasswordResetCompleted,
    SessionOpened,
    UserSignedUp,
)

HASH = "$argon2id$v=19$m=8192,t=1,p=1$c2FsdA$aGFzaA"


def _recorded(payload: Payload) -> RecordedEvent:
    new = new_event(payload)
    return RecordedEvent(
        1,
        "user-usr_1",
        1,
        new.type,
        new.event_id,
        0,
        "",
        "",
        "",
        "",
        b"",
        msgspec.Raw(new.data),
    )


@pytest.mark.parametrize(
    "payload",
    [
        UserSignedUp(
            user_id="usr_1",
            workspace_id="ws_1",
            name="Neo",
            email="neo@example.com",
            role="Owner",
            password_hash=HASH,
        ),
        PasswordRehashed(password_hash=HASH),
        PasswordResetCompleted(token_hash="ab" * 32, password_hash=HASH),
    ],
)
def test_payload_for_display_redacts_password_hashes(payload: Payload) -> None:
    """Every payload that carries a password hash shows it as [redacted]."""

    shown = payload_for_display(_recorded(payload))

    assert shown["password_hash"] == "[redacted]"
    assert HASH not in repr(shown)


def test_payload_for_display_keeps_other_fields() -> None:
    """Payloads without secrets are displayed unchanged."""
    payload = SessionOpened(session_hash="cd" * 32, expires_at_ns=5)

    shown = payload_for_display(_recorded(payload))

    assert shown == {"session_hash": "cd" * 32, "expires_at_ns": 5}
