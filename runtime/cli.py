"""The ``matrix-runtime`` command: serve, verify, events."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import msgspec
import trio

from eventlog import EventLog, EventLogError, LmdbStorage
from eventlog.envelope import RecordedEvent
from eventlog.schemas import payload_for_display
from runtime.config import ConfigError, Settings, load_settings
from runtime.isolated_reader import run_reader
from runtime.listen import ListenError, first_error, sole_error
from runtime.replay import (
    ReplayTargetNotFoundError,
    find_job_id,
    read_job_events,
    transcript,
)
from runtime.whole_number import parse_whole_number

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if not all(_is_utf8(argument) for argument in arguments):
        # Bytes that are not UTF-8 arrive as lone surrogates, which no path,
        # log line or event can hold: refuse them before anything is made.
        print("matrix-runtime: arguments must be valid UTF-8", file=sys.stderr)
        return EXIT_USAGE
    parser = _parser()
    args = parser.parse_args(arguments)
    try:
        settings = load_settings(
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            data_dir=args.data_dir,
        )
    except ConfigError as exc:
        print(f"matrix-runtime: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        result: int = args.command(settings, args)
    except EventLogError as exc:
        print(f"matrix-runtime: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    return result


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="matrix-runtime",
        description="Self-hostable execution plane for AI tooling.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=_whole_number, help="port to listen on (default 8080)"
    )
    _add_data_dir(serve)
    serve.set_defaults(command=_serve)

    check = commands.add_parser("verify", help="check the log's hash chain and indexes")
    _add_data_dir(check)
    check.set_defaults(command=_verify)

    events = commands.add_parser("events", help="print events as JSON lines")
    _add_data_dir(events)
    events.add_argument("--stream", help="only this stream")
    events.add_argument(
        "--after",
        type=_whole_number,
        default=0,
        help="only events after this global position",
    )
    events.add_argument(
        "--follow", action="store_true", help="keep printing new events as they come"
    )
    events.set_defaults(command=_events)

    replay = commands.add_parser(
        "replay", help="print a job or sandbox session as a transcript"
    )
    replay.add_argument("target", help="a job id (job_...) or session id (sbx_...)")
    _add_data_dir(replay)
    replay.set_defaults(command=_replay)
    return parser


def _whole_number(text: str) -> int:
    value = parse_whole_number(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}")
    return value


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (default ./data)")


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from runtime.server import serve

    try:
        trio.run(serve, settings)
    except BaseException as exc:
        # A listen address that cannot be used, or a log that cannot be read
        # (damaged, full, held by another writer), ends the server with one
        # line; anything else is a fault of ours and keeps its traceback.
        failed = sole_error(exc, ListenError) or first_error(exc, EventLogError)
        if failed is None:
            raise
        print(f"matrix-runtime: {failed}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from runtime.verify_command import run_verify

    return run_verify(settings.log_dir)


def _events(settings: Settings, args: argparse.Namespace) -> int:
    if args.after < 0:
        print("matrix-runtime: --after must be 0 or more", file=sys.stderr)
        return EXIT_USAGE
    return run_reader(settings.log_dir, lambda: _print_log(settings, args))


def _print_log(settings: Settings, args: argparse.Namespace) -> int:
    storage = LmdbStorage(settings.log_dir, readonly=True)
    head, _ = storage.head()
    if args.after > head:
        storage.close()
        print(
            f"matrix-runtime: --after {args.after} is past the log's head {head}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        trio.run(_print_events, EventLog(storage), args.stream, args.after, args.follow)
    except BrokenPipeError:
        _discard_stdout()
    finally:
        storage.close()
    return EXIT_OK


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    return run_reader(settings.log_dir, lambda: _print_transcript(settings, args))


def _print_transcript(settings: Settings, args: argparse.Namespace) -> int:
    storage = LmdbStorage(settings.log_dir, readonly=True)
    try:
        lines = trio.run(_transcript, EventLog(storage), args.target)
    except ReplayTargetNotFoundError as exc:
        print(f"matrix-runtime: {exc.args[0]}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        storage.close()
    try:
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (``| head``): not an error of ours.
        _discard_stdout()
    return EXIT_OK


def _discard_stdout() -> None:
    """Point stdout at /dev/null after its reader went away.

    What is still buffered would otherwise fail again when the interpreter
    flushes stdout at exit, and print a second complaint on stderr.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


async def _transcript(event_log: EventLog, target: str) -> list[str]:
    job_id = await find_job_id(event_log, target)
    events = await read_job_events(event_log, job_id)
    # A transcript is evidence: every event in it is checked against its hash.
    await event_log.check_intact([event.position for event in events])
    return list(transcript(events))


async def _print_events(
    event_log: EventLog, stream: str | None, after: int, follow: bool
) -> None:
    out = sys.stdout
    if not follow and event_log.head <= after:
        return
    # Checked against the chain: what is printed is what was written.
    async for batch in event_log.tail(after, checked=True):
        for event in batch:
            if stream is None or event.stream == stream:
                out.write(event_json(event) + "\n")
        out.flush()
        if not follow and batch[-1].position >= event_log.head:
            return


def event_json(event: RecordedEvent) -> str:
    """One event as a JSON line: position, stream, version, type, time, data.

    An event whose payload does not decode (written so, since it still matches
    its hash) has ``data`` null and says why in ``data_error``.
    """
    line: dict[str, Any] = {
        "position": event.position,
        "stream": event.stream,
        "version": event.version,
        "type": event.type,
        "time": _rfc3339(event.recorded_at_ns),
    }
    try:
        line["data"] = payload_for_display(event)
    except msgspec.DecodeError as exc:
        line["data"] = None
        line["data_error"] = f"the payload does not decode: {exc}"
    return msgspec.json.encode(line).decode()


def _rfc3339(ns: int) -> str:
    # Integer arithmetic: ``ns / 1e9`` as a float is only good to about a
    # quarter of a microsecond today, so rounding it could print a later time.
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{rest // 1000:06d}Z"
