"""The Open Inference Protocol (KServe v2) over REST, beside /v1: health, server and model metadata, inference.

Every served model (variants and imported models included) is a v2 model with the one version "1"; an imported
model's input is its own (``service.api.v2_imported``). Errors are the protocol's ``{"error": "..."}``
(``errors.error_document``).
"""

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from service.api.deps import AnyModel, RegistryDep, SettingsDep, find_served
from service.api.errors import NotFound
from service.api.v2_imported import imported_metadata, read_imported_inference
from service.api.v2_tensors import (
    EXTENSIONS,
    HEADER_LENGTH,
    VERSION,
    InferenceCall,
    InferenceError,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
    answer_size_bound,
    inference_body,
    inference_response,
    inline_schema,
    model_metadata,
    read_inference,
)
from service.client_text import excerpt
from service.runtime.imported import ImportedLoadedModel
from service.runtime.registry import INLINE_IMAGES, LoadedModel
from service.studies.classification import layers_of

TAGS = ["open inference protocol (KServe v2)"]
# Requests whose body and answer are at most this many bytes are read and answered on the event loop: reading one
# image as JSON (16 kB) takes 0.06 ms, 16 as binary tensors (50 kB) 0.03 ms, 5 as JSON (80 kB, over the bound)
# 0.23 ms, in-process on this machine.
INLINE_BYTES = 65_536


def _errors(*pairs: tuple[int, str]) -> dict:
    return {status: {"model": InferenceError, "description": text} for status, text in pairs}


