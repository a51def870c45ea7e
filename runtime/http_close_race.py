"""Keep a client that hangs up mid-request from stopping the whole server.

Hypercorn's trio connection sends every chunk under a lock, but closes the
connection's sending side without it, and trio's ``send_eof`` holds the
stream's send guard across a checkpoint. When a client cuts a request short
(a large body announced, part sent, then the socket closed), the response
to the request and the close can meet: the send fails with
``trio.BusyResourceError``, which Hypercorn does not expect, and the error
leaves the connection's task and ends the listener's nursery, taking every
other connection with it. A send that meets a close in progress has nowhere
to go anyway, so it is handled the way Hypercorn handles a send to a peer
that is gone: the connection is treated as closed.
"""

from __future__ import annotations

from typing import Any

import trio
from hypercorn.events import Closed, Event
from hypercorn.trio.tcp_server import TCPServer

_PATCHED = "_matrix_runtime_close_race"


def tolerate_send_during_close() -> None:
    """Make Hypercorn's trio connections survive a send that meets a close."""
    if getattr(TCPServer, _PATCHED, False):
        return
    send_unguarded = TCPServer.protocol_send

    async def protocol_send(self: Any, event: Event) -> None:
        try:
            await send_unguarded(self, event)
        except trio.BusyResourceError:
            await self.protocol.handle(Closed())

    TCPServer.protocol_send = protocol_send  # type: ignore[method-assign]
    setattr(TCPServer, _PATCHED, True)
