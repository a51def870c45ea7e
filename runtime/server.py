"""The composition root: open the log, wire the services, serve HTTP."""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as serve_http

from api.app import create_app
from api.context import ApiContext
from eventlog import EventLog, LmdbStorage
from eventlog.schemas import new_event
from eventlog.vocabulary.system import SYSTEM_STREAM, RuntimeStarted, RuntimeStopped
from runtime.config import VERSION, Settings

log = logging.getLogger(__name__)


async def serve(
    settings: Settings,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the runtime until SIGINT or SIGTERM, then shut down cleanly.

    Raises:
        eventlog.DataDirectoryError: the data directory cannot be used.
    """
    storage = LmdbStorage(settings.log_dir, map_size=settings.map_size)
    try:
        await _run(settings, storage, task_status)
    finally:
        storage.close()


async def _run(
    settings: Settings,
    storage: LmdbStorage,
    task_status: trio.TaskStatus[list[str]],
) -> None:
    event_log = EventLog(storage)
    app = create_app(ApiContext(settings=settings, log=event_log))
    config = _hypercorn_config(settings)
    shutdown = _Shutdown()

    async with trio.open_nursery() as writer_nursery:
        await writer_nursery.start(event_log.run)
        await event_log.append(
            SYSTEM_STREAM,
            [
                new_event(
                    RuntimeStarted(
                        runtime_id=settings.runtime_id, version=VERSION, pid=os.getpid()
                    )
                )
            ],
        )

        async with trio.open_nursery() as service_nursery:
            service_nursery.start_soon(_wait_for_signal, shutdown)
            binds = await service_nursery.start(
                lambda task_status: serve_http(
                    app,
                    config,
                    shutdown_trigger=shutdown.requested.wait,
                    task_status=task_status,
                )
            )
            log.info("serving binds=%s data_dir=%s", ",".join(binds), settings.data_dir)
            task_status.started(binds)
            await shutdown.requested.wait()
            # Hypercorn drains its connections on its own once the trigger
            # fires; the signal watcher has returned, so the nursery closes.

        reason = shutdown.reason
        await event_log.append(
            SYSTEM_STREAM,
            [new_event(RuntimeStopped(runtime_id=settings.runtime_id, reason=reason))],
        )
        # Closing lets the writer commit whatever is queued and return, which
        # ends the writer nursery without cancelling a commit in flight.
        event_log.close()
    log.info("stopped reason=%s", reason)


@dataclass(slots=True)
class _Shutdown:
    """Set once, by the first SIGINT or SIGTERM."""

    requested: trio.Event = field(default_factory=trio.Event)
    reason: str = ""


async def _wait_for_signal(shutdown: _Shutdown) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            shutdown.reason = signal.Signals(signum).name
            log.info("shutting down signal=%s", shutdown.reason)
            shutdown.requested.set()
            return


def _hypercorn_config(settings: Settings) -> Config:
    config = Config()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 5.0
    config.workers = 1
    return config