UNAUTHORIZED = (401, "API keys are configured and the request carries none of them")
UNKNOWN = (404, "unknown model, version or output")
NOT_READY = (503, "the models are not loaded yet (see Retry-After)")
LOOKUP_ERRORS = _errors(UNAUTHORIZED, UNKNOWN, NOT_READY)
INFER_ERRORS = _errors(
    (400, "malformed request or tensor: JSON, header, shape, datatype, size, NaN/Inf, values outside [0, 1]"),
    UNAUTHORIZED,
    UNKNOWN,
    (413, "body, batch or answer over the limit"),
    (503, "every inference slot stayed busy, the request timed out, or the models are not loaded yet (Retry-After)"),
)
INFER_BODY = {
    "requestBody": {
        "required": True,
        "description": "The inference request document. With binary tensors (tritonclient's default): the JSON "
        f"document, then each binary input's bytes (FP32 little-endian, row-major), `{HEADER_LENGTH}` giving the "
        "JSON's length.",
        "content": {
            "application/json": {"schema": inline_schema(InferenceRequest)},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
INFER_ANSWER = {
    200: {
        "description": "JSON; with any binary output, the JSON document followed by the binary tensors as "
        f"application/octet-stream, `{HEADER_LENGTH}` giving the JSON's length",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}

health_router = APIRouter(prefix="/v2/health", tags=TAGS, responses=_errors(NOT_READY))
router = APIRouter(prefix="/v2", tags=TAGS)


@health_router.get("/live", response_model=ServerLive, summary="v2: the server is live (open, like /healthz)")
def server_live() -> ServerLive:
    return ServerLive(live=True)


@health_router.get("/ready", response_model=ServerReady, summary="v2: the models are loaded (as /readyz; 503 before)")
def server_ready(_: RegistryDep) -> ServerReady:
    return ServerReady(ready=True)


@router.get("", response_model=ServerMetadata, responses=_errors(UNAUTHORIZED), summary="v2: server metadata")
def server_metadata(request: Request) -> ServerMetadata:
    return ServerMetadata(name=request.app.title, version=request.app.version, extensions=EXTENSIONS)


async def served_model(registry: RegistryDep, model_name: str) -> AnyModel:
    """The model named in the path, shipped or imported; 404 listing the served models."""
    return find_served(registry, model_name)


async def known_version(model: Annotated[AnyModel, Depends(served_model)], model_version: str) -> None:
    """404 unless the path's version is one the model has (only "1")."""
    if model_version != VERSION:
        raise NotFound(f"model {model.name!r} has no version {excerpt(model_version)}; versions: {VERSION}")


Served = Annotated[AnyModel, Depends(served_model)]
Body = Annotated[bytes, Depends(inference_body)]
HeaderLength = Annotated[
    str | None,
    Header(
        alias=HEADER_LENGTH,
        description="length of the JSON document when binary tensors follow it (binary tensor data extension)",
    ),
]


def model_routes(
    path: str, method: str, *, summary: str, versioned_summary: str, **options: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated endpoint twice: at ``/models/{model_name}<path>``, and at
    ``/models/{model_name}/versions/{model_version}<path>`` as ``versioned_<name>``, which answers 404 for a
    version the model does not have."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(f"/models/{{model_name}}{path}", endpoint, methods=[method], summary=summary, **options)
        router.add_api_route(
            f"/models/{{model_name}}/versions/{{model_version}}{path}",
            endpoint,
            methods=[method],
            name=f"versioned_{endpoint.__name__}",
            summary=versioned_summary,
            dependencies=[Depends(known_version)],
            **options,
        )
        return endpoint

    return register


@model_routes(
    "",
    "GET",
    summary="v2: model metadata",
    versioned_summary="v2: model metadata of a version",
    response_model=ModelMetadata,
    responses=LOOKUP_ERRORS,
)
def metadata(model: Served) -> ModelMetadata:
    return imported_metadata(model) if isinstance(model, ImportedLoadedModel) else model_metadata(model)


@model_routes(
    "/ready",
    "GET",
    summary="v2: model ready",
    versioned_summary="v2: model version ready",
    response_model=ModelReady,
    responses=LOOKUP_ERRORS,
)
def model_ready(model: Served) -> ModelReady:
    return ModelReady(name=model.name, ready=True)


@model_routes(
    "/infer",
    "POST",
    summary="v2: inference (JSON or binary tensors)",
    versioned_summary="v2: inference on a version (JSON or binary tensors)",
    response_model=InferenceResponse,
    responses={**INFER_ERRORS, **INFER_ANSWER},
    openapi_extra=INFER_BODY,
)
async def infer(
    model: Served, body: Body, settings: SettingsDep, request: Request, header_length: HeaderLength = None
) -> Response:
    # A request of at most INLINE_BYTES that no other request is in flight beside runs on the event loop when an
    # inference slot is free (cheaper than a thread hop, as /v1/classify). With micro-batching, such a request beside
    # others is read on the loop and shares a run with the others waiting (service.runtime.microbatching), up to
    # micro_batch_max images. Everything else is read, run and answered in a worker thread, off the busy loop.
    read = read_imported_inference if isinstance(model, ImportedLoadedModel) else read_inference
    arguments = (body, header_length, model, settings.max_batch_images, settings.max_response_bytes)
    batchers, alone = request.app.state.batchers, request.app.state.in_flight.alone()
    if len(body) > INLINE_BYTES or not (alone or batchers is not None):
        return await run_in_threadpool(lambda: _answer(model, read(*arguments)))
    call = read(*arguments)
    inline = alone and len(call.images) <= INLINE_IMAGES
    results = layers_of(model, call.images, list(call.outputs), now=True) if inline else None
    if results is None:
        batcher = batchers.of(model) if batchers is not None and isinstance(model, LoadedModel) else None
        if batcher is None or not batcher.takes(len(call.images)):
            return await run_in_threadpool(_answer, model, call)
        results = await asyncio.wrap_future(batcher.submit(call.images, list(call.outputs)))
    if answer_size_bound(model, len(call.images), call.outputs) <= INLINE_BYTES:
        return inference_response(model, call, results)
    return await run_in_threadpool(inference_response, model, call, results)


def _answer(model: AnyModel, call: InferenceCall) -> Response:
    """The answer to ``call`` from a run of its own."""
    return inference_response(model, call, layers_of(model, call.images, list(call.outputs)))
