"""Builders shared by the job actor tests."""

from __future__ import annotations

import time

from actors.job_actor import JobSpec


def job_spec(job_id: str) -> JobSpec:
    """A ``test.job`` with a minute to live, in workspace ``ws_test``."""
    return JobSpec(
        job_id=job_id,
        type="test.job",
        payload=None,
        ttl_seconds=60,
        expires_at_ns=time.time_ns() + 60 * 1_000_000_000,
        workspace="ws_test",
    )
