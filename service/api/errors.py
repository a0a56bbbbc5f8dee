"""Error types of the API and the handlers that turn every failure into JSON with a 4xx status and a message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.images import decoding
from service.images.npy import BatchError, TooManyImages
from service.runtime.inference_gate import Busy
from service.runtime.output_budget import OutputTooLarge
from service.studies.explain import UnknownMethod
from service.studies.invariance import UnknownTransform
from service.studies.layers import NotApplicable, UnknownLayer
from service.studies.statistics import StatisticsUnavailable


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


IMAGE_ERRORS = {
    decoding.UnsupportedFormatError: (415, "unsupported_format"),
    decoding.ImageTooLargeError: (413, "too_many_pixels"),
    decoding.AspectRatioError: (422, "aspect_ratio"),
    decoding.MalformedImageError: (400, "too_many_segments"),
    decoding.CorruptImageError: (400, "corrupt_image"),
    decoding.NoDigitError: (422, "no_digit"),
}

# The core's exceptions whose message is the answer as it is: the status each maps to.
DOMAIN_ERRORS: dict[type[Exception], int] = {
    UnknownLayer: 404,
    UnknownMethod: 404,
    UnknownTransform: 404,
    NotApplicable: 422,
    StatisticsUnavailable: 503,
}

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


def _answer_with(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """A handler answering ``status`` with the exception's message."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return _json(request, status, str(exc))

    return handler


def install_error_handlers(app: FastAPI) -> None:
    """Map API, image, validation and routing errors to JSON responses (counting refused uploads)."""
    for kind, status in DOMAIN_ERRORS.items():
        app.add_exception_handler(kind, _answer_with(status))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        if exc.rejected_upload:
            _count_rejection(request, exc.rejected_upload)
        return _json(request, exc.status, exc.message, exc.headers)

    @app.exception_handler(decoding.ImageError)
    async def image_error(request: Request, exc: decoding.ImageError) -> JSONResponse:
        status, reason = next((v for kind, v in IMAGE_ERRORS.items() if isinstance(exc, kind)), (422, "unusable_image"))
        _count_rejection(request, reason)
        return _json(request, status, str(exc))

    @app.exception_handler(BatchError)
    async def batch_error(request: Request, exc: BatchError) -> JSONResponse:
        reason, status = ("too_many_images", 413) if isinstance(exc, TooManyImages) else ("bad_batch", 400)
        _count_rejection(request, reason)
        return _json(request, status, str(exc))

    @app.exception_handler(OutputTooLarge)
    async def output_too_large(request: Request, exc: OutputTooLarge) -> JSONResponse:
        return _json(request, 422, f"{exc} (CONVLENS_MAX_OUTPUT_PIXELS)")

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy) -> JSONResponse:
        return _json(request, 503, str(exc), {"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _json(request, 422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint; the API is described at /docs and /openapi.json"
        return _json(request, exc.status_code, message, getattr(exc, "headers", None))
