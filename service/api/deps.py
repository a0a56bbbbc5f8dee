"""FastAPI dependencies: settings, the model registry, the chosen model, the uploaded digit, output options."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, Field, create_model
from starlette.concurrency import run_in_threadpool

from service.api.capabilities import refusal
from service.api.errors import ApiError, NotFound, Unprocessable
from service.api.settings import Settings
from service.api.uploads import MAX_SINGLE_PARTS, batch_upload, image_bytes
from service.attribution import offered_parameters
from service.attribution.inputs import Parameter, Range
from service.attribution.method import parameter_text
from service.contract import CLASSIFIER
from service.featuremaps.norms import THRESHOLD_RULES
from service.images import decoding
from service.images.npy import check_count, parse_npy
from service.images.preprocessing import parse_input_npy, upload_input
from service.quality.report import METRICS, MetricLimits
from service.runtime.imported import ImportedLoadedModel
from service.runtime.registry import LoadedModel, Registry
from service.studies.digit_judge import DigitJudgeModel
from service.studies.explain import Limits
from service.studies.imported_gradients import GradientLimits
from service.studies.statistics import DATASET_THRESHOLD, DatasetStatistics, LoadedStatistics


async def app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]
Format = Annotated[Literal["json", "png"], Query(description="`json` (default) or `png`")]
Norm = Annotated[Literal["l2", "l1", "max"], Query(description="`l2` (Frobenius, the paper's), `l1` or `max`")]


async def get_registry(request: Request) -> Registry:
    """The registry loaded at start-up; 503 while it is not there yet."""
    return loaded_registry(request)


def loaded_registry(request: Request) -> Registry:
    """``get_registry`` as a plain call, for dependencies on the hot path (one dependency less to resolve)."""
    registry = getattr(request.app.state, "registry", None)
    if registry is None:
        raise ApiError("models are not loaded yet; retry shortly", status=503, headers={"Retry-After": "1"})
    return registry


RegistryDep = Annotated[Registry, Depends(get_registry)]


AnyModel = LoadedModel | ImportedLoadedModel
ModelName = Annotated[
    str,
    Query(
        description="which model: `classifier` (default), `autoencoder`, a variant such as `tanh-sgd`, or an "
        "imported model by its name (see GET /v1/models)"
    ),
]


def find_served(registry: Registry, name: str) -> AnyModel:
    """The served model called ``name``, shipped or imported; 404 listing the models that exist."""
    found = registry.find(name)
    if found is None:
        raise NotFound(f"unknown model {name!r}; available: {', '.join(registry.names)}")
    return found


def find_model(registry: Registry, name: str, request: Request | None = None) -> LoadedModel:
    """The shipped model called ``name``; 422 for an imported one (naming the routes that serve it), 404 listing
    the models that exist."""
    found = find_served(registry, name)
    if isinstance(found, ImportedLoadedModel):
        raise refusal(name, request.url.path if request is not None else "")
    return found


async def get_model(request: Request, model: ModelName = "classifier") -> LoadedModel:
    """The shipped model named by ``?model=`` (routes that serve only the shipped models: 422 for an imported one)."""
    return find_model(loaded_registry(request), model, request)


async def get_any_model(request: Request, model: ModelName = "classifier") -> AnyModel:
    """The model named by ``?model=``, shipped or imported."""
    return find_served(loaded_registry(request), model)


AnyModelDep = Annotated[AnyModel, Depends(get_any_model)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]


def scale_param(default: int):
    """A ``?scale=`` dependency with its own default, bounded by ``CONVLENS_MAX_SCALE``."""

    async def scale_query(
        settings: SettingsDep,
        scale: Annotated[int, Query(description="PNG upscaling factor (nearest neighbour)")] = default,
    ) -> int:
        if not 1 <= scale <= settings.max_scale:
            raise Unprocessable(f"scale must be between 1 and {settings.max_scale}, got {scale}")
        return scale

    return scale_query


PICTURE_SCALE = 8  # a picture's default upscaling: a 28x28 digit drawn 224 px wide
Scale = Annotated[int, Depends(scale_param(PICTURE_SCALE))]
GridScale = Annotated[int, Depends(scale_param(2))]


async def threshold_query(
    threshold: Annotated[
        str,
        Query(
            description="`mean` (the paper's rule: the mean of this image's norms in the layer), `median`, or a number"
        ),
    ] = "mean",
) -> str | float:
    """The threshold rule name, or a fixed number."""
    return _threshold_rule(threshold, THRESHOLD_RULES)


def _threshold_rule(threshold: str, rules: tuple[str, ...]) -> str | float:
    if threshold in rules:
        return threshold
    try:
        value = float(threshold)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise Unprocessable(f"threshold must be one of {', '.join(rules)} or a number, got {threshold!r}")
    return value


Threshold = Annotated[str | float, Depends(threshold_query)]


async def dataset_threshold_query(
    threshold: Annotated[
        str,
        Query(
            description="`mean` (the paper's rule: the mean of this image's norms in the layer), `median`, `dataset` "
            "(the layer's mean norm over every feature map of the test set, from the shipped statistics), "
            "or a number"
        ),
    ] = "mean",
) -> str | float:
    """Like ``threshold_query``, and ``dataset``."""
    return _threshold_rule(threshold, (*THRESHOLD_RULES, DATASET_THRESHOLD))


DatasetThreshold = Annotated[str | float, Depends(dataset_threshold_query)]


async def uploaded_digit(
    request: Request,
    preprocess: Annotated[
        Literal["auto", "mnist", "none"],
        Query(
            description="`mnist`: centre and scale like MNIST (photos, scans, dark-on-light); `none`: a 28x28 image "
            "as it is; `auto`: a 28x28 light-on-dark image as it is, `mnist` for everything else"
        ),
    ] = "auto",
) -> np.ndarray:
    """The uploaded image, decoded within the limits and prepared as a 28x28 float32 digit in [0, 1]; for an
    imported model (``?model=NAME``), as that model's input of one image through its own preprocessing."""
    settings: Settings = request.app.state.settings  # read here: one dependency less to resolve per request
    data = await image_bytes(request)
    imported = imported_model(request)
    if imported is not None and len(data) <= decoding.INLINE_BYTES:
        header = decoding.check_header(data, max_pixels=settings.max_pixels, max_aspect_ratio=settings.max_aspect_ratio)
        if decoding.cheap_to_decode(data, header):  # as below: cheaper on the event loop than a thread hop
            return _model_input(data, settings, imported, preprocess)
    if imported is not None:
        return await run_in_threadpool(_model_input, data, settings, imported, preprocess)
    if len(data) > decoding.INLINE_BYTES:
        return await run_in_threadpool(_prepare, data, settings, preprocess)
    # a small file: the header walk (a fixed budget) is cheap enough for the event loop, and decoding skips it
    header = decoding.check_header(data, max_pixels=settings.max_pixels, max_aspect_ratio=settings.max_aspect_ratio)
    if decoding.cheap_to_decode(data, header):
        return _prepare(data, settings, preprocess, decoding.decode_checked)
    return await run_in_threadpool(_prepare, data, settings, preprocess, decoding.decode_checked)


