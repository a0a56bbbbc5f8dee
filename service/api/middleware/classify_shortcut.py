"""A shortcut for the hottest request: ``POST /v1/classify`` with no query string, a raw image body or a multipart
form.

Such a request has nothing for FastAPI to parse: every parameter takes its default, and the body is the route's own
dependency's to read (``deps.uploaded_digit``), multipart included. This pure ASGI middleware
(innermost, so admission control, the monitor, CORS and the limits all run as for any request) calls the route's
own dependencies and endpoint (from the router the app hands it) with those defaults, and skips routing and dependency
resolution, which cost more than the inference. An error is answered by the app's own exception handler for it, as
FastAPI would; anything else (a query string, multipart, API keys) goes to FastAPI unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api import deps

PATH = "/v1/classify"
CONTENT_TYPES = (b"image/", b"multipart/form-data")


class ClassifyShortcut:
    """Pure ASGI middleware: answers the plain single-image classification without FastAPI's request machinery."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        """``router``: the one holding the ``POST PATH`` route."""
        self.app = app
        self.route = post_route(router, PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._applies(scope):
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # the metrics and the access log name the route, as after FastAPI's routing
        request = Request(scope, receive)

        async def answer() -> Response:
            model = await deps.get_model(request)
            digit = await deps.uploaded_digit(request)
            return await self.route.endpoint(digit, model, request)

        await respond(request, answer, send)

    def _applies(self, scope: Scope) -> bool:
        return scope["type"] == "http" and scope["path"] == PATH and plain_post(scope) and image_upload(scope)


def plain_post(scope: Scope) -> bool:
    """Whether ``scope`` is a ``POST`` with no query string to an app without API keys: a request a shortcut may
    answer with its route's defaults (the key gate's dependency is FastAPI's to run)."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope["query_string"]:
        return False
    return not scope["app"].state.settings.api_keys


def image_upload(scope: Scope) -> bool:
    """Whether the request's body is an image or a multipart form, as ``deps.uploaded_digit`` reads them."""
    return dict(scope["headers"]).get(b"content-type", b"").lower().startswith(CONTENT_TYPES)


def post_route(router: Router, path: str) -> Route:
    """The ``POST`` route of ``router`` at ``path``, whose endpoint and dependencies a shortcut calls itself."""
    return next(
        route for route in router.routes if isinstance(route, Route) and route.path == path and "POST" in route.methods
    )


async def respond(request: Request, answer: Callable[[], Awaitable[Response]], send: Send) -> None:
    """Send ``answer()``'s response, or for what it raises the app's own handler's, as the app would answer it;
    an exception the app has no handler for goes on up, to the server-error middleware."""
    try:
        response = await answer()
    except Exception as exc:
        handler = handler_for(request.scope["app"].exception_handlers, exc)
        if handler is None:
            raise
        response = await handler(request, exc)
    await response(request.scope, request.receive, send)


def handler_for(handlers: dict, exc: Exception) -> Callable | None:
    """The app's handler for ``exc``: the one registered for its class or the nearest base, as Starlette finds it
    (a handler for every ``Exception`` would be the server-error middleware's, which re-raises: not taken here)."""
    return next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers and cls is not Exception), None)
