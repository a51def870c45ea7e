"""Recognising well-known kinds of secret by their value.

A variable name such as ``GITHUB_TOKEN`` says a value is secret, but a token
pasted under any other name, or straight into a start command's arguments,
is just as raw. These patterns match the formats credential issuers publish
or use (prefixes, lengths, alphabets), so an ordinary argument does not look
like one. Every event of a job is durable, so a secret caught here never
reaches the log.
"""

from __future__ import annotations

import re
from typing import Final

SECRET_PATTERNS: Final[dict[str, re.Pattern[str]]] = {
    "github": re.compile(
        r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"
    ),
    "slack": re.compile(r"(?<![A-Za-z0-9])xox[abprs]-[A-Za-z0-9-]{10,}"),
    "aws-access-key-id": re.compile(
        r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"
    ),
    "pem-private-key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
    "jwt": re.compile(
        r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"
    ),
    # OpenAI (sk-..., sk-proj-...) and Anthropic (sk-ant-api03-...) keys are
    # far longer than 32 characters after the prefix.
    "sk-api-key": re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{32,}"),
    "google-api-key": re.compile(
        r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"
    ),
}


def secret_kind(value: str) -> str | None:
    """The kind of well-known secret found anywhere in ``value``, if any.

    Args:
        value: An environment value or a command-line argument.

    Returns:
        A key of :data:`SECRET_PATTERNS` (``"github"``, ``"jwt"``, ...), or
        ``None`` when nothing in the value looks like a known secret.
    """
    for kind, pattern in SECRET_PATTERNS.items():
        if pattern.search(value):
            return kind
    return None
