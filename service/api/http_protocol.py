"""uvicorn's httptools protocol with the limits it lacks: header size and open connections.

httptools (llhttp) accepts a request line and headers of any size, and uvicorn buffers them until they are
complete: a client sending a 128 MB header is read for seconds into memory. Here the bytes of a request's
line and headers are counted as they arrive, and past ``CONVLENS_MAX_HEADER_BYTES`` the connection gets 431 and
is closed. Open connections are counted per process: past ``CONVLENS_MAX_CONNECTIONS`` a request is marked in
its scope, and admission control answers it 503 unless it asks for an open path (health, metrics, the page):
a liveness probe must never fail because the service is busy.
"""

from __future__ import annotations

import json
import socket
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.api.settings import get_settings

OVER_CONNECTION_CAP = "convlens.over_connection_cap"


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


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that refuses oversized headers (431) and marks requests past the connection cap."""

    open_connections: ClassVar[int] = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.max_header_bytes = settings.max_header_bytes
        self.max_connections = settings.max_connections
        self.header_bytes = 0
        self.reading_headers = True

    def connection_made(self, transport: Any) -> None:
        BoundedHttpToolsProtocol.open_connections += 1
        no_delay(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        BoundedHttpToolsProtocol.open_connections -= 1
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

    def on_headers_complete(self) -> None:
        self.reading_headers, self.header_bytes = False, 0
        if self.open_connections > self.max_connections:
            self.scope.setdefault("state", {})[OVER_CONNECTION_CAP] = self.max_connections
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_headers, self.header_bytes = True, 0

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self.logger.warning("refused a request with %d: %s", status, message)
        self.transport.write(_answer(status, reason, message))
        self.transport.close()
