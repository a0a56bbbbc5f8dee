"""Prometheus metrics and one structured access-log line per request, recorded by a pure ASGI middleware.

The middleware also enforces the request timeout: a request that has not started its answer after
``request_timeout`` seconds (a slow upload, a stuck inference) gets a 503 instead of holding the client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import error_document

access_log = logging.getLogger("convlens.access")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
        self.busy = Counter(
            "convlens_busy_rejections_total",
            "requests refused with 503 because every inference slot stayed busy",
            registry=self.registry,
        )


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/activations/{layer}``), so labels stay few."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestMonitor:
    """ASGI middleware: counts, times and logs every HTTP request, and bounds how long one may take."""

    def __init__(self, app: ASGIApp, metrics: Metrics, request_timeout: float) -> None:
        self.app = app
        self.metrics = metrics
        self.request_timeout = request_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = {"status": 500, "started": False, "bytes_in": 0, "bytes_out": 0}

        async def counting_receive() -> Message:
            message = await receive()
            state["bytes_in"] += len(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            elif message["type"] == "http.response.body":
                state["bytes_out"] += len(message.get("body", b""))
            await send(message)

        start = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            async with asyncio.timeout(self.request_timeout):
                await self.app(scope, counting_receive, recording_send)
        except TimeoutError:
            if not state["started"]:
                await self._timed_out(scope["path"], recording_send)
        finally:
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
        self.metrics.requests.labels(route, scope["method"], str(state["status"])).inc()
        self.metrics.latency.labels(route).observe(seconds)
        access_log.info(
            json.dumps(
                {
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"],
                    "status": state["status"],
                    "duration_ms": round(seconds * 1000, 2),
                    "bytes_in": state["bytes_in"],
                    "bytes_out": state["bytes_out"],
                }
            )
        )
