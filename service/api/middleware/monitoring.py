"""Prometheus metrics and one structured access-log line per request, recorded by a pure ASGI middleware.

The middleware also
- enforces the request timeout: a request that has not started its answer after ``request_timeout`` seconds
  (a slow upload, a stuck inference) gets a 503 instead of holding the client, and its work is cancelled at
  the next step boundary (``service.runtime.cancellation``);
- gives every answer an ``X-Request-ID`` (the client's, when it sent a sane one, else a new one; also in the
  access log), ``X-Model-Version`` (the SHA-256 prefix of each model the answer used), and the headers every
  answer should carry (``X-Content-Type-Options: nosniff``, ``Referrer-Policy``).
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import json
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from typing import TextIO

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import error_document
from service.api.http_protocol import BoundedHttpToolsProtocol
from service.runtime.cancellation import CancelToken, bound
from service.runtime.output_budget import pixel_budget
from service.runtime.registry import models_used

access_log = logging.getLogger("convlens.access")

CLIENT_GONE = "convlens.client_gone"  # set in the scope's state when the client hung up before the answer
CLIENT_CLOSED_REQUEST = 499  # as nginx records it
REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
COMMON_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class BackgroundLogHandler(logging.Handler):
    """Writes log records to stdout from a thread of its own, so the event loop never waits on a slow reader of
    the log and does not wake a thread for every line.

    The caller's thread only appends the record to a buffer. The writer formats what waits and writes it in one
    call, every ``interval`` seconds, or sooner once ``batch`` records wait. Past ``capacity`` waiting records, new
    ones are dropped rather than held (``dropped`` counts them).
    """

    def __init__(
        self, capacity: int = 10_000, interval: float = 0.05, batch: int = 256, stream: TextIO | None = None
    ) -> None:
        super().__init__()
        self.stream = stream or sys.stdout
        self.capacity, self.interval, self.batch = capacity, interval, batch
        self.dropped = 0
        self._waiting: deque[logging.LogRecord] = deque()
        self._wake = threading.Event()
        self._writing = threading.Lock()
        self._closed = False
        self._writer = threading.Thread(target=self._write_until_closed, name="convlens-log-writer", daemon=True)
        self._writer.start()
        atexit.register(self.close)

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record as it is: the writer formats it (deque appends need no lock)."""
        if len(self._waiting) >= self.capacity:
            self.dropped += 1
            return
        self._waiting.append(record)
        if len(self._waiting) == self.batch:
            self._wake.set()

    def flush(self) -> None:
        """Write every waiting record now (giving up after a few seconds when another write is stuck on the stream,
        so that a process never hangs at exit on a reader that stopped reading)."""
        if not self._writing.acquire(timeout=5):
            return
        try:
            lines, last = [], None
            while self._waiting:
                last = self._waiting.popleft()
                try:
                    lines.append(self.format(last))
                except Exception:
                    self.handleError(last)
            if lines:
                try:
                    self.stream.write("\n".join(lines) + "\n")
                    self.stream.flush()
                except Exception:
                    self.handleError(last)
        finally:
            self._writing.release()

    def close(self) -> None:
        """Write what waits and stop the writer (it gives up after a few seconds on a stuck stream)."""
        if not self._closed:
            self._closed = True
            self._wake.set()
            self._writer.join(timeout=5)
        super().close()

    def _write_until_closed(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()
        self.flush()


class Metrics:
    """The service's metrics, in a registry of their own (one per app, so tests can build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "convlens_requests_total",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "convlens_request_duration_seconds",
            "HTTP request duration by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference = Histogram(
            "convlens_inference_duration_seconds",
            "onnxruntime run time by model",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge("convlens_requests_in_flight", "HTTP requests being served", registry=self.registry)
        self.rejected_uploads = Counter(
            "convlens_rejected_uploads_total", "uploads refused, by reason", ["reason"], registry=self.registry
        )
        self.microbatch_size = Histogram(
            "convlens_microbatch_size",
            "images per shared run of micro-batched classifications",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self._inference_series: dict[str, Histogram] = {}
        self.pending_answers = Gauge(
            "convlens_pending_answer_bytes",
            "answer bytes waiting in the connections' write buffers, all connections of this process",
            registry=self.registry,
        )
        self.pending_answers.set_function(lambda: BoundedHttpToolsProtocol.pending_answer_bytes)
        self.busy = Counter(
            "convlens_busy_rejections_total",
            "requests refused with 503 by admission control, by what was full: in_flight, uploads, work, inference",
            ["reason"],
            registry=self.registry,
        )

    def observe_inference(self, model: str, seconds: float) -> None:
        """One onnxruntime run of ``model`` took ``seconds`` (its series looked up once, not per run)."""
        series = self._inference_series.get(model)
        if series is None:
            series = self._inference_series[model] = self.inference.labels(model)
        series.observe(seconds)


_id_prefix = os.urandom(8).hex()


def _new_id_prefix() -> None:
    global _id_prefix
    _id_prefix = os.urandom(8).hex()


os.register_at_fork(after_in_child=_new_id_prefix)  # a forked worker must not repeat its parent's IDs
_id_counter = itertools.count()


def new_request_id() -> str:
    """A request ID unique across processes and restarts (32 hex digits, as a UUID's): this process's random prefix
    and a counter, without uuid4's system call per request (10 us each under load in a profile)."""
    return f"{_id_prefix}{next(_id_counter) & 0xFFFFFFFFFFFFFFFF:016x}"


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/activations/{layer}``), so labels stay few."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestMonitor:
    """ASGI middleware: counts, times and logs every HTTP request, and bounds how long one may take."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        request_timeout: float,
        max_output_pixels: int,
        extra_headers: dict[str, list] | None = None,
    ) -> None:
        self.app = app
        self.max_output_pixels = max_output_pixels
        self.metrics = metrics
        self.request_timeout = request_timeout
        self.extra_headers = extra_headers or {}
        self._series: dict[tuple[str, str, str], tuple] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = dict(scope["headers"]).get(b"x-request-id", b"")
        request_id = offered.decode() if REQUEST_ID.fullmatch(offered) else new_request_id()
        state = {"status": 500, "started": False, "bytes_in": 0, "bytes_out": 0, "request_id": request_id}
        token, used = CancelToken(), []

        async def counting_receive() -> Message:
            message = await receive()
            state["bytes_in"] += len(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                headers = [*message.get("headers", []), *COMMON_HEADERS, (b"x-request-id", request_id.encode())]
                headers += self.extra_headers.get(scope["path"], [])
                if used:
                    headers.append((b"x-model-version", ",".join(dict.fromkeys(used)).encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                state["bytes_out"] += len(message.get("body", b""))
            await send(message)

        start = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            with bound(token), models_used(used), pixel_budget(self.max_output_pixels):
                async with asyncio.timeout(self.request_timeout):
                    await self.app(scope, counting_receive, recording_send)
        except TimeoutError:
            token.cancel(f"the request took longer than {self.request_timeout:g} s")
            if not state["started"]:
                await self._timed_out(scope["path"], recording_send)
        finally:
            if not state["started"] and scope.get("state", {}).get(CLIENT_GONE):
                state["status"] = CLIENT_CLOSED_REQUEST
            self.metrics.in_flight.dec()
            self._record(scope, state, time.perf_counter() - start)

    async def _timed_out(self, path: str, send: Send) -> None:
        message = f"the request took longer than {self.request_timeout:g} s; retry, or send a smaller image"
        body = json.dumps(error_document(path, 503, message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", b"1"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope: Scope, state: dict, seconds: float) -> None:
        route = route_template(scope)
        key = (route, scope["method"], str(state["status"]))
        series = self._series.get(key)
        if series is None:  # each label lookup takes a lock and builds a tuple: once per series, not per request
            series = self._series[key] = (self.metrics.requests.labels(*key), self.metrics.latency.labels(route))
        series[0].inc()
        series[1].observe(seconds)
        if access_log.isEnabledFor(logging.INFO):
            # handle(makeRecord(...)) is what info() does, less the walk up the deep ASGI stack for the caller's file
            # and line, which the line does not show (with new_request_id: the service's own cost per request,
            # inference and decoding aside, 104 -> 83 us in-process)
            line = AccessLine(
                {
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"],
                    "status": state["status"],
                    "duration_ms": round(seconds * 1000, 2),
                    "bytes_in": state["bytes_in"],
                    "bytes_out": state["bytes_out"],
                    "request_id": state["request_id"],
                }
            )
            access_log.handle(access_log.makeRecord(access_log.name, logging.INFO, "", 0, line, None, None))


class AccessLine:
    """An access-log message that becomes its JSON line when written (on the log's thread), not when logged."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return json.dumps(self.fields)
