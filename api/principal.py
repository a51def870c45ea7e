"""Who is making the current request, as decided by the door."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from quart import g

PrincipalKind = Literal["operator", "user", "local", "anonymous"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request.

    ``operator`` holds the operator token and sees every workspace. ``user``
    holds a session and sees only ``workspace_id``. ``local`` is the
    unauthenticated caller allowed only in local-dev mode without an
    operator token; it is confined to the local workspace, the empty
    ``workspace_id`` that its own jobs carry, so whoever can reach the port
    without credentials never sees or cancels what a signed-in user owns.
    ``anonymous`` reached an open route without credentials and sees nothing
    that a workspace owns.
    """

    kind: PrincipalKind
    workspace_id: str = ""
    user_id: str = ""
    role: str = ""
    session_id: str = ""

    @property
    def sees_all_workspaces(self) -> bool:
        """True for callers not confined to one workspace: the operator only."""
        return self.kind == "operator"

    def can_see(self, workspace_id: str) -> bool:
        """Whether something owned by ``workspace_id`` is visible to the caller."""
        if self.sees_all_workspaces:
            return True
        return self.kind in ("user", "local") and workspace_id == self.workspace_id

    @property
    def actor(self) -> str:
        """How the caller is named in the ``actor`` field of events it causes."""
        if self.kind == "user":
            return f"user:{self.user_id}"
        return self.kind


LOCAL = Principal(kind="local")
ANONYMOUS = Principal(kind="anonymous")


def current_principal() -> Principal:
    """The principal the door attached to this request."""
    principal = getattr(g, "principal", None)
    if not isinstance(principal, Principal):
        # The door runs before every handler; reaching here means a route
        # was registered outside it, which must fail closed.
        raise RuntimeError("no principal attached to the request")
    return principal
