"""uvicorn's httptools protocol with the limits it lacks: header size, time to the request head, open connections
and answer bytes waiting to be sent.

- Header size: httptools (llhttp) accepts a request line and headers of any size, and uvicorn buffers them until
  they are complete (a client sending a 128 MB header is read for seconds into memory). The bytes of a request's
  line and headers are counted as they arrive; past ``CONVLENS_MAX_HEADER_BYTES`` the connection gets 431.
- Time to the head: the request line and headers must arrive within ``CONVLENS_HEAD_TIMEOUT_SECONDS`` of the
  connection's accept (or of the first byte of a later request on a kept-alive connection), else 408 and close
  (a connection that never speaks is closed silently). uvicorn's keep-alive timer starts only after a first answer
  and the request timeout only after the headers: without this, 1,030 silent connections held the cap forever.
- Open connections, per process: past ``CONVLENS_MAX_CONNECTIONS`` a new connection first closes the oldest one
  waiting for a request head (idle or still sending it), so the cap never locks a new client out for longer than
  the head timeout; a request that still arrives past the cap is marked in its scope, and admission control answers
  it 503 unless it asks for an open path (health, metrics, the page).
- Answer bytes waiting to be sent: every write goes through ``ChargingTransport``, which counts the bytes the
  transport's buffer holds for this connection into ``pending_answer_bytes`` (all connections of the process).
  While a connection holds bytes, a watchdog checks that the client reads them: no progress for
  ``CONVLENS_SEND_STALL_SECONDS``, or the answer still unsent ``CONVLENS_REQUEST_TIMEOUT_SECONDS`` after its
  request began, aborts the connection and frees its buffer.
"""

from __future__ import annotations

import json
import math
import socket
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.api.settings import get_settings

OVER_CONNECTION_CAP = "convlens.over_connection_cap"
CONNECTION = "convlens.connection"  # the request's BoundedHttpToolsProtocol, in the scope's state
WATCH_INTERVAL_SECONDS = 0.5


def _answer(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"status": status, "error": message}).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


