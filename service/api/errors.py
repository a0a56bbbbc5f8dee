"""Error types of the API and the handlers that turn every failure into JSON with a 4xx status and a message."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import (
    BadInputError,
    BusyError,
    NotApplicableError,
    NotFoundError,
    ServiceError,
    TooLargeError,
    UnavailableError,
    UnsupportedError,
    kind_of,
)
from service.runtime.output_budget import OutputTooLarge


class ApiError(Exception):
    """A request the service cannot serve, with the status and the message a person can act on."""

    status = 400

    def __init__(
        self,
        message: str,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        rejected_upload: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status or self.status
        self.headers = headers
        self.rejected_upload = rejected_upload


class BadRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class Unprocessable(ApiError):
    status = 422


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


# The status each kind of the core's errors answers (``service.errors``: a class answers its first kind's).
STATUS_OF_KIND: dict[type[ServiceError], int] = {
    BadInputError: 400,
    NotFoundError: 404,
    TooLargeError: 413,
    UnsupportedError: 415,
    NotApplicableError: 422,
    UnavailableError: 503,
    BusyError: 503,
}

# The setting behind a limit of the core, named after the error's message: what an operator raises.
LIMIT_SETTINGS: dict[type[ServiceError], str] = {OutputTooLarge: "CONVLENS_MAX_OUTPUT_PIXELS"}

OPEN_INFERENCE_PREFIX = "/v2"


def error_body(status: int, message: str, **extra: object) -> dict:
    """The one JSON shape of every error: ``{"status": 404, "error": "..."}``."""
    return {"status": status, "error": message, **extra}


def error_document(path: str, status: int, message: str, **extra: object) -> dict:
    """The error body for a request to ``path``: under /v2 the Open Inference Protocol's own ``{"error": "..."}``
    (what its clients read), everywhere else ``error_body``."""
    if path == OPEN_INFERENCE_PREFIX or path.startswith(OPEN_INFERENCE_PREFIX + "/"):
        return {"error": message}
    return error_body(status, message, **extra)


def _json(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None, **extra: object
) -> JSONResponse:
    body = error_document(request.url.path, status, message, **extra)
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(parts) or "invalid request"


def _count_rejection(request: Request, reason: str) -> None:
    request.app.state.metrics.rejected_uploads.labels(reason).inc()


def core_error_answer(exc: ServiceError) -> tuple[int, str, dict[str, str] | None]:
    """The status, message and headers that answer one of the core's errors: its kind's status, its message (and
    the setting behind its limit, if one bounds it), Retry-After for a busy service."""
    kind = kind_of(type(exc))
    status = STATUS_OF_KIND[kind]
    setting = next((name for error, name in LIMIT_SETTINGS.items() if isinstance(exc, error)), None)
    message = f"{exc} ({setting})" if setting else str(exc)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, BusyError) else None
    return status, message, headers


def install_error_handlers(app: FastAPI) -> None:
    """Map the core's errors (by kind), API, validation and routing errors to JSON responses (counting refused
    uploads by their code)."""

    @app.exception_handler(ServiceError)
    async def core_error(request: Request, exc: ServiceError) -> JSONResponse:
        status, message, headers = core_error_answer(exc)
        if exc.code is not None:
            _count_rejection(request, exc.code)
        return _json(request, status, message, headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        if exc.rejected_upload:
            _count_rejection(request, exc.rejected_upload)
        return _json(request, exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _json(request, 422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint; the API is described at /docs and /openapi.json"
        return _json(request, exc.status_code, message, getattr(exc, "headers", None))
