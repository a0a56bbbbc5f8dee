"""Optional API keys: when ``CONVLENS_API_KEYS`` is set, every /v1 and /v2 route (but /v2/health) needs one of them.

The key is checked twice over: ``ApiKeyGate``, a pure ASGI middleware that runs before admission control, answers
401 from the headers alone, before any upload buffer is reserved or any body byte read (five keyless requests
declaring 48 MiB of bodies must not make every keyed upload wait); ``require_api_key``, the routes' dependency,
keeps the same rule on every route of the app however it is mounted. The gate also names the request's client
for fair shares of the work: its key's position when keys are set, else its address.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated

from fastapi import Header
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.deps import SettingsDep
from service.api.errors import ApiError, error_document

KEY_REQUIRED = "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
CLIENT = "convlens.client"  # set in the scope's state: whose share of the work the request counts against
KEYED_PREFIXES = ("/v1/", "/v2/")
OPEN_PREFIX = "/v2/health/"


def _offered_key(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def matching_key(keys: list[str], authorization: str | None, x_api_key: str | None) -> int | None:
    """The position of the configured key the request carries (every key compared in constant time), or None."""
    offered = _offered_key(authorization, x_api_key)
    matched = None
    for position, key in enumerate(keys):
        if offered is not None and hmac.compare_digest(offered.encode(), key.encode()):
            matched = position
    return matched


def needs_key(path: str) -> bool:
    """Whether a request to ``path`` needs a key when keys are set: /v1 and /v2, /v2/health excepted."""
    return (path.startswith(KEYED_PREFIXES) or path == "/v2") and not path.startswith(OPEN_PREFIX)


async def require_api_key(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """401 unless keys are off or the request carries a configured key (compared in constant time)."""
    if settings.api_keys and matching_key(settings.api_keys, authorization, x_api_key) is None:
        raise ApiError(KEY_REQUIRED, status=401, headers={"WWW-Authenticate": "Bearer"})


class ApiKeyGate:
    """ASGI middleware: 401 from the headers alone for a keyed path without a configured key; names the client."""

    def __init__(self, app: ASGIApp, *, keys: list[str]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if self.keys:
            headers = dict(scope["headers"])
            authorization, x_api_key = headers.get(b"authorization"), headers.get(b"x-api-key")
            position = matching_key(
                self.keys,
                authorization.decode("latin-1") if authorization else None,
                x_api_key.decode("latin-1") if x_api_key else None,
            )
            if position is None and needs_key(scope["path"]):
                await _refuse(scope, send)
                return
            state[CLIENT] = f"key:{position}" if position is not None else _address(scope)
        else:
            state[CLIENT] = _address(scope)
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, send: Send) -> None:
    """401 with ``WWW-Authenticate: Bearer``, in the error shape of the path."""
    body = json.dumps(error_document(scope["path"], 401, KEY_REQUIRED)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b"Bearer"),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return f"address:{client[0]}" if client else "address:unknown"
