"""Runtime settings: embedded defaults, then environment, then flags.

Every value has a working default, so ``matrix-runtime serve`` with nothing
set starts a local server. A value that is set but wrong is a start-up error
naming the variable; nothing falls back silently.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from runtime.whole_number import parse_whole_number

MODES: Final = ("local-dev", "hf-space", "customer-agent", "cloud-worker")
VERSION: Final = "0.1.0"
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8080
DEFAULT_DATA_DIR: Final = "./data"
DEFAULT_MAP_SIZE: Final = 1 << 40
SMTP_SECURITY: Final = ("starttls", "tls", "none")
DEFAULT_SMTP_FROM: Final = "Matrix Runtime <noreply@localhost>"

_RUNTIME_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PROGRAM_NAME = re.compile(r"[A-Za-z0-9._+-]{1,64}")
_DECIMAL = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")


DEFAULT_ALLOWED_PROGRAMS: Final = ("npx", "uvx", "pipx", "python", "python3", "node")
ISOLATION_CHOICES: Final = ("auto", "bubblewrap", "process-group")
NETWORK_CHOICES: Final = ("none", "host")
DEFAULT_MAX_OUTPUT_BYTES: Final = 8 << 20


class ConfigError(Exception):
    """A setting has a value the runtime cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the runtime reads from its environment, validated."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    mode: str = "local-dev"
    runtime_id: str = "rt_local"
    api_token: str = field(default="", repr=False)
    map_size: int = DEFAULT_MAP_SIZE
    max_ttl_seconds: int = 600
    max_concurrent_jobs: int = 2
    log_level: str = "INFO"
    allowed_programs: tuple[str, ...] = DEFAULT_ALLOWED_PROGRAMS
    sandbox_isolation: str = "auto"
    sandbox_network: str = "none"
    mcp_startup_timeout_seconds: float = 45.0
    mcp_call_timeout_seconds: float = 20.0
    mcp_max_message_bytes: int = 64 << 20
    mcp_max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    sse_keepalive_seconds: float = 15.0
    session_ttl_seconds: int = 30 * 24 * 3600
    reset_ttl_seconds: int = 3600
    verify_ttl_seconds: int = 24 * 3600
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    rate_limit_rpm: int = 120
    auth_rate_limit_rpm: int = 10
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    public_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_from: str = DEFAULT_SMTP_FROM
    smtp_timeout_seconds: int = 20
    mail_attempts: int = 5
    signup_open: bool = True
    """Whether anyone who reaches the API may create an account."""
    mail_retry_seconds: float = 2.0

    @property
    def log_dir(self) -> Path:
        """Where the LMDB environment of the event log lives."""
        return self.data_dir / "log"


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    data_dir: str | None = None,
) -> Settings:
    """Build settings from ``environ`` (default: the process environment) and flags.

    Raises:
        ConfigError: a variable or flag holds a value that cannot be used.
    """
    env = os.environ if environ is None else environ
    for name, value in env.items():
        # The same rule for every setting: set but empty is a mistake (an
        # unexpanded variable, say), never a way to ask for the default.
        if name.startswith("MATRIX_RUNTIME_") and not value.strip():
            raise ConfigError(f"{name} is set but empty")
        if name.startswith("MATRIX_RUNTIME_") and not value.isprintable():
            # Control characters, and bytes that are not UTF-8 (which arrive
            # as lone surrogates), have no place in any setting.
            raise ConfigError(f"{name} holds characters that cannot be printed")

    mode = _text(env, "MATRIX_RUNTIME_MODE", "local-dev")
    if mode not in MODES:
        raise ConfigError(
            f"MATRIX_RUNTIME_MODE must be one of {', '.join(MODES)}, not {mode!r}"
        )
    default_jobs = {"local-dev": 2, "hf-space": 1}.get(mode, 5)
    runtime_id = _text(env, "MATRIX_RUNTIME_ID", "rt_" + mode.replace("-", "_"))
    if mode == "local-dev" and "MATRIX_RUNTIME_ID" not in env:
        runtime_id = "rt_local"
    if _RUNTIME_ID.fullmatch(runtime_id) is None:
        raise ConfigError(
            "MATRIX_RUNTIME_ID must be 1 to 64 ASCII letters, digits, '_', '-' "
            f"or '.', not {runtime_id!r}"
        )

    if host is not None and not host.strip():
        raise ConfigError("the host must not be empty")
    resolved_host = host if host is not None else _text(env, "MATRIX_RUNTIME_HOST", "")
    resolved_port = (
        port if port is not None else _int(env, "MATRIX_RUNTIME_PORT", DEFAULT_PORT)
    )
    if not 0 <= resolved_port <= 65535:
        raise ConfigError(f"port must be between 0 and 65535, not {resolved_port}")
    resolved_dir = (
        data_dir
        if data_dir is not None
        else _text(env, "MATRIX_RUNTIME_DATA_DIR", DEFAULT_DATA_DIR)
    )
    if not resolved_dir:
        raise ConfigError("the data directory must not be empty")

    log_level = _text(env, "MATRIX_RUNTIME_LOG_LEVEL", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(
            f"MATRIX_RUNTIME_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, "
            f"not {log_level!r}"
        )

    return Settings(
        host=resolved_host or DEFAULT_HOST,
        port=resolved_port,
        data_dir=Path(resolved_dir),
        mode=mode,
        runtime_id=runtime_id,
        api_token=env.get("MATRIX_RUNTIME_API_TOKEN", ""),
        map_size=_int(
            env, "MATRIX_RUNTIME_MAP_SIZE", DEFAULT_MAP_SIZE, minimum=1 << 20
        ),
        max_ttl_seconds=_int(env, "MATRIX_RUNTIME_MAX_TTL_SECONDS", 600, minimum=1),
        max_concurrent_jobs=_int(
            env, "MATRIX_RUNTIME_MAX_CONCURRENT_JOBS", default_jobs, minimum=1
        ),
        log_level=log_level,
        **_account_settings(env),
        **_sandbox_settings(env),
    )


def _sandbox_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Which programs sandboxes may run, how they are isolated, MCP limits."""
    programs = tuple(
        p.strip()
        for p in _text(
            env, "MATRIX_RUNTIME_ALLOWED_PROGRAMS", ",".join(DEFAULT_ALLOWED_PROGRAMS)
        ).split(",")
    )
    for program in programs:
        if "/" in program or program.startswith("."):
            raise ConfigError(
                "MATRIX_RUNTIME_ALLOWED_PROGRAMS must name programs, not paths: "
                f"{program!r}"
            )
        if _PROGRAM_NAME.fullmatch(program) is None:
            raise ConfigError(
                "MATRIX_RUNTIME_ALLOWED_PROGRAMS must be program names (ASCII "
                f"letters, digits, '.', '_', '+', '-') separated by commas, and "
                f"{program!r} is not one"
            )
    isolation = _text(env, "MATRIX_RUNTIME_SANDBOX", "auto")
    if isolation not in ISOLATION_CHOICES:
        raise ConfigError(
            f"MATRIX_RUNTIME_SANDBOX must be one of {', '.join(ISOLATION_CHOICES)}, "
            f"not {isolation!r}"
        )
    network = _text(env, "MATRIX_RUNTIME_SANDBOX_NETWORK", "none")
    if network not in NETWORK_CHOICES:
        raise ConfigError(
            "MATRIX_RUNTIME_SANDBOX_NETWORK must be one of "
            f"{', '.join(NETWORK_CHOICES)}, not {network!r}"
        )
    return {
        "allowed_programs": programs,
        "sandbox_isolation": isolation,
        "sandbox_network": network,
        "mcp_startup_timeout_seconds": _seconds(
            env, "MATRIX_RUNTIME_MCP_STARTUP_TIMEOUT_SECONDS", 45.0
        ),
        "mcp_call_timeout_seconds": _seconds(
            env, "MATRIX_RUNTIME_MCP_CALL_TIMEOUT_SECONDS", 20.0
        ),
        "mcp_max_message_bytes": _int(
            env, "MATRIX_RUNTIME_MCP_MAX_MESSAGE_BYTES", 64 << 20, minimum=1024
        ),
        "mcp_max_output_bytes": _int(
            env,
            "MATRIX_RUNTIME_MCP_MAX_OUTPUT_BYTES",
            DEFAULT_MAX_OUTPUT_BYTES,
            minimum=1024,
        ),
        "sse_keepalive_seconds": _seconds(
            env, "MATRIX_RUNTIME_SSE_KEEPALIVE_SECONDS", 15.0
        ),
    }


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    # float() would also take other scripts' digits, underscores and "inf".
    text = raw.strip()
    value = float(text) if _DECIMAL.fullmatch(text) else -1.0
    if not 0 < value <= 86400:
        raise ConfigError(
            f"{name} must be a number of seconds above 0 and at most 86400, not {raw!r}"
        )
    return value


def _account_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Sessions, password hashing, rate limits and outgoing mail."""
    api_token = env.get("MATRIX_RUNTIME_API_TOKEN", "")
    if api_token and not all("!" <= ch <= "~" for ch in api_token):
        # Header values arrive as Latin-1, so a token with other characters
        # or blanks could never be presented: refuse it at start-up.
        raise ConfigError(
            "MATRIX_RUNTIME_API_TOKEN must be printable ASCII without spaces"
        )
    security = _text(env, "MATRIX_RUNTIME_SMTP_SECURITY", "starttls").lower()
    if security not in SMTP_SECURITY:
        raise ConfigError(
            "MATRIX_RUNTIME_SMTP_SECURITY must be starttls, tls or none, "
            f"not {security!r}"
        )
    username = env.get("MATRIX_RUNTIME_SMTP_USERNAME", "")
    password = env.get("MATRIX_RUNTIME_SMTP_PASSWORD", "")
    if bool(username) != bool(password):
        raise ConfigError(
            "MATRIX_RUNTIME_SMTP_USERNAME and MATRIX_RUNTIME_SMTP_PASSWORD "
            "must be set together"
        )
    parallelism = _int(env, "MATRIX_RUNTIME_ARGON2_PARALLELISM", 4, minimum=1)
    return {
        "session_ttl_seconds": _int(
            env, "MATRIX_RUNTIME_SESSION_TTL_SECONDS", 30 * 24 * 3600, minimum=60
        ),
        "reset_ttl_seconds": _int(
            env, "MATRIX_RUNTIME_RESET_TTL_SECONDS", 3600, minimum=60
        ),
        "verify_ttl_seconds": _int(
            env, "MATRIX_RUNTIME_VERIFY_TTL_SECONDS", 24 * 3600, minimum=60
        ),
        "argon2_time_cost": _int(env, "MATRIX_RUNTIME_ARGON2_TIME_COST", 3, minimum=1),
        "argon2_memory_kib": _int(
            env, "MATRIX_RUNTIME_ARGON2_MEMORY_KIB", 65536, minimum=8 * parallelism
        ),
        "argon2_parallelism": parallelism,
        "rate_limit_rpm": _int(env, "MATRIX_RUNTIME_RATE_LIMIT_RPM", 120),
        "auth_rate_limit_rpm": _int(env, "MATRIX_RUNTIME_AUTH_RATE_LIMIT_RPM", 10),
        "trusted_proxies": _networks(env, "MATRIX_RUNTIME_TRUSTED_PROXIES"),
        "public_url": _url(env, "MATRIX_RUNTIME_PUBLIC_URL"),
        "smtp_host": env.get("MATRIX_RUNTIME_SMTP_HOST", "").strip(),
        "smtp_port": _int(
            env,
            "MATRIX_RUNTIME_SMTP_PORT",
            465 if security == "tls" else 587,
            minimum=1,
        ),
        "smtp_security": security,
        "smtp_username": username,
        "smtp_password": password,
        "smtp_from": _text(env, "MATRIX_RUNTIME_SMTP_FROM", DEFAULT_SMTP_FROM),
        "smtp_timeout_seconds": _int(
            env, "MATRIX_RUNTIME_SMTP_TIMEOUT_SECONDS", 20, minimum=1
        ),
        "mail_attempts": _int(env, "MATRIX_RUNTIME_MAIL_ATTEMPTS", 5, minimum=1),
        "mail_retry_seconds": _seconds(env, "MATRIX_RUNTIME_MAIL_RETRY_SECONDS", 2.0),
        "signup_open": _signup_open(env),
    }


def _signup_open(env: Mapping[str, str]) -> bool:
    signup = _text(env, "MATRIX_RUNTIME_SIGNUP", "open").lower()
    if signup not in ("open", "closed"):
        raise ConfigError(
            f"MATRIX_RUNTIME_SIGNUP must be open or closed, not {signup!r}"
        )
    return signup == "open"


def _networks(
    env: Mapping[str, str], name: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in env.get(name, "").split(","):
        if not item.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"{name} must list IP addresses or networks separated by commas, "
                f"and {item.strip()!r} is neither"
            ) from None
    return tuple(networks)


def _url(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http or https URL, not {value!r}")
    return value.rstrip("/")


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    # Set but empty never reaches here: load_settings refuses it first.
    value = env.get(name)
    return default if value is None else value.strip()


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    value = parse_whole_number(raw.strip())
    if value is None:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value