def _prepare(
    data: bytes, settings: Settings, preprocess: str, decode: Callable[..., np.ndarray] = decoding.decode
) -> np.ndarray:
    """``data`` decoded (by ``decode``: ``decoding.decode_checked`` once its header is checked) and prepared."""
    gray = decode(
        data,
        max_pixels=settings.max_pixels,
        formats=frozenset(settings.image_formats),
        max_aspect_ratio=settings.max_aspect_ratio,
    )
    return decoding.prepare(gray, preprocess)


def imported_model(request: Request) -> ImportedLoadedModel | None:
    """The imported model ``?model=`` names, if it names one (the upload is then prepared for it)."""
    name = request.query_params.get("model")
    registry = getattr(request.app.state, "registry", None)
    if name is None or registry is None:
        return None
    return registry.imported.get(name)


def _model_input(data: bytes, settings: Settings, model: ImportedLoadedModel, preprocess: str) -> np.ndarray:
    """``data`` as ``model``'s input of one image, through its own preprocessing, within the decoding limits."""
    return upload_input(
        data,
        model.manifest,
        max_pixels=settings.max_pixels,
        formats=frozenset(settings.image_formats),
        max_aspect_ratio=settings.max_aspect_ratio,
        mode=preprocess,
    )


async def uploaded_batch(
    request: Request,
    settings: SettingsDep,
    preprocess: Annotated[
        Literal["auto", "mnist", "none"],
        Query(description="for multipart image files, as for a single upload; a .npy array is used as it is"),
    ] = "auto",
) -> np.ndarray:
    """The batch as float32 (N, 28, 28) in [0, 1], in upload order; for an imported model, its inputs
    (N, *its input shape): image files through its preprocessing, a .npy array of its inputs as they are."""
    upload = await batch_upload(request, settings.max_batch_images + MAX_SINGLE_PARTS)
    imported = imported_model(request)
    if imported is not None and isinstance(upload, bytes):
        return await run_in_threadpool(parse_input_npy, upload, settings.max_batch_images, imported.manifest.input)
    if imported is not None:
        check_count(len(upload), settings.max_batch_images)
        return await run_in_threadpool(
            lambda: np.concatenate([_model_input(data, settings, imported, preprocess) for data in upload])
        )
    if isinstance(upload, bytes):
        return await run_in_threadpool(parse_npy, upload, settings.max_batch_images)
    check_count(len(upload), settings.max_batch_images)
    return await run_in_threadpool(lambda: np.stack([_prepare(data, settings, preprocess) for data in upload]))


