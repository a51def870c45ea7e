"""What MCP jobs need from the runtime: policy, places on disk, limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runtime.command_policy import CommandPolicy
from runtime.config import DEFAULT_MAX_OUTPUT_BYTES
from runtime.mcp import McpClientConfig
from runtime.sandbox import NETWORK_NONE, SandboxLimits


@dataclass(frozen=True, slots=True)
class McpEnvironment:
    """Shared, immutable settings for every MCP server a job starts."""

    policy: CommandPolicy
    sandboxes_dir: Path
    """Each job gets a private working directory ``<sandboxes_dir>/<job_id>``."""
    cache_dir: Path | None
    """A package cache shared by sandboxes, so ``npx -y`` downloads once."""
    limits: SandboxLimits
    client: McpClientConfig
    isolation: str
    """``bubblewrap`` or ``process-group``, decided once at start-up."""
    hidden_dirs: tuple[Path, ...] = ()
    """Directories a bubblewrap sandbox must not see (the data directory)."""
    search_path: str | None = None
    """Where bare program names are looked up; the runtime's PATH if None."""
    network: str = NETWORK_NONE
    """``none`` or ``host``, as in force: process-group isolation is ``host``."""
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    """What a job may record of its server's stderr, noise and notifications."""
