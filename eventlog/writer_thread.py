"""The one thread in which every write transaction of the log runs.

LMDB binds a write transaction to the thread that began it, and each commit
blocks on the disk, so the writer hands each commit to a thread. A thread of
its own, fed through a queue and answering through the trio token, costs
about half as much per commit as a trip through ``trio.to_thread``, which
sets up a limiter, a context copy and a thread-cache job every time; with a
commit every millisecond or so that difference is a sizeable part of the
budget of every event. It also means all writes happen on one thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TypeVar

import outcome
from trio.lowlevel import (
    Abort,
    Task,
    TrioToken,
    current_task,
    current_trio_token,
    reschedule,
    wait_task_rescheduled,
)

T = TypeVar("T")

_Job = tuple[Callable[[], object], Task]


class WriterThread:
    """Runs one function at a time on a dedicated thread, for one trio run."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._token: TrioToken | None = None

    def start(self) -> None:
        """Start the thread; call from inside the trio run it answers to."""
        if self._thread is not None:
            raise RuntimeError("the writer thread is already running")
        self._token = current_trio_token()
        # A daemon, so a trio run that dies without stopping it cannot hang
        # the interpreter's exit; an LMDB commit cut off that way is just a
        # crash, which loses nothing acknowledged.
        self._thread = threading.Thread(
            target=self._serve, name=self._name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Let the thread finish its queue and exit, and wait for it."""
        thread = self._thread
        if thread is not None:
            self._jobs.put(None)
            thread.join()
            self._thread = None

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the thread and return (or raise) its outcome.

        Not cancellable: a commit, once handed over, runs to its end, and
        its outcome reaches the caller even while the caller is being
        cancelled, so nobody is ever left guessing whether it happened.
        """
        if self._thread is None:
            raise RuntimeError("the writer thread is not running")
        self._jobs.put((fn, current_task()))
        result: T = await wait_task_rescheduled(_refuse_abort)
        return result

    def _serve(self) -> None:
        token = self._token
        assert token is not None
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, task = job
            # ``capture`` keeps every exception, so the waiting task always
            # gets woken with the outcome, whatever ``fn`` did.
            token.run_sync_soon(reschedule, task, outcome.capture(fn))


def _refuse_abort(_: object) -> Abort:
    return Abort.FAILED
