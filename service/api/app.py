"""create_app(): the FastAPI application with its routers, middleware, error handlers and model loading."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from threadpoolctl import threadpool_limits

from service.api.errors import install_error_handlers
from service.api.middleware.admission_control import AdmissionControl, InFlight
from service.api.middleware.attribution_shortcut import AttributionShortcut
from service.api.middleware.auth import ApiKeyGate, require_api_key
from service.api.middleware.caching import FixedContentCaching
from service.api.middleware.classify_shortcut import ClassifyShortcut
from service.api.middleware.infer_shortcut import InferShortcut
from service.api.middleware.monitoring import Metrics, RequestMonitor
from service.api.routes import (
    activations,
    active_filters,
    attribution,
    autoencoder,
    classify,
    compare,
    deconvolution,
    docs,
    evolution,
    filters,
    health,
    inference_protocol,
    inspect,
    invariance,
    metrics,
    models,
    optimized,
    page,
    repository,
    statistics,
)
from service.api.settings import Settings, get_settings
from service.runtime.imported import ImportLimits, Repository, load_imported
from service.runtime.inference_gate import InferenceGate
from service.runtime.microbatching import MicroBatchers
from service.runtime.registry import load_registry
from service.studies.classification import layers_of
from service.studies.digit_judge_graph import attach_judges
from service.studies.evolution import load_all_evolution
from service.studies.statistics import load_all_statistics

DESCRIPTION = """Look inside the paper's MNIST convolutional network: classify a digit, read every layer's
activations, find the active filters, project feature maps back to pixels (deconvolution) and run the
autoencoder. Upload an image as multipart/form-data (field `image`) or as the raw request body.
When API keys are configured, every /v1 and /v2 route (but /v2/health) needs `Authorization: Bearer <key>` or
`X-API-Key: <key>`. /v2 speaks the Open Inference Protocol (KServe v2) with binary tensors.

Limits of this deployment (environment variables `CONVLENS_*`, see the README):
- request body at most {max_upload_bytes:,} bytes (413), images at most {max_pixels:,} pixels (413),
  formats {formats} (415), batches at most {max_batch_images:,} images (413), PNG `scale` at most {max_scale} (422),
  /v2 inference answers at most {max_response_bytes:,} bytes of tensors (413);
