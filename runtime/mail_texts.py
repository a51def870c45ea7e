"""The mails the account flows send: subject, text and the link they carry."""

from __future__ import annotations

from urllib.parse import quote

from runtime.mailer import Mail


def welcome_mail(
    *, to: str, name: str, workspace: str, base_url: str, token: str, ttl_hours: int
) -> Mail:
    """The mail a new account gets, with its email-verification link."""
    link = f"{base_url}/verify?token={quote(token)}"
    text = (
        f"Hello {name},\n\n"
        f"your Matrix Runtime account and the workspace {workspace!r} are ready.\n"
        f"Confirm your email address by opening this link within {ttl_hours} "
        f"hours:\n\n{link}\n"
    )
    return Mail(to=to, subject="Welcome to Matrix Runtime", text=text, kind="welcome")


def reset_mail(*, to: str, base_url: str, token: str, ttl_minutes: int) -> Mail:
    """The mail with a password-reset link."""
    link = f"{base_url}/reset?token={quote(token)}"
    text = (
        "Somebody asked to reset the password of your Matrix Runtime account.\n"
        f"Set a new one with this link; it works once, for {ttl_minutes} "
        f"minutes:\n\n{link}\n\n"
        "If it was not you, ignore this mail: your password stays as it is.\n"
    )
    return Mail(
        to=to,
        subject="Reset your Matrix Runtime password",
        text=text,
        kind="password_reset",
    )
