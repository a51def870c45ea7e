"""Making sure the server can listen before anything else starts.

A start that cannot listen must stop before it opens the log: otherwise it
would record a start, recover jobs and restart queued ones, only to cancel
them all again when the HTTP server fails a moment later.
"""

from __future__ import annotations

import socket
from typing import Final, TypeVar

UNRESOLVABLE: Final = "cannot resolve the host name"

E = TypeVar("E", bound=BaseException)


class ListenError(Exception):
    """The server cannot listen on its configured address; the text says why."""


def listen_address(host: str, port: int) -> str:
    """``host:port`` as written in messages and binds, IPv6 in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_listen_address(host: str, port: int) -> None:
    """Resolve ``host`` and bind a socket to it and ``port``, then let it go.

    The socket is made the way the HTTP server makes its own (same address
    family rule, ``SO_REUSEADDR``), so a port left in TIME_WAIT by a previous
    run passes here exactly as it would pass there.

    Raises:
        ListenError: the host does not resolve, or the bind failed (port in
            use, address not on this machine, port reserved).
    """
    where = listen_address(host, port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        found = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        # UnicodeError: a name that cannot be encoded for DNS at all.
        raise ListenError(f"cannot listen on {where}: {UNRESOLVABLE}") from None
    address = found[0][4]
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise listen_error(host, port, exc) from None


def listen_error(host: str, port: int, error: OSError) -> ListenError:
    """The :class:`ListenError` for an ``OSError`` raised while binding."""
    reason = error.strerror or str(error) or type(error).__name__
    return ListenError(f"cannot listen on {listen_address(host, port)}: {reason}")


def first_error(error: BaseException, kind: type[E]) -> E | None:
    """The first exception of type ``kind`` in ``error`` or the groups it nests.

    For failures that take everything else down with them: when the log is
    damaged, several readers meet it at once, and each of their errors says
    the same thing.
    """
    if isinstance(error, kind):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = first_error(inner, kind)
            if found is not None:
                return found
    return None


def sole_error(error: BaseException, kind: type[E]) -> E | None:
    """``error`` itself, or the one exception an exception group holds.

    Trio wraps whatever leaves a nursery in an exception group, once per
    nursery it crosses. This finds the one failure inside, and only when
    it is of type ``kind`` and nothing else failed beside it.
    """
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error if isinstance(error, kind) else None
