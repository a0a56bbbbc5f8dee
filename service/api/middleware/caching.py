"""ETag and Cache-Control on GET answers whose content is fixed while the models are (statistics, plots, filters,
model descriptions): clients and proxies revalidate cheaply, and an unchanged answer is a bodiless 304."""

from __future__ import annotations

import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FIXED_PREFIXES = ("/v1/statistics", "/v1/filters", "/v1/models")


class FixedContentCaching:
    """Pure ASGI middleware: a strong ETag (SHA-256 of the body) on successful GETs under ``FIXED_PREFIXES``."""

    def __init__(self, app: ASGIApp, max_age: int, private: bool) -> None:
        self.app = app
        self.cache_control = f"{'private' if private else 'public'}, max-age={max_age}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith(FIXED_PREFIXES):
            await self.app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def buffered_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                if message["status"] != 200:
                    await send(message)
                return
            if start.get("status") != 200:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._send_cached(scope, start, b"".join(chunks), send)

        await self.app(scope, receive, buffered_send)

    async def _send_cached(self, scope: Scope, start: Message, body: bytes, send: Send) -> None:
        etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
        offered = dict(scope["headers"]).get(b"if-none-match", b"")
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"etag", b"cache-control")]
        headers += [(b"etag", etag), (b"cache-control", self.cache_control)]
        if etag in [tag.strip() for tag in offered.split(b",")] or offered.strip() == b"*":
            headers = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-type")]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})
