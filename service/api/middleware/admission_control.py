"""Admission control for every request that costs CPU: bounded uploads, bounded waiting, 503 fast.

A pure ASGI middleware. For each request outside the open paths (health, metrics, the page and the docs):

1. at most ``max_in_flight`` such requests at once, beyond that 503 at once (health never counts);
2. the body is received in full before any work starts, counted as it streams: over ``max_body_bytes`` (declared
   or received) is 413, and every body byte received counts against ``max_buffered_bytes`` as it arrives (over it:
   503): a declared length reserves nothing, so headers alone hold no memory, and a slow uploader holds the memory
   it sent, never a work slot;
3. then the request waits at most ``wait_seconds`` for a work slot (decoding, inference, the maths, PNG encoding
   all run under it), placed by its cost and its client (``service.runtime.work_shares``): still none, 503 with
   Retry-After;
4. while the work runs, a client that hangs up cancels it at its next step boundary (``service.runtime.cancellation``);
5. its answer is handed to the connection whole when the answers waiting to be sent (all connections) have room
   for it within ``max_pending_answer_bytes``; otherwise it is sent in pieces as its client reads them, still
   within its request's memory and work slot, and a client that reads nothing for ``send_stall_seconds`` has its
   connection closed.

The answer's status is then the app's; a request whose client left is recorded as 499.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import error_document
from service.api.http_protocol import OVER_CONNECTION_CAP, BoundedHttpToolsProtocol, requests_in_progress
from service.api.middleware.auth import CLIENT
from service.api.middleware.monitoring import CLIENT_GONE, Metrics
from service.api.middleware.work_cost import request_cost
from service.runtime.cancellation import current_token
from service.runtime.work_shares import WorkShares

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# A request's work runs this long before a task starts watching for its client hanging up: the watch then cancels
# the work at its next step boundary, and the many requests answered sooner never pay for a task of their own.
WATCH_AFTER_SECONDS = 0.05
# An answer that does not fit the room left for waiting answers is sent in pieces of this size, each waiting for
# the client to read the one before.
ANSWER_PIECE_BYTES = 256 * 1024


async def send_error(scope: Scope, send: Send, status: int, message: str, retry_after: bool = False) -> None:
    """A JSON error answer sent straight from the middleware."""
    body = json.dumps(error_document(scope["path"], status, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class InFlight:
    """How many requests admission control has admitted and not yet answered (the open paths never count)."""

    count: int = 0

    def alone(self) -> bool:
        """Whether the calling request is the only one this worker is serving: admitted alone, and no other request
        head read (a request whose head was read waits for the event loop before admission control counts it)."""
        return self.count <= 1 and requests_in_progress() <= 1


class AdmissionControl:
    """Bounds the requests that do work: how many are in flight, the bytes they buffer, and how many compute."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        open_path: Callable[[str], bool],
        max_body_bytes: int,
        max_buffered_bytes: int,
        work_slots: int,
        wait_seconds: float,
        max_in_flight: int,
        heavy_cost: int,
        cost_limits: tuple[int, int, int],
        max_pending_answer_bytes: int,
        in_flight: InFlight,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.open_path = open_path
        self.max_body_bytes = max_body_bytes
        self.max_buffered_bytes = max_buffered_bytes
        self.wait_seconds = wait_seconds
        self.max_in_flight = max_in_flight
        self.shares = WorkShares(work_slots, heavy_cost)
        self.cost_limits = cost_limits  # most images, occlusion squares and steps or samples a request may ask for
        self.max_pending_answer_bytes = max_pending_answer_bytes
        self.in_flight = in_flight
        self.buffered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.open_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        cap = scope.get("state", {}).get(OVER_CONNECTION_CAP)
        if cap is not None:
            await self._busy(scope, send, "connections", f"the service holds more than {cap} connections, its limit")
            return
        if self.in_flight.count >= self.max_in_flight:
            await self._busy(
                scope, send, "in_flight", f"the service is busy: {self.max_in_flight} requests are in flight"
            )
            return
        self.in_flight.count += 1
        reserved = [0]
        try:
            body = b""
            if scope["method"] in BODY_METHODS:
                body = await self._receive_body(scope, receive, send, reserved)
                if body is None:
                    return
            await self._admitted(scope, receive, send, body)
        finally:
            self.in_flight.count -= 1
            self.buffered -= reserved[0]

    def _reserve(self, reserved: list[int], size: int) -> bool:
        """Count ``size`` more bytes of this request against the shared buffer budget; False when over it."""
        extra = size - reserved[0]
        if extra <= 0:
            return True
        if self.buffered + extra > self.max_buffered_bytes:
            return False
        self.buffered += extra
        reserved[0] = size
        return True

    async def _receive_body(self, scope: Scope, receive: Receive, send: Send, reserved: list[int]) -> bytes | None:
        """The whole body within the limits; None when an answer was already sent or the client left."""
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            self.metrics.rejected_uploads.labels("too_many_bytes").inc()
            await send_error(
                scope, send, 413, f"upload of {int(declared)} bytes is over the limit of {self.max_body_bytes} bytes"
            )
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope.setdefault("state", {})[CLIENT_GONE] = True
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                self.metrics.rejected_uploads.labels("too_many_bytes").inc()
                await send_error(scope, send, 413, f"upload is over the limit of {self.max_body_bytes} bytes")
                return None
            if not self._reserve(reserved, size):
                return await self._uploads_busy(scope, send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _busy(self, scope: Scope, send: Send, reason: str, message: str) -> None:
        """503 with Retry-After, counted by what was full."""
        self.metrics.busy.labels(reason).inc()
        await send_error(scope, send, 503, f"{message}; retry after a second", retry_after=True)

    async def _uploads_busy(self, scope: Scope, send: Send) -> None:
        await self._busy(
            scope,
            send,
            "uploads",
            f"the service is busy receiving {self.buffered:,} bytes of uploads (its limit is "
            f"{self.max_buffered_bytes:,})",
        )

    async def _admitted(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        """Run the app under a work slot, the body replayed, watching for the client hanging up."""
        client = scope.get("state", {}).get(CLIENT, "unknown")
        ticket = await self.shares.acquire(client, request_cost(scope, body, *self.cost_limits), self.wait_seconds)
        if ticket is None:
            await self._busy(
                scope,
                send,
                "work",
                f"the service is busy: no work slot came free for {self.wait_seconds:g} s",
            )
            return
        loop = asyncio.get_running_loop()
        gone: asyncio.Future[Message] = loop.create_future()
        watcher: list[asyncio.Task] = []
        # most requests are answered before the watcher would start, and then cost no task at all
        start_watching = loop.call_later(
            WATCH_AFTER_SECONDS, lambda: watcher.append(asyncio.create_task(self._watch(scope, receive, gone)))
        )
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await asyncio.shield(gone)

        try:
            await self.app(scope, replay, self._answer_sender(scope, send))
        finally:
            start_watching.cancel()
            for task in watcher:
                task.cancel()
            self.shares.release(ticket)

    def _answer_sender(self, scope: Scope, send: Send) -> Send:
        """``send``, but an answer larger than the room left for waiting answers goes out in pieces, each sent when
        the client has read the previous one (a client that reads nothing has its connection closed by the
        connection's watchdog, ``http_protocol``, which ends the wait)."""

        async def send_answer(message: Message) -> None:
            body = message.get("body", b"")
            room = self.max_pending_answer_bytes - BoundedHttpToolsProtocol.pending_answer_bytes
            if message["type"] != "http.response.body" or len(body) <= max(room, ANSWER_PIECE_BYTES):
                await send(message)
                return
            view = memoryview(body)
            for start in range(0, len(body), ANSWER_PIECE_BYTES):
                last = start + ANSWER_PIECE_BYTES >= len(body)
                piece = {
                    "type": "http.response.body",
                    "body": view[start : start + ANSWER_PIECE_BYTES],
                    "more_body": message.get("more_body", False) if last else True,
                }
                await send(piece)
                if scope.get("state", {}).get(CLIENT_GONE):
                    return

        return send_answer

    @staticmethod
    async def _watch(scope: Scope, receive: Receive, gone: asyncio.Future[Message]) -> None:
        """Wait for the client to hang up; then cancel the request's work and note it for the access log."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
        token = current_token()
        if token is not None:
            token.cancel("the client disconnected")
        scope.setdefault("state", {})[CLIENT_GONE] = True
        if not gone.done():
            gone.set_result(message)
