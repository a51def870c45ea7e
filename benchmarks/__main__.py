"""Run the benchmarks and print one figure per line.

Usage: ``python -m benchmarks [--rounds N] [--seconds S] [--only NAME ...]``.

Each figure is measured ``--rounds`` times; the line shows the best round
and, after it, the median, because the machine is shared and single rounds
are noisy. Data directories are fresh temporary directories under
``MATRIX_BENCH_DIR`` (default: the system temporary directory).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence

from benchmarks.append import measure_appends
from benchmarks.floors import measure_floors
from benchmarks.raw_lmdb import raw_figures
from benchmarks.sandbox_latency import measure_sandbox_latency
from benchmarks.scan import filled_log, measure_read_log, measure_scan
from benchmarks.support import Figure, Summary, bench_root, summarise
from benchmarks.tail_latency import measure_tail_latency
from benchmarks.tool_calls import measure_tool_calls
from eventlog.log import CATCH_UP_PAGE

PRODUCERS = (1, 64, 512)
# The append rates the log is asked for, by number of producers.
APPEND_TARGETS = {64: 50_000.0, 512: 100_000.0}
SUBSCRIBERS = (1, 100)
TAIL_EVENTS = 2000
SCAN_EVENTS = 1_000_000
SCAN_PAGES = (512, 4096)
BENCHMARKS = ("append", "tail", "scan", "sandbox", "tool_calls")
NAME_WIDTH = 50


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the chosen benchmarks, print their figures."""
    args = _parser().parse_args(argv)
    only = set(args.only or BENCHMARKS)
    runners: dict[str, Callable[[argparse.Namespace], list[list[Figure]]]] = {
        "append": _appends,
        "tail": _tail,
        "scan": _scan,
        # One round each: their figures are already medians and percentiles
        # over many samples, and a round takes minutes.
        "sandbox": lambda _: [measure_sandbox_latency()],
        "tool_calls": lambda _: [measure_tool_calls()],
    }
    _print_header(args)
    started = time.perf_counter()
    for name in BENCHMARKS:
        if name in only:
            begun = time.perf_counter()
            _print_summaries(summarise(runners[name](args)))
            print(f"# {name} {time.perf_counter() - begun:.0f} s", flush=True)
    print(f"# total {time.perf_counter() - started:.0f} s", flush=True)
    return 0


def _appends(args: argparse.Namespace) -> list[list[Figure]]:
    rounds: list[list[Figure]] = []
    for _ in range(args.rounds):
        figures: list[Figure] = []
        for producers in PRODUCERS:
            run = measure_appends(producers, args.seconds)
            raw, layout = raw_figures(
                f"append.durable.producers_{producers}",
                run.events,
                run.batch_size,
                run.record_size,
                producers,
            )
            figures += run.figures()
            figures += [raw, layout]
            for limit in (raw, layout):
                figures.append(
                    Figure(f"{limit.name}.ratio", run.rate / limit.value, "of it")
                )
            target = APPEND_TARGETS.get(producers)
            if target is not None:
                figures += measure_floors(producers, run.record_size, target)
        rounds.append(figures)
    return rounds


def _tail(args: argparse.Namespace) -> list[list[Figure]]:
    return [
        [
            figure
            for subscribers in SUBSCRIBERS
            for figure in measure_tail_latency(subscribers, TAIL_EVENTS)
        ]
        for _ in range(args.rounds)
    ]


def _scan(args: argparse.Namespace) -> list[list[Figure]]:
    rounds: list[list[Figure]] = []
    with filled_log(args.scan_events) as (path, write_rate):
        for index in range(args.rounds):
            figures = []
            if index == 0:
                figures.append(Figure("scan.fill.append_1000", write_rate, "events/s"))
            for page in SCAN_PAGES:
                _, rate = measure_scan(path, page)
                figures.append(Figure(f"scan.tail.page_{page}", rate, "events/s"))
            _, rate = measure_scan(path, CATCH_UP_PAGE, checked=True)
            figures.append(
                Figure(f"scan.tail_checked.page_{CATCH_UP_PAGE}", rate, "events/s")
            )
            _, rate = measure_read_log(path, CATCH_UP_PAGE)
            figures.append(
                Figure(f"scan.read_log.page_{CATCH_UP_PAGE}", rate, "events/s")
            )
            rounds.append(figures)
    return rounds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure")
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="duration of each append case"
    )
    parser.add_argument(
        "--scan-events", type=int, default=SCAN_EVENTS, help="events to scan"
    )
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, help="run these")
    return parser


def _print_header(args: argparse.Namespace) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"# python {platform.python_version()}, {os.cpu_count()} cpus, "
        f"load {load}, data under {bench_root()}, {args.rounds} rounds: "
        "best, then median",
        flush=True,
    )


def _print_summaries(summaries: list[Summary]) -> None:
    width = max(NAME_WIDTH, *(len(s.name) + 2 for s in summaries))
    for s in summaries:
        print(
            f"{s.name:<{width}}{_number(s.best):>12} {s.unit:<14}"
            f"(median {_number(s.median)}, {s.rounds} rounds)",
            flush=True,
        )


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
