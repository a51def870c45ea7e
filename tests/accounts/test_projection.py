"""The accounts read model: rebuilds, snapshots and sweeping by event time."""

from __future__ import annotations

import msgspec

from actors.signup import sign_up
from eventlog import RecordedEvent
from eventlog.schemas import Payload, new_event
from eventlog.vocabulary.accounts import (
    SessionOpened,
    UserSignedUp,
    WorkspaceCreated,
    user_stream,
    workspace_stream,
)
from eventlog.vocabulary.jobs import JobStarted
from projections.accounts import SWEEP_INTERVAL_NS, AccountsProjection, AccountsState
from projections.runner import fold_until
from tests.accounts.support import running_stack

HOUR_NS = 3600 * 10**9


def _recorded(
    position: int, stream: str, version: int, payload: Payload, at_ns: int
) -> RecordedEvent:
    new = new_event(payload)
    return RecordedEvent(
        position=position,
        stream=stream,
        version=version,
        type=new.type,
        event_id=new.event_id,
        recorded_at_ns=at_ns,
        actor="system",
        workspace="",
        correlation_id="",
        causation_id="",
        prev_hash=bytes(32),
        data=msgspec.Raw(new.data),
    )


async def test_accounts_rebuild_equals_live_fold_and_snapshot() -> None:
    """Folding the log again, or decoding a snapshot, gives the live state."""
    async with running_stack() as stack:
        for i in range(3):
            await sign_up(
                stack.commands, name=f"U{i}", email=f"u{i}@x.io", password="password1"
            )
        token = (await stack.commands.login("u1@x.io", "password1", "")).token
        await stack.commands.logout(token, everywhere=False)
        await stack.services.reset_requests.issue("u2@x.io")
        projection = AccountsProjection()

        rebuilt = await fold_until(stack.log, projection, stack.log.head)
        restored = projection.decode(projection.encode(stack.state))

        assert rebuilt == stack.state
        assert restored == stack.state
        assert len(rebuilt.users) == 3
        assert len(rebuilt.sessions) == 3


def test_accounts_sweep_drops_expired_sessions_by_event_time() -> None:
    """An expired session is dropped when a later event is an hour past it."""
    projection = AccountsProjection()
    state = projection.initial()
    t0 = 10 * HOUR_NS
    events = [
        _recorded(
            1,
            workspace_stream("ws_1"),
            1,
            WorkspaceCreated(workspace_id="ws_1", name="W", slug="w"),
            t0,
        ),
        _recorded(
            2,
            user_stream("usr_1"),
            1,
            UserSignedUp(
                user_id="usr_1",
                workspace_id="ws_1",
                name="N",
                email="n@x.io",
                role="Owner",
                password_hash="h",
            ),
            t0,
        ),
        _recorded(
            3,
            user_stream("usr_1"),
            2,
            SessionOpened(session_hash="s1", expires_at_ns=t0 + HOUR_NS),
            t0,
        ),
        _recorded(
            4,
            user_stream("usr_1"),
            3,
            SessionOpened(session_hash="s2", expires_at_ns=t0 + 9 * HOUR_NS),
            t0,
        ),
    ]

    for event in events:
        state = projection.apply(state, event)
    before = set(state.sessions)
    later = _recorded(
        5,
        "other-stream",
        1,
        WorkspaceCreated(workspace_id="ws_2", name="V", slug="v"),
        t0 + SWEEP_INTERVAL_NS + HOUR_NS,
    )
    state = projection.apply(state, later)

    assert before == {"s1", "s2"}
    assert set(state.sessions) == {"s2"}
    assert state.users["usr_1"].sessions == {"s2"}
    assert state.users["usr_1"].version == 3


def test_accounts_projection_ignores_other_events() -> None:
    """Events of other areas leave the state as it was."""
    projection = AccountsProjection()
    state = projection.initial()

    after = projection.apply(state, _recorded(1, "job-j1", 1, JobStarted(), 5))

    assert after.users == {} and after.workspaces == {}
    assert isinstance(after, AccountsState)
