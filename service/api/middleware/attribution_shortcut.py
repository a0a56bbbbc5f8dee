"""A shortcut for a plain attribution map: ``POST /v1/attribution/{method}`` with no query string and a raw image
or multipart body, as a page or curl asks for the default PNG heat map of the classifier.

Such a request leaves every parameter at its default, so FastAPI's routing and dependency solving (which cost
more than a Grad-CAM's backward pass) have nothing to find: this pure ASGI middleware (innermost, beside
``ClassifyShortcut``: admission control, the monitor, CORS and the limits run as for any request) calls the
route's own dependencies and endpoint with those defaults. A map of one run that the request alone in flight can
have at once (``explain_now``: one pass, an inference slot free) is computed and drawn on the event loop: nobody
waits behind it, and the hop to a worker thread and back cost more than the map (Grad-CAM's PNG: 2.1-2.2 ms
against 2.8 ms, wrk, one connection). Anything else runs the endpoint in a worker thread, as FastAPI does. An error
is answered by the app's own exception handler for it; a query string, a ``/batch`` path or API keys go to FastAPI
unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Router
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api import deps
from service.api.middleware.classify_shortcut import image_upload, plain_post, post_route, respond
from service.attribution.method import Limits
from service.runtime.registry import LoadedModel

PATH = "/v1/attribution/{method}"
AnswerNow = Callable[[str, np.ndarray, LoadedModel, Limits], Response | None]
MATCH = re.compile(r"/v1/attribution/([^/]+)")
DEFAULT_MODEL = "classifier"


class AttributionShortcut:
    """Pure ASGI middleware: answers a plain attribution map without FastAPI's request machinery."""

    def __init__(self, app: ASGIApp, router: Router, answer_now: AnswerNow) -> None:
        """``router``: the one holding the ``POST PATH`` route; ``answer_now(method, digit, model, limits)``: that
        route's answer at its defaults when it can be computed at once on the calling thread, else None."""
        self.app = app
        self.route = post_route(router, PATH)
        self.answer_now = answer_now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = self._method(scope)
        if method is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # the metrics and the access log name the route, as after FastAPI's routing
        scope["path_params"] = {"method": method}
        request = Request(scope, receive)

        async def answer() -> Response:
            settings, registry = request.app.state.settings, deps.loaded_registry(request)
            model = deps.find_served(registry, DEFAULT_MODEL)
            digit = await deps.uploaded_digit(request)
            limits = await deps.attribution_limits(settings)
            if request.app.state.in_flight.alone():
                answered = self.answer_now(method, digit, model, limits)
                if answered is not None:
                    return answered
            arguments = (
                method,
                digit,
                model,
                limits,
                await deps.gradient_limits(registry, settings),
                deps.AttributionParams(),
                await deps.metric_limits(settings),
            )
            return await run_in_threadpool(self.route.endpoint, *arguments)

        await respond(request, answer, send)

    @staticmethod
    def _method(scope: Scope) -> str | None:
        """The method named in the path of a request this shortcut answers, else None."""
        found = MATCH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if found is None or not (plain_post(scope) and image_upload(scope)):
            return None
        return found[1]
