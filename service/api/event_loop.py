"""The event loop the service runs on (uvicorn's ``loop`` setting): asyncio's own, accepting a few connections at a
time.

asyncio's loop, not uvloop: with single classifications computed on the loop, uvloop answered some connections far
later than others once the loop was saturated (c=64: p99 0.75-0.82 s against 51-57 ms with asyncio's loop, at a
throughput within 5 %; the raw-ASGI reference showed the same, 327 against 22 ms).

At most ACCEPTS_PER_WAKE connections each time the listening socket is readable, not asyncio's 100: with
``WEB_CONCURRENCY=2`` the workers share the socket, and whichever woke first took a whole burst of new connections
and the other none (two workers then served 0.88-0.98x one worker, in 4 rounds of 6). Measured with wrk opening 16
connections at once: one per wake balanced the workers (1.67-1.78x one worker) but made a burst of 64 wait for
64 loop turns (c=64 p99 271 ms); 4 balanced them (1.66-1.80x) with c=64 p99 40 ms; 8 and 16 let one worker take
wrk's bursts again (0.9-1.0x).

That still left it to chance which worker woke first, and the connections stay with the worker that took them
(keep-alive): in 1 round of 10 one worker took all 16 (two workers 1,752 req/s, one worker's rate) and other rounds
split them unevenly (2,617-3,336 req/s). So a worker also waits ``accept_delay`` before it accepts, 0.1 ms per
connection it has open (at most 2 ms): the worker with fewer connections takes the next ones. In 22 rounds after
that, two workers served 3,085-3,872 req/s, none collapsed.
"""

from __future__ import annotations

import asyncio
import socket
from asyncio.constants import SSL_HANDSHAKE_TIMEOUT, SSL_SHUTDOWN_TIMEOUT
from typing import Any

from service.api.http_protocol import BoundedHttpToolsProtocol

EVENT_LOOP = "service.api.event_loop:FewAcceptsLoop"
ACCEPTS_PER_WAKE = 4
ACCEPT_DELAY_PER_CONNECTION = 0.0001  # seconds a worker waits before accepting, per connection it already has open
MAX_ACCEPT_DELAY = 0.002


def accept_delay(open_connections: int) -> float:
    """How long a worker with ``open_connections`` waits before it accepts: the one with fewer connections gets the
    next ones first, and none waits longer than MAX_ACCEPT_DELAY (a busy or stuck other worker takes none away)."""
    return min(open_connections * ACCEPT_DELAY_PER_CONNECTION, MAX_ACCEPT_DELAY)


class FewAcceptsLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop, accepting at most ACCEPTS_PER_WAKE connections each time the listening socket is
    readable (the rest wait in the kernel for the next turn of this loop, or another worker's), after waiting
    ``accept_delay`` of the connections this process has open."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # listening sockets whose current readiness has had its wait (when another worker takes those connections
        # meanwhile, this socket's next readiness skips its wait once: no harm, the wait only orders the workers)
        self._waited: set[int] = set()

    def _accept_connection(
        self,
        protocol_factory: Any,
        sock: socket.socket,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        ssl_handshake_timeout: float = SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: float = SSL_SHUTDOWN_TIMEOUT,
    ) -> None:
        """asyncio's own, taking ACCEPTS_PER_WAKE connections where it would take ``backlog``, after the wait."""
        serving = (protocol_factory, sock, sslcontext, server, backlog, ssl_handshake_timeout, ssl_shutdown_timeout)
        fd = sock.fileno()
        delay = accept_delay(BoundedHttpToolsProtocol.open_connections)
        if delay and fd not in self._waited:
            # stop watching the socket for the wait, as asyncio itself does when accept() runs out of descriptors
            self._waited.add(fd)
            self._remove_reader(fd)
            self.call_later(delay, self._serve_again, fd, serving)
            return
        self._waited.discard(fd)
        super()._accept_connection(
            protocol_factory, sock, sslcontext, server, ACCEPTS_PER_WAKE, ssl_handshake_timeout, ssl_shutdown_timeout
        )

    def _serve_again(self, fd: int, serving: tuple) -> None:
        """Watch the listening socket again after the wait (``serving``: ``_start_serving``'s arguments), unless the
        server closed it meanwhile."""
        sock, server = serving[1], serving[3]
        if sock.fileno() == -1 or (server is not None and not server.is_serving()):
            self._waited.discard(fd)
            return
        self._start_serving(*serving)
