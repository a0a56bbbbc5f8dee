"""A shortcut for the Open Inference Protocol's hot request: ``POST /v2/models/{model_name}/infer`` with no query
string.

Its parameters are the path's model name, the body and one header: nothing for FastAPI's routing and dependency
solving to do that this pure ASGI middleware (innermost, beside ``ClassifyShortcut``: admission control, the
monitor, CORS and the limits run as for any request) cannot do with the route's own dependencies
(``served_model`` as ``deps.find_served``), which it calls before the route's endpoint. An error is answered by
the app's own exception handler for it, as FastAPI would; a versioned path, a query string or API keys go to
FastAPI unchanged.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Router
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api import deps
from service.api.middleware.classify_shortcut import plain_post, post_route, respond
from service.api.v2_tensors import HEADER_LENGTH, inference_body

PATH = "/v2/models/{model_name}/infer"
MATCH = re.compile(r"/v2/models/([^/]+)/infer")


class InferShortcut:
    """Pure ASGI middleware: answers an unversioned v2 inference without FastAPI's request machinery."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        """``router``: the one holding the ``POST PATH`` route."""
        self.app = app
        self.route = post_route(router, PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = self._model_name(scope)
        if name is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # the metrics and the access log name the route, as after FastAPI's routing
        scope["path_params"] = {"model_name": name}
        request = Request(scope, receive)

        async def answer() -> Response:
            model = deps.find_served(deps.loaded_registry(request), name)
            body = await inference_body(request)
            settings = request.app.state.settings
            return await self.route.endpoint(model, body, settings, request, request.headers.get(HEADER_LENGTH))

        await respond(request, answer, send)

    @staticmethod
    def _model_name(scope: Scope) -> str | None:
        """The model named in the path of a request this shortcut answers, else None."""
        if not plain_post(scope):
            return None
        found = MATCH.fullmatch(scope["path"])
        return None if found is None else found[1]
