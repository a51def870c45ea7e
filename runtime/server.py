"""The composition root: open the log, wire the services, serve HTTP."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as serve_http
from quart_trio import QuartTrio

from actors.account_services import AccountServices
from actors.mcp_environment import McpEnvironment
from actors.mcp_jobs import mcp_handlers
from actors.supervisor import JobSupervisor
from api.app import create_app
from api.context import ApiContext
from api.door import is_loopback_address
from eventlog import EventLog, LmdbStorage
from eventlog.schemas import new_event
from eventlog.vocabulary.system import SYSTEM_STREAM, RuntimeStarted, RuntimeStopped
from projections.jobs import JobsProjection
from projections.runner import ProjectionRunner
from projections.snapshots import SNAPSHOT_DIR, SnapshotStore
from runtime.command_policy import CommandPolicy
from runtime.config import VERSION, Settings
from runtime.http_close_race import tolerate_send_during_close
from runtime.listen import (
    check_listen_address,
    listen_address,
    listen_error,
    sole_error,
)
from runtime.mcp import McpClientConfig
from runtime.sandbox import (
    SandboxLimits,
    detect_isolation,
    network_in_force,
)

log = logging.getLogger(__name__)


async def serve(
    settings: Settings,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the runtime until SIGINT or SIGTERM, then shut down cleanly.

    Raises:
        runtime.listen.ListenError: the listen address is unusable; when the
            check before opening the log finds it, nothing was written.
        eventlog.DataDirectoryError: the data directory cannot be used.
    """
    check_listen_address(settings.host, settings.port)
    storage = LmdbStorage(settings.log_dir, map_size=settings.map_size)
    try:
        snapshots = SnapshotStore(settings.data_dir / SNAPSHOT_DIR)
        try:
            await _run(settings, storage, snapshots, task_status)
        finally:
            snapshots.close()
    finally:
        storage.close()


@dataclass(slots=True)
class _Shutdown:
    """Set once, by the first SIGINT or SIGTERM."""

    requested: trio.Event = field(default_factory=trio.Event)
    reason: str = ""


async def _run(
    settings: Settings,
    storage: LmdbStorage,
    snapshots: SnapshotStore,
    task_status: trio.TaskStatus[list[str]],
) -> None:
    event_log = EventLog(storage)
    jobs = ProjectionRunner(event_log, JobsProjection(), snapshots)
    accounts = AccountServices.build(event_log, snapshots, settings)
    mcp = _mcp_environment(settings)
    supervisor = JobSupervisor(
        event_log,
        jobs,
        max_ttl_seconds=settings.max_ttl_seconds,
        max_concurrent_jobs=settings.max_concurrent_jobs,
        policy=mcp.policy,
        sandboxes_dir=mcp.sandboxes_dir,
        call_timeout=settings.mcp_call_timeout_seconds,
    )
    supervisor.register(mcp_handlers(mcp, supervisor.call_on_job))
    app = create_app(
        ApiContext(
            settings=settings,
            log=event_log,
            jobs=jobs,
            supervisor=supervisor,
            accounts=accounts.commands,
            reset_requests=accounts.reset_requests,
            isolation=mcp.isolation,
            network=mcp.network,
            sse_keepalive_seconds=settings.sse_keepalive_seconds,
        )
    )
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

        async with trio.open_nursery() as services:
            await services.start(jobs.run)
            await services.start(accounts.run)
            jobs_scope, jobs_ended = await services.start(_run_jobs, supervisor)

            async def end_jobs_first() -> None:
                await shutdown.requested.wait()
                # Jobs end before HTTP does: each running job records its
                # terminal event, so an open event stream sends it and ends by
                # itself instead of being cut when Hypercorn's graceful
                # timeout runs out.
                jobs_scope.cancel()
                await jobs_ended.wait()

            async with trio.open_nursery() as http:
                http.start_soon(_wait_for_signal, shutdown)
                binds = await _start_http(
                    http, app, settings, shutdown_trigger=end_jobs_first
                )
                log.info(
                    "serving binds=%s data_dir=%s isolation=%s network=%s",
                    ",".join(binds),
                    settings.data_dir,
                    mcp.isolation,
                    mcp.network,
                )
                _warn_if_reachable_without_token(settings)
                # Links in mails point at this server unless a public URL
                # was configured.
                accounts.commands.public_url = accounts.commands.public_url or binds[0]
                task_status.started(binds)
            # Hypercorn has drained its connections and every job has recorded
            # how it ended (shielded appends) while the writer below still
            # runs. What is left are the projections and account services.
            services.cancel_scope.cancel()

        await event_log.append(
            SYSTEM_STREAM,
            [
                new_event(
                    RuntimeStopped(
                        runtime_id=settings.runtime_id, reason=shutdown.reason
                    )
                )
            ],
        )
        # Closing lets the writer commit whatever is queued and return, which
        # ends the writer nursery without cancelling a commit in flight.
        event_log.close()
    log.info("stopped reason=%s", shutdown.reason)