def no_delay(transport: Any) -> None:
    """Turn Nagle's algorithm off on a TCP connection. uvicorn writes an answer's headers and body separately, and
    asyncio's loop sets TCP_NODELAY only on sockets whose protocol number says TCP, which the socket uvicorn shares
    between workers does not: with ``WEB_CONCURRENCY=2`` every body then waited for the client's delayed ACK
    (a classification took 44 ms)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def requests_in_progress() -> int:
    """How many requests this worker has read the head of and not yet answered in full: its connections not waiting
    for a head (0 under another HTTP server than uvicorn with this protocol)."""
    return BoundedHttpToolsProtocol.open_connections - len(BoundedHttpToolsProtocol.awaiting_head)


class ChargingTransport:
    """A connection's transport whose writes charge the bytes left in its buffer to the connection."""

    def __init__(self, transport: Any, connection: BoundedHttpToolsProtocol) -> None:
        self._transport = transport
        self._connection = connection

    def write(self, data: bytes) -> None:
        self._transport.write(data)
        self._connection.wrote()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with limits on header bytes, time to the head, open connections and unsent answers."""

    open_connections: ClassVar[int] = 0
    pending_answer_bytes: ClassVar[int] = 0
    # connections waiting for a request head (never spoke, kept alive between requests, or sending a head), oldest
    # first: the ones closed first when a new connection comes past the cap
    awaiting_head: ClassVar[dict[BoundedHttpToolsProtocol, None]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.max_header_bytes = settings.max_header_bytes
        self.max_connections = settings.max_connections
        self.head_timeout = settings.head_timeout_seconds
        self.send_stall = settings.send_stall_seconds
        self.request_timeout = settings.request_timeout_seconds
        self.header_bytes = 0
        self.reading_headers = True
        self.head_timer: Any = None
        self.watchdog: Any = None
        self.charged = 0  # this connection's share of pending_answer_bytes
        self.buffered_at_last_check = 0
        self.last_progress = 0.0
        self.answer_deadline = math.inf

    def connection_made(self, transport: Any) -> None:
        BoundedHttpToolsProtocol.open_connections += 1
        no_delay(transport)
        super().connection_made(transport)
        self.transport = ChargingTransport(transport, self)
        if self.open_connections > self.max_connections:
            self._close_oldest_awaiting_head()
        self.awaiting_head[self] = None
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        BoundedHttpToolsProtocol.open_connections -= 1
        self.awaiting_head.pop(self, None)
        for timer in (self.head_timer, self.watchdog):
            if timer is not None:
                timer.cancel()
        self.head_timer = self.watchdog = None
        self._charge(0)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.reading_headers:
            self.header_bytes += len(data)
        super().data_received(data)
        if self.reading_headers and self.header_bytes > self.max_header_bytes and not self.transport.is_closing():
            self._refuse(
                431,
                "Request Header Fields Too Large",
                f"the request line and headers are over the limit of {self.max_header_bytes} bytes",
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.head_timer is None:  # a later request on a kept-alive connection: its head has the same time
            self.awaiting_head[self] = None
            self._start_head_timer()

    def on_headers_complete(self) -> None:
        self.reading_headers, self.header_bytes = False, 0
        self.awaiting_head.pop(self, None)
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        self.answer_deadline = self.loop.time() + self.request_timeout
        state = self.scope.setdefault("state", {})
        state[CONNECTION] = self
        if self.open_connections > self.max_connections:
            state[OVER_CONNECTION_CAP] = self.max_connections
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_headers, self.header_bytes = True, 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self.awaiting_head[self] = None  # idle until the next request: uvicorn's keep-alive timer bounds it

    def resume_writing(self) -> None:
        super().resume_writing()
        self.wrote()

    def wrote(self) -> None:
        """Charge what the transport's buffer holds now; watch it while it holds anything."""
        buffered = self.transport.get_write_buffer_size()
        self._charge(buffered)
        if buffered and self.watchdog is None:
            self.buffered_at_last_check, self.last_progress = buffered, self.loop.time()
            self.watchdog = self.loop.call_later(WATCH_INTERVAL_SECONDS, self._watch_sending)

    def abort(self, reason: str) -> None:
        """Drop the connection and whatever it still had to send."""
        self.logger.warning("aborted a connection: %s", reason)
        self.transport.abort()
        self._charge(0)

    def _charge(self, size: int) -> None:
        BoundedHttpToolsProtocol.pending_answer_bytes += size - self.charged
        self.charged = size

    def _watch_sending(self) -> None:
        self.watchdog = None
        if self.transport.is_closing() and not self.transport.get_write_buffer_size():
            return
        buffered = self.transport.get_write_buffer_size()
        self._charge(buffered)
        if not buffered:
            return
        now = self.loop.time()
        if buffered < self.buffered_at_last_check:
            self.last_progress = now
        self.buffered_at_last_check = buffered
        if now - self.last_progress > self.send_stall:
            self.abort(f"the client read none of {buffered:,} answer bytes for {self.send_stall:g} s")
        elif now > self.answer_deadline:
            self.abort(f"{buffered:,} answer bytes were still unsent {self.request_timeout:g} s after the request")
        else:
            self.watchdog = self.loop.call_later(WATCH_INTERVAL_SECONDS, self._watch_sending)

    def _start_head_timer(self) -> None:
        self.head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or self not in self.awaiting_head:
            return
        if self.header_bytes:
            self._refuse(408, "Request Timeout", f"the request head did not arrive within {self.head_timeout:g} s")
        else:
            self.transport.close()

    def _close_oldest_awaiting_head(self) -> None:
        for connection in self.awaiting_head:
            if not connection.transport.is_closing():
                self.awaiting_head.pop(connection)
                connection.transport.close()
                return

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self.logger.warning("refused a request with %d: %s", status, message)
        self.awaiting_head.pop(self, None)
        self.transport.write(_answer(status, reason, message))
        self.transport.close()
