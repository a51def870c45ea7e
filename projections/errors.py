"""The projections' exception tree.

Callers catch by what they must do next::

    ProjectionError
    ├── ProjectionLagError           the read model has not reached a position
    │                                in time; answer "try again", never stale data
    ├── PositionOutOfRangeError      a time-travel position is not in the log
    └── SnapshotStoreError           the snapshot directory cannot be used
"""

from __future__ import annotations


class ProjectionError(Exception):
    """Root of every error the projections raise."""


class ProjectionLagError(ProjectionError):
    """A projection did not reach a log position within the allowed time."""

    def __init__(self, message: str, *, name: str, wanted: int, reached: int) -> None:
        super().__init__(message)
        self.name = name
        self.wanted = wanted
        self.reached = reached


class PositionOutOfRangeError(ProjectionError, ValueError):
    """A position asked for is negative or past the log's head."""


class SnapshotStoreError(ProjectionError):
    """The snapshot environment cannot be opened or written."""