async def _start_http(
    nursery: trio.Nursery,
    app: QuartTrio,
    settings: Settings,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
) -> list[str]:
    """Start Hypercorn in ``nursery``; the addresses it listens on.

    Raises:
        ListenError: Hypercorn could not bind. The address was checked before
            the log was opened, but another process can take the port in
            between; that must still end in a clear message.
    """
    tolerate_send_during_close()
    try:
        binds: list[str] = await nursery.start(
            lambda task_status: serve_http(
                app,
                _hypercorn_config(settings),
                shutdown_trigger=shutdown_trigger,
                task_status=task_status,
            )
        )
    except BaseException as exc:
        failed = sole_error(exc, OSError)
        if failed is None:
            raise
        raise listen_error(settings.host, settings.port, failed) from None
    return binds


async def _run_jobs(
    supervisor: JobSupervisor,
    *,
    task_status: trio.TaskStatus[tuple[trio.CancelScope, trio.Event]],
) -> None:
    """Run the supervisor in a scope of its own, so jobs can end before HTTP.

    Started with that scope and an event set once every job actor is done.
    """
    ended = trio.Event()
    try:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(supervisor.run)
                task_status.started((scope, ended))
    finally:
        ended.set()


def _warn_if_reachable_without_token(settings: Settings) -> None:
    """Say so when local-dev without a token listens beyond loopback."""
    if settings.mode != "local-dev" or settings.api_token:
        return
    if not (is_loopback_address(settings.host) or settings.host == "localhost"):
        log.warning(
            "local-dev without MATRIX_RUNTIME_API_TOKEN listens on %s: clients "
            "on the network get 401 on every route that needs credentials; "
            "only loopback clients are admitted as the local caller",
            settings.host,
        )


def _mcp_environment(settings: Settings) -> McpEnvironment:
    isolation = settings.sandbox_isolation
    if isolation == "auto":
        isolation = detect_isolation()
    network = network_in_force(isolation, settings.sandbox_network)
    if network != settings.sandbox_network:
        # A person must know: the setting asks for something this machine
        # cannot give, and servers can reach this runtime's own API.
        log.warning(
            "sandbox network cannot be restricted isolation=%s requested=%s "
            "in_force=%s: MCP servers share the host's network, including this "
            "runtime's API and every loopback service",
            isolation,
            settings.sandbox_network,
            network,
        )
    return McpEnvironment(
        policy=CommandPolicy(allowed_programs=frozenset(settings.allowed_programs)),
        sandboxes_dir=settings.data_dir / "sandboxes",
        cache_dir=settings.data_dir / "cache",
        limits=SandboxLimits(),
        client=McpClientConfig(
            startup_timeout=settings.mcp_startup_timeout_seconds,
            call_timeout=settings.mcp_call_timeout_seconds,
            max_message_bytes=settings.mcp_max_message_bytes,
        ),
        isolation=isolation,
        hidden_dirs=(settings.data_dir.resolve(),),
        search_path=program_search_path(),
        network=network,
        max_output_bytes=settings.mcp_max_output_bytes,
    )


def program_search_path() -> str:
    """The runtime's own interpreter directory first, then its PATH.

    ``python3 -m some_server`` then runs the interpreter the runtime itself
    runs on, so servers installed next to the runtime (in its virtual
    environment) are found without activating that environment.
    """
    own = str(Path(sys.executable).parent)
    rest = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and d != own]
    return os.pathsep.join([own, *rest])


async def _wait_for_signal(shutdown: _Shutdown) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            shutdown.reason = signal.Signals(signum).name
            log.info("shutting down signal=%s", shutdown.reason)
            shutdown.requested.set()
            return


def _hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.bind = [listen_address(settings.host, settings.port)]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 5.0
    config.workers = 1
    return config