- at most {max_concurrent_inferences} inferences at once: a request that waits {inference_wait_seconds:g} s for a slot
  gets 503 with Retry-After; a request not answered within {request_timeout_seconds:g} s gets 503."""

OPEN_ROUTERS = (health, metrics, page)
# Response headers a page on another origin may read (the heat map's legend).
EXPOSED_HEADERS = attribution.LEGEND_HEADERS
API_ROUTERS = (
    models,
    classify,
    activations,
    active_filters,
    deconvolution,
    compare,
    autoencoder,
    inspect,
    statistics,
    filters,
    inference_protocol,
    repository,
    evolution,
    invariance,
    optimized,
    attribution,
)


OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect"})


def is_open_path(path: str) -> bool:
    """Paths that do no CPU work worth admitting: health, metrics, the page and the API description."""
    return path in OPEN_PATHS or path in page.PATHS or path.startswith(("/v2/health/", "/docs/"))


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application; the models are loaded and verified at start-up (``/readyz`` answers 503 until then)."""
    settings = settings or get_settings()
    telemetry = Metrics()
    gate = InferenceGate(
        settings.max_concurrent_inferences,
        settings.inference_wait_seconds,
        observe=telemetry.observe_inference,
        on_busy=telemetry.busy.labels("inference").inc,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # numpy's matrix products here are small (the digit judge, the attribution maths), and OpenBLAS's idle threads
        # spin for a while after each one, taking the cores from onnxruntime: a 1,000-image batch took 130 ms with
        # them, 86 ms without (in-process, the same app)
        threadpool_limits(1, user_api="blas")
        registry = load_registry(
            settings.model_dir, settings.intra_op_threads, gate, batch_threads=settings.batch_threads
        )
        limits = ImportLimits(settings.max_imported_models, settings.models_memory_bytes, registry.shipped_bytes)
        threads = (settings.intra_op_threads, settings.batch_threads)
        served, skipped = load_imported(settings.model_dir, gate, *threads, limits)
        registry.repository = Repository(settings.model_dir, gate, limits, served, skipped, *threads)
        app.state.registry = registry
        app.state.statistics = load_all_statistics(settings.model_dir, app.state.registry)
        attach_judges(app.state.registry, app.state.statistics)
        app.state.evolution = load_all_evolution(settings.model_dir, app.state.registry)
        if settings.micro_batching:
            app.state.batchers = MicroBatchers(
                layers_of,
                settings.micro_batch_window_ms / 1000,
                settings.micro_batch_max,
                telemetry.microbatch_size.observe,
            )
        # what start-up made lives as long as the app: out of the collector's way, since a full collection over it
        # made the first seconds' slowest answers (first 5 s at c=16: p99 11-14 ms against 16-66 ms, 3 rounds)
        gc.freeze()
        yield
        gc.unfreeze()  # collectable again once the app is gone (tests make many)
        if app.state.batchers is not None:
            app.state.batchers.close()
        app.state.registry = app.state.statistics = app.state.evolution = app.state.batchers = None

    description = DESCRIPTION.format(**settings.model_dump(), formats=", ".join(settings.image_formats))
    app = FastAPI(
        title="convlens",
        version="0.1.0",
        description=description,
        lifespan=lifespan,
        docs_url=None,  # routes/docs.py serves /docs with its assets, no CDN
        redoc_url=None,  # ReDoc would fetch its logo from a CDN
        openapi_url="/openapi.json" if settings.docs else None,
        redirect_slashes=False,  # a redirect would be built from the client's Host header
        # the service's own Prometheus metrics and access log; FastAPI's OpenTelemetry hooks would ask for their
        # providers on every request (3 us) to find none configured
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings, app.state.metrics, app.state.in_flight = settings, telemetry, InFlight()
    app.state.registry = app.state.statistics = app.state.evolution = app.state.batchers = None
    # The last added runs first: CORS (so that every answer, refusals included, carries its headers), then the
    # monitor (timeout, request ID, metrics, access log), then the API key gate (401 before any body byte is read),
    # then admission control, then caching, then the shortcuts
    # for plain classifications, attribution maps and v2 inference, then the routes.
    app.add_middleware(InferShortcut, router=inference_protocol.router)
    app.add_middleware(AttributionShortcut, router=attribution.router, answer_now=attribution.plain_answer_now)
    app.add_middleware(ClassifyShortcut, router=classify.router)
    app.add_middleware(FixedContentCaching, max_age=settings.cache_max_age_seconds, private=bool(settings.api_keys))
    app.add_middleware(
        AdmissionControl,
        metrics=telemetry,
        open_path=is_open_path,
        max_body_bytes=settings.max_upload_bytes,
        max_buffered_bytes=settings.max_buffered_upload_bytes,
        work_slots=settings.max_concurrent_work,
        wait_seconds=settings.work_wait_seconds,
        max_in_flight=settings.max_in_flight_requests,
        heavy_cost=settings.heavy_request_cost,
        cost_limits=(
            settings.max_batch_images,
            settings.max_occlusion_squares,
            max(settings.max_attribution_steps, settings.max_attribution_samples),
        ),
        max_pending_answer_bytes=settings.max_pending_answer_bytes,
        in_flight=app.state.in_flight,
    )
    app.add_middleware(ApiKeyGate, keys=settings.api_keys)
    app.add_middleware(
        RequestMonitor,
        metrics=telemetry,
        request_timeout=settings.request_timeout_seconds,
        max_output_pixels=settings.max_output_pixels,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["*"],
        expose_headers=list(EXPOSED_HEADERS),
    )
    install_error_handlers(app)
    for module in OPEN_ROUTERS:
        app.include_router(module.router)
    if settings.docs:
        app.include_router(docs.router)
    app.include_router(inference_protocol.health_router)
    for module in API_ROUTERS:
        app.include_router(module.router, dependencies=[Depends(require_api_key)])
    return app
