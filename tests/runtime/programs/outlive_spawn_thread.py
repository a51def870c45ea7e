"""Checks that a bubblewrap sandbox outlives the thread that forked it.

Run as ``python outlive_spawn_thread.py WORK_DIR`` in a fresh interpreter,
so that trio's worker threads are all its own. trio starts processes from a
cached worker thread that exits when idle; here the idle timeout is cut to
50 ms. Once no worker thread is left, a line sent to the sandboxed echo
program must still come back. Prints what came back, or ``EOF``.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import trio
import trio._core._thread_cache

from runtime.sandbox import SandboxSpec, open_sandboxed_process

ECHO = "import sys\nfor line in sys.stdin:\n    print(line.strip(), flush=True)\n"


async def main(work_dir: Path) -> None:
    trio._core._thread_cache.IDLE_TIMEOUT = 0.05  # type: ignore[assignment]
    spec = SandboxSpec(
        argv=[sys.executable, "-c", ECHO],
        env={},
        work_dir=work_dir,
        isolation="bubblewrap",
    )
    async with open_sandboxed_process(spec) as process:
        # Blocking the loop is fine here: nothing else runs in this script,
        # and the sandboxed process does not depend on it.
        for thread in threading.enumerate():
            if thread.name.startswith("Trio thread"):
                thread.join(timeout=10)
        await process.stdin.send_all(b"still running\n")
        with trio.fail_after(10):
            answer = await process.stdout.receive_some()
    print(answer.decode().strip() or "EOF")


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]))
