"""What the HTTP layer is given by the composition root."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from eventlog import EventLog
from runtime.config import Settings


@dataclass(slots=True)
class ApiContext:
    """Services and settings the blueprints read from and command."""

    settings: Settings
    log: EventLog
    started_at: float = field(default_factory=time.monotonic)
