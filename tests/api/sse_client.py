"""Reading the server's Server-Sent Events with httpx streaming, frame by frame."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

WAIT = 30.0
"""Upper bound, in seconds, on any wait for a frame or the end of a stream."""
READ_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Frame:
    """One SSE frame: an event (``id`` and ``data``) or a comment."""

    id: int | None
    data: dict[str, Any] | None
    comment: str | None = None

    @property
    def is_event(self) -> bool:
        """Whether the frame carries data (not a comment-only keepalive)."""
        return self.data is not None

    @property
    def step(self) -> str:
        """The ``step`` of an event frame."""
        assert self.data is not None, f"not an event: {self}"
        return str(self.data["step"])


class SseStream:
    """The frames of one open SSE response, read on demand."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.ended = False
        self._lines = response.iter_lines()

    def next_frame(self) -> Frame | None:
        """The next frame, or None once the server ended the stream."""
        event_id: int | None = None
        data: dict[str, Any] | None = None
        comment: str | None = None
        seen = False
        for line in self._lines:
            if line == "":
                if seen:
                    return Frame(event_id, data, comment)
                continue
            seen = True
            if line.startswith(":"):
                comment = line[1:].strip()
            elif line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            else:
                raise AssertionError(f"unexpected SSE line {line!r}")
        self.ended = True
        assert not seen, "the stream ended in the middle of a frame"
        return None

    def frames(self, timeout: float = WAIT) -> Iterator[Frame]:
        """Frames until the stream ends; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next_frame()
            if frame is None:
                return
            yield frame
            assert time.monotonic() < deadline, "the stream did not end in time"

    def events_until(
        self, predicate: Callable[[Frame], bool], timeout: float = WAIT
    ) -> list[Frame]:
        """Event frames up to and including the first one ``predicate`` accepts.

        Keepalive comments are skipped. Fails when the stream ends first or
        ``timeout`` seconds pass.
        """
        events: list[Frame] = []
        for frame in self.frames(timeout):
            if frame.is_event:
                events.append(frame)
                if predicate(frame):
                    return events
        raise AssertionError(f"the stream ended first; events: {events}")

    def until_step(self, step: str, timeout: float = WAIT) -> list[Frame]:
        """Event frames up to and including the first of ``step``."""
        return self.events_until(lambda frame: frame.step == step, timeout)

    def rest(self, timeout: float = WAIT) -> list[Frame]:
        """Every event frame until the stream ends (keepalives skipped)."""
        return [frame for frame in self.frames(timeout) if frame.is_event]


@contextmanager
def open_sse(
    url: str,
    *,
    last_event_id: int | str | None = None,
    params: Mapping[str, str] | None = None,
) -> Iterator[SseStream]:
    """Open an SSE stream; the response must be a 200 event stream."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    timeout = httpx.Timeout(10.0, read=READ_TIMEOUT)
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream("GET", url, headers=headers, params=params) as response,
    ):
        if response.status_code != 200:
            response.read()
            raise AssertionError(f"{response.status_code}: {response.text}")
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SseStream(response)


def read_all_events(url: str, **kwargs: Any) -> list[Frame]:
    """Every event of a stream that ends (a finished job's history)."""
    with open_sse(url, **kwargs) as stream:
        return stream.rest()


def event_ids(frames: list[Frame]) -> list[int]:
    """The ids of event frames, in order; every event must have one."""
    ids = [frame.id for frame in frames]
    assert all(isinstance(i, int) for i in ids), frames
    return [i for i in ids if i is not None]


def strictly_increasing(values: list[int]) -> bool:
    """Whether each value is greater than the one before."""
    return all(a < b for a, b in itertools.pairwise(values))
