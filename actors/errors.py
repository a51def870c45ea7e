"""Errors the actors report to the code that commands them.

ActorError
├── JobFailedError        the job ends with status ``error`` and this text
├── InvalidJobError       the request for a job is malformed (bad request)
├── UnprocessableJobError the request is well formed but refused (TTL, policy)
├── UnknownJobError       no such job (or not visible to the caller)
├── SandboxNotReadyError  the sandbox has not finished starting
└── SandboxNotRunningError  the sandbox (or its server) has ended
"""

from __future__ import annotations


class ActorError(Exception):
    """Root of the errors actors raise to their callers."""


class JobFailedError(ActorError):
    """Raised inside a job to end it with status ``error`` and this message."""


class UnknownJobError(ActorError):
    """The job does not exist, or belongs to a workspace the caller cannot see."""


class SandboxNotReadyError(ActorError):
    """The sandbox is still starting; its tools are not known yet."""


class SandboxNotRunningError(ActorError):
    """The sandbox has ended; its server no longer answers."""


def find_job_failure(error: BaseException) -> JobFailedError | None:
    """The first :class:`JobFailedError` inside ``error`` or its exception groups."""
    if isinstance(error, JobFailedError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = find_job_failure(inner)
            if found is not None:
                return found
    return None


class InvalidJobError(ActorError):
    """The request for a job is malformed: unknown type or bad payload."""


class UnprocessableJobError(ActorError):
    """The request is well formed but cannot be accepted (TTL, command policy)."""
