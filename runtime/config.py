"""Runtime settings: embedded defaults, then environment, then flags.

Every value has a working default, so ``matrix-runtime serve`` with nothing
set starts a local server. A value that is set but wrong is a start-up error
naming the variable; nothing falls back silently.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MODES: Final = ("local-dev", "hf-space", "customer-agent", "cloud-worker")
VERSION: Final = "0.1.0"
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8080
DEFAULT_DATA_DIR: Final = "./data"
DEFAULT_MAP_SIZE: Final = 1 << 40


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
    api_token: str = ""
    map_size: int = DEFAULT_MAP_SIZE
    max_ttl_seconds: int = 600
    max_concurrent_jobs: int = 2
    log_level: str = "INFO"

    @property
    def log_dir(self) -> Path:
        """Where the LMDB environment of the event log lives."""
        return self.data_dir / "log"

    def with_overrides(self, **values: object) -> Settings:
        """A copy with the given fields replaced."""
        return dataclasses.replace(self, **values)  # type: ignore[arg-type]


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

    mode = _text(env, "MATRIX_RUNTIME_MODE", "local-dev")
    if mode not in MODES:
        raise ConfigError(
            f"MATRIX_RUNTIME_MODE must be one of {', '.join(MODES)}, not {mode!r}"
        )
    default_jobs = {"local-dev": 2, "hf-space": 1}.get(mode, 5)
    runtime_id = _text(env, "MATRIX_RUNTIME_ID", "rt_" + mode.replace("-", "_"))
    if mode == "local-dev" and "MATRIX_RUNTIME_ID" not in env:
        runtime_id = "rt_local"

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
    )


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name)
    if value is None:
        return default
    value = value.strip()
    if not value:
        raise ConfigError(f"{name} is set but empty")
    return value


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value
