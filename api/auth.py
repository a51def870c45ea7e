"""Accounts over HTTP: signup, login, me, logout, forgot, reset, verify.

Every route here is open at the door; each checks what it needs itself.
Answers never include a password, a password hash or a token other than
the new session token that signup and login hand out once.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from quart import Blueprint, Response, jsonify, request

from actors.accounts import (
    Account,
    AccountError,
    AccountsBusyError,
    EmailTakenError,
    InvalidCredentialsError,
)
from actors.signup import sign_up
from api.bodies import query_flag, read_body
from api.context import ApiContext
from api.door import NOT_AUTHENTICATED, bearer_token
from api.errors import ApiError, error_response
from api.principal import current_principal
from api.ratelimit import RateLimits, current_client
from runtime.emails import InvalidEmailError, clean_email, email_digest

FORGOT_MESSAGE: Final = (
    "If an account exists for that email, a reset link is on its way."
)
RESET_MESSAGE: Final = "Your password has been updated. Please sign in."
VERIFIED_MESSAGE: Final = "Email verified."

_STATUS: Final[dict[type[AccountError], int]] = {
    EmailTakenError: 409,
    InvalidCredentialsError: 401,
    AccountsBusyError: 503,
}


class SignupBody(msgspec.Struct, frozen=True):
    """Body of ``POST /v1/auth/signup``."""

    name: str = ""
    email: str = ""
    password: str = ""
    workspace: str = ""


class LoginBody(msgspec.Struct, frozen=True):
    """Body of ``POST /v1/auth/login``."""

    email: str = ""
    password: str = ""


class ForgotBody(msgspec.Struct, frozen=True):
    """Body of ``POST /v1/auth/forgot``."""

    email: str = ""


class ResetBody(msgspec.Struct, frozen=True):
    """Body of ``POST /v1/auth/reset``."""

    token: str = ""
    password: str = ""


class VerifyBody(msgspec.Struct, frozen=True):
    """Body of ``POST /v1/auth/verify``."""

    token: str = ""


def create_auth_blueprint(ctx: ApiContext, limits: RateLimits) -> Blueprint:
    """Routes under ``/v1/auth``; ``limits`` adds the per-address limits."""
    blueprint = Blueprint("auth", __name__)
    accounts = ctx.accounts

    @blueprint.errorhandler(AccountError)
    async def on_account_error(error: AccountError) -> Response:
        return error_response(_STATUS.get(type(error), 400), str(error))

    @blueprint.post("/v1/auth/signup")
    async def signup() -> tuple[Response, int]:
        if not ctx.settings.signup_open:
            # Refused before the body is read: nothing about it is recorded.
            raise ApiError(403, "signup is closed on this runtime")
        body = await read_body(SignupBody)
        signed_in = await sign_up(
            accounts,
            name=body.name,
            email=body.email,
            password=body.password,
            workspace=body.workspace,
        )
        return jsonify(
            {"token": signed_in.token, "user": user_json(signed_in.account)}
        ), 201

    @blueprint.post("/v1/auth/login")
    async def login() -> Response:
        body = await read_body(LoginBody)
        if body.email.strip():
            limits.check_email(email_digest(body.email))
        signed_in = await accounts.login(body.email, body.password, current_client())
        return jsonify({"token": signed_in.token, "user": user_json(signed_in.account)})

    @blueprint.get("/v1/auth/me")
    async def me() -> Response:
        principal = current_principal()
        account = (
            accounts.account(principal.user_id) if principal.kind == "user" else None
        )
        if account is None:
            raise ApiError(401, NOT_AUTHENTICATED)
        return jsonify({"user": user_json(account)})

    @blueprint.post("/v1/auth/logout")
    async def logout() -> Response:
        token = bearer_token(request.headers.get("Authorization"))
        everywhere = query_flag("all")
        await accounts.logout(token, everywhere=everywhere)
        return jsonify({"ok": True})

    @blueprint.post("/v1/auth/forgot")
    async def forgot() -> Response:
        body = await read_body(ForgotBody)
        try:
            address = clean_email(body.email)
        except InvalidEmailError as exc:
            raise ApiError(400, str(exc)) from None
        limits.check_email(email_digest(address))
        ctx.reset_requests.submit(address)
        return jsonify({"ok": True, "message": FORGOT_MESSAGE})

    @blueprint.post("/v1/auth/reset")
    async def reset() -> Response:
        body = await read_body(ResetBody)
        await accounts.reset_password(body.token, body.password)
        return jsonify({"ok": True, "message": RESET_MESSAGE})

    @blueprint.post("/v1/auth/verify")
    async def verify() -> Response:
        body = await read_body(VerifyBody)
        await accounts.verify_email(body.token)
        return jsonify({"ok": True, "message": VERIFIED_MESSAGE})

    return blueprint


def user_json(account: Account) -> dict[str, Any]:
    """The user object of the contract, plus whether the email is verified."""
    user, workspace = account.user, account.workspace
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "workspace": workspace.name,
        "workspace_slug": workspace.slug,
        "workspace_id": workspace.id,
        "verified": user.verified,
    }
