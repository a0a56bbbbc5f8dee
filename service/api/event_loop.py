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
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

EVENT_LOOP = "service.api.event_loop:FewAcceptsLoop"
ACCEPTS_PER_WAKE = 4


class FewAcceptsLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop, accepting at most ACCEPTS_PER_WAKE connections each time the listening socket is
    readable (the rest wait in the kernel for the next turn of this loop, or another worker's)."""

    def _accept_connection(
        self,
        protocol_factory: Any,
        sock: socket.socket,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """asyncio's own, taking ACCEPTS_PER_WAKE connections where it would take ``backlog``."""
        super()._accept_connection(protocol_factory, sock, sslcontext, server, ACCEPTS_PER_WAKE, *args, **kwargs)