Digit = Annotated[np.ndarray, Depends(uploaded_digit)]
Batch = Annotated[np.ndarray, Depends(uploaded_batch)]
Filter = Annotated[int, Path(description="filter (channel) index within the layer")]


def statistics_loaded(request: Request) -> LoadedStatistics:
    """Every model's statistics as start-up loaded them; 503 while they are not there yet."""
    loaded = request.app.state.statistics
    if loaded is None:
        raise ApiError("statistics are not loaded yet; retry shortly", status=503)
    return loaded


def loaded_statistics(request: Request, name: str = CLASSIFIER) -> DatasetStatistics:
    """The dataset statistics of model ``name`` (``LoadedStatistics.of``): 404 for a model without any, 503 with the
    reason (and the command that makes them) when they could not be loaded."""
    return statistics_loaded(request).of(name)


async def get_statistics(request: Request, model: ModelDep) -> DatasetStatistics:
    """The statistics of the model named by ``?model=``, as a dependency."""
    return loaded_statistics(request, model.name)


StatisticsDep = Annotated[DatasetStatistics, Depends(get_statistics)]


async def get_any_statistics(request: Request, model: AnyModelDep) -> DatasetStatistics:
    """The statistics of the model named by ``?model=``, shipped or imported (404 naming the command that makes
    them for an imported model without any)."""
    return loaded_statistics(request, model.name)


AnyStatisticsDep = Annotated[DatasetStatistics, Depends(get_any_statistics)]


def judge_of(request: Request, model: AnyModel) -> DigitJudgeModel | None:
    """The calibrated digit judge of ``model`` (``LoadedStatistics.judge``), or None when there is none."""
    loaded = request.app.state.statistics
    return None if loaded is None else loaded.judge(model.name)


def layer_rule(request: Request, model: AnyModel, layer: str, norm: str, rule: str | float) -> str | float:
    """The rule to apply to ``layer``'s norms (``LoadedStatistics.layer_rule``: ``dataset`` becomes that layer's
    dataset threshold); 404 for a model without statistics."""
    return statistics_loaded(request).layer_rule(model.name, layer, norm, rule)


