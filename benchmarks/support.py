"""What every benchmark shares: figures, fresh data directories, sample events."""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import eventlog.vocabulary  # noqa: F401  (registers the event types)
from eventlog import LmdbStorage, NewEvent
from eventlog.schemas import new_event
from eventlog.vocabulary.jobs import JobStep

_STEP = JobStep(
    step="tools/call",
    status="running",
    message="calling get_current_time on the time server",
    data={
        "tool": "get_current_time",
        "arguments": {"timezone": "Europe/Amsterdam"},
        "attempt": 1,
        "elapsed_ms": 12.5,
        "note": "first call of the session",
    },
)


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured number with its unit.

    ``higher_is_better`` decides which round is the best one.
    """

    name: str
    value: float
    unit: str
    higher_is_better: bool = True


@dataclass(frozen=True, slots=True)
class Summary:
    """The rounds of one figure: the best and the median."""

    name: str
    unit: str
    best: float
    median: float
    rounds: int


def summarise(rounds: Sequence[Sequence[Figure]]) -> list[Summary]:
    """Merge the figures of several rounds by name, keeping first-seen order."""
    values: dict[str, list[Figure]] = {}
    for figures in rounds:
        for figure in figures:
            values.setdefault(figure.name, []).append(figure)
    out: list[Summary] = []
    for name, figures in values.items():
        numbers = [f.value for f in figures]
        best = max(numbers) if figures[0].higher_is_better else min(numbers)
        out.append(
            Summary(
                name, figures[0].unit, best, statistics.median(numbers), len(numbers)
            )
        )
    return out


def sample_event(workspace: str = "ws-0123456789abcdef") -> NewEvent:
    """A realistic ``job.step`` event: about 200 bytes of payload, fresh id."""
    return new_event(_STEP, actor="runtime", workspace=workspace)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


def bench_root() -> Path:
    """Where fresh data directories go; ``MATRIX_BENCH_DIR`` overrides."""
    return Path(os.environ.get("MATRIX_BENCH_DIR") or tempfile.gettempdir())


@contextlib.contextmanager
def fresh_data_dir() -> Iterator[Path]:
    """A new, empty directory for one log, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="matrix-bench-", dir=bench_root()) as d:
        yield Path(d)


@contextlib.contextmanager
def open_storage(path: Path) -> Iterator[LmdbStorage]:
    """Open the log in ``path`` with production settings, closing it afterwards."""
    storage = LmdbStorage(path)
    try:
        yield storage
    finally:
        storage.close()


def commits_so_far(storage: LmdbStorage) -> int:
    """LMDB's last transaction id: one per committed write transaction."""
    env = storage._env  # a benchmark may look inside
    return int(env.info()["last_txnid"])
