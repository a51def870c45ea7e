"""Read models folded from the event log, kept current by runners.

A projection is a pure fold (:class:`Projection`); a
:class:`ProjectionRunner` keeps one current and snapshots it in a
:class:`SnapshotStore`; :func:`fold_until` answers what it looked like at
any earlier position.
"""

from projections.base import Projection, apply_event
from projections.errors import (
    PositionOutOfRangeError,
    ProjectionError,
    ProjectionLagError,
    SnapshotStoreError,
)
from projections.runner import ProjectionRunner, fold_until
from projections.snapshots import SNAPSHOT_DIR, Snapshot, SnapshotStore

__all__ = [
    "SNAPSHOT_DIR",
    "PositionOutOfRangeError",
    "Projection",
    "ProjectionError",
    "ProjectionLagError",
    "ProjectionRunner",
    "Snapshot",
    "SnapshotStore",
    "SnapshotStoreError",
    "apply_event",
    "fold_until",
]