async def attribution_limits(settings: SettingsDep) -> Limits:
    """The most work one attribution request may ask for (``CONVLENS_MAX_ATTRIBUTION_*``, ``…_OCCLUSION_SQUARES``)."""
    return Limits(
        max_steps=settings.max_attribution_steps,
        max_samples=settings.max_attribution_samples,
        max_squares=settings.max_occlusion_squares,
        max_perturbations=settings.max_attribution_perturbations,
        max_segments=settings.max_attribution_segments,
        max_batch_work=settings.max_attribution_batch_work,
    )


AttributionLimits = Annotated[Limits, Depends(attribution_limits)]


async def metric_limits(settings: SettingsDep) -> MetricLimits:
    """What the quality metrics of one attribution request may cost (``CONVLENS_MAX_METRIC_WORK``,
    ``CONVLENS_METRIC_*``)."""
    return MetricLimits(
        sensitivity_samples=settings.metric_sensitivity_samples,
        sensitivity_radius=settings.metric_sensitivity_radius,
        correlation_runs=settings.metric_correlation_runs,
        correlation_subset=settings.metric_correlation_subset,
        max_work=settings.max_metric_work,
        sanity_steps=settings.metric_sanity_steps,
    )


MetricLimitsDep = Annotated[MetricLimits, Depends(metric_limits)]
Metrics = Annotated[
    str | None,
    Query(
        description="quality metrics of the map: `all`, or a comma-separated list of "
        f"{', '.join(f'`{name}`' for name in METRICS)} (`completeness_gap`: integrated gradients only); JSON: "
        "`metrics` in the answer (a batch: in each item), PNG: the `X-Attribution-Metrics` header, a batch's .npy: "
        "their means in `X-Attribution-Metrics-Summary`. Their cost (images x each metric's passes) is bounded by "
        "`CONVLENS_MAX_METRIC_WORK` (413 above, before any map is computed)",
    ),
]


async def gradient_limits(registry: RegistryDep, settings: SettingsDep) -> GradientLimits:
    """The most backward work one request may ask of an imported model (``CONVLENS_MAX_GRADIENT_WORK``), what the
    models' memory budget has left for its backward graphs and how many one model keeps
    (``CONVLENS_MAX_BACKWARD_GRAPHS``)."""
    repository = registry.repository
    free = repository.free_bytes() if repository is not None else settings.models_memory_bytes
    return GradientLimits(
        max_work=settings.max_gradient_work, free_bytes=free, kept_sessions=settings.max_backward_graphs
    )


GradientLimitsDep = Annotated[GradientLimits, Depends(gradient_limits)]


class AttributionTarget(BaseModel):
    """The class an attribution request explains; ``AttributionParams`` adds the methods' parameters."""

    target: int | None = Field(
        None,
        description="the class to explain, 0-9 (an imported model's: 0 to its classes - 1; default: the predicted one)",
    )

    def method_parameters(self) -> dict[str, Any]:
        """The method parameters the request set (all but ``target``), for ``service.studies.explain``."""
        return self.model_dump(exclude={"target"}, exclude_none=True)


def _query_type(spec: Parameter) -> type:
    """The type a query parameter of ``spec`` is read as."""
    if not isinstance(spec, Range):
        return str
    return int if spec.integer else float


AttributionParams = create_model(
    "AttributionParams",
    __base__=AttributionTarget,
    __doc__="The query of an attribution request: the class to explain and every parameter a method offers (the "
    "methods' own text), each None for its default (``service.studies.explain`` checks the ones the method reads "
    "against its range and the limits).",
    **{
        name: (_query_type(spec) | None, Field(None, description=parameter_text(method, spec)))
        for name, (method, spec) in offered_parameters().items()
    },
)
AttributionQuery = Annotated[AttributionParams, Query()]
