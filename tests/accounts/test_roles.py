"""Roles are checked: only an Owner passes where an Owner is required."""

from __future__ import annotations

import pytest
from quart import g
from quart_trio import QuartTrio

from api.door import require_user
from api.errors import ApiError
from api.principal import LOCAL, Principal

OPERATOR = Principal(kind="operator")
OWNER = Principal(kind="user", workspace_id="ws_1", user_id="usr_1", role="Owner")
MEMBER = Principal(kind="user", workspace_id="ws_1", user_id="usr_2", role="Member")


@pytest.mark.parametrize(
    ("principal", "role", "outcome"),
    [
        (OWNER, "Owner", None),
        (MEMBER, None, None),
        (MEMBER, "Owner", (403, "only a workspace Owner can do this")),
        (OPERATOR, "Owner", (401, "not authenticated")),
        (LOCAL, None, (401, "not authenticated")),
    ],
)
async def test_require_user_checks_session_and_role(
    principal: Principal, role: str | None, outcome: tuple[int, str] | None
) -> None:
    """A session is required, and the role when one is named."""
    app = QuartTrio(__name__)
    async with app.test_request_context("/v1/cloud/join-tokens", method="POST"):
        g.principal = principal

        if outcome is None:
            assert require_user(role) is principal
            return
        with pytest.raises(ApiError) as caught:
            require_user(role)

    assert (caught.value.status, caught.value.message) == outcome
