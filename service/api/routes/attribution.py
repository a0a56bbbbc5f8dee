"""Why the network decides: attribution maps of one upload or a batch (``service.studies.explain``, the math in
``service.attribution``), and their faithfulness over the test set (``python -m training analyze``)."""

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import Response

from service.api.deps import (
    PICTURE_SCALE,
    AnyModelDep,
    AnyStatisticsDep,
    AttributionLimits,
    AttributionQuery,
    Batch,
    Digit,
    Format,
    GradientLimitsDep,
    MetricLimitsDep,
    Metrics,
    Scale,
)
from service.api.error_responses import ERRORS, STATISTICS_ERRORS
from service.api.errors import NotFound
from service.api.render import (
    NPY,
    PNG,
    PNG_RESPONSE,
    json_response,
    npy_response,
    rgb_png_response,
    wants_npy,
)
from service.api.schemas import (
    Attribution,
    AttributionBatch,
    AttributionFaithfulness,
    AttributionItem,
    AttributionMethodStatistics,
    AttributionMetrics,
    AttributionStatisticsAnswer,
    QualityCell,
    QualityRow,
    QualityTableAnswer,
)
from service.api.uploads import BATCH_BODY, IMAGE_BODY
from service.attribution import METHODS
from service.attribution.method import Limits, methods_text
from service.contract import QualityTable, plot_name
from service.pictures.heatmap import bar_colours, heat_map
from service.pictures.legend import with_legend
from service.quality.summary import ranked
from service.runtime.imported import ImportedLoadedModel
from service.runtime.registry import LoadedModel
from service.studies.any_model_explain import explain_any, seen
from service.studies.batch_quality import batch_quality, check_batch_metrics, summary_header
from service.studies.explain import Explanation, explain, explain_now
from service.studies.explanation_quality import explanation_quality, metrics_asked
from service.studies.imported_quality import imported_metrics_asked, imported_quality

router = APIRouter(prefix="/v1", tags=["attribution"])

COLORMAP_HEADER, RANGE_HEADER = "X-Colormap", "X-Colormap-Range"
TARGET_HEADER, PROBABILITY_HEADER = "X-Attribution-Target", "X-Attribution-Probability"
METRICS_HEADER, METRICS_SUMMARY_HEADER = "X-Attribution-Metrics", "X-Attribution-Metrics-Summary"
# the curves' fields of a statistics answer, null for an analysis with the quality table alone
CURVE_FIELDS = (
    "images",
    "target",
    "fractions",
    "random_deletion_auc",
    "random_insertion_auc",
    "random_deletion",
    "random_insertion",
)
LEGEND_HEADERS = (COLORMAP_HEADER, RANGE_HEADER, TARGET_HEADER, PROBABILITY_HEADER)
Method = Annotated[str, Path(description=methods_text(METHODS))]
Legend = Annotated[
    bool,
    Query(
        description="PNG only: a colour bar under the heat map with the values of `X-Colormap-Range` at its ends and a "
        "one-line caption (method, target, probability); `false`: the heat map alone, 28 x `scale` px square"
    ),
]
PNG_HEAT_MAP = {
    200: {
        "content": {PNG: {"schema": {"type": "string", "format": "binary"}}},
        "description": "a PNG heat map over the input (default; the legend in `X-Colormap` and `X-Colormap-Range`), "
        "or JSON with `format=json`",
    }
}
NPY_ANSWER = {
    200: {
        "content": {NPY: {"schema": {"type": "string", "format": "binary"}}},
        "description": "JSON, or with `Accept: application/x-npy` a .npy float32 array (N, ...) of the raw maps "
        "(with `metrics`: their means over the batch in `X-Attribution-Metrics-Summary`)",
    }
}


def _grid(array: np.ndarray) -> list[list[float]]:
    return array.tolist()


@router.post(
    "/attribution/{method}",
    response_model=Attribution,
    responses=ERRORS | PNG_HEAT_MAP,
    openapi_extra=IMAGE_BODY,
    summary="Why the classifier decides: an attribution map of the upload for a class, as a heat map over the "
    "input (PNG, default) or the raw map (JSON)",
)
def attribution(
    method: Method,
    digit: Digit,
    model: AnyModelDep,
    limits: AttributionLimits,
    gradients: GradientLimitsDep,
    query: AttributionQuery,
    metric_limits: MetricLimitsDep,
    faithfulness: Annotated[
        bool, Query(description="JSON only: add this map's deletion and insertion areas (and a random order's)")
    ] = False,
    format: Format = "png",
    scale: Scale = PICTURE_SCALE,
    labels: Legend = True,
    metrics: Metrics = None,
) -> Response:
    asked = _metrics_asked(model, method, metrics)
    if isinstance(model, ImportedLoadedModel):
        result, background = _imported(
            model, digit, method, query, limits, gradients, faithfulness and format == "json"
        )
    else:
        result, background = (
            explain(
                model, digit, method, query.target, query.method_parameters(), limits, faithfulness and format == "json"
            ),
            digit,
        )
    measured = None
    if asked and isinstance(model, ImportedLoadedModel):
        measured = imported_quality(model, digit, result, asked, metric_limits, limits, gradients)[0]
    elif asked:
        measured = explanation_quality(model, digit, result, asked, metric_limits)[0]
    if format == "png":
        return _heat_map_answer(result, background, measured, scale, labels)
    answer = _single(model.name, result)
    answer.metrics = AttributionMetrics(**measured) if measured is not None else None
    return json_response(answer)


def plain_answer_now(method: str, digit: np.ndarray, model: LoadedModel, limits: Limits) -> Response | None:
    """The answer to a request that leaves every parameter at its default (the PNG heat map with its legend) of a
    shipped model, computed on the calling thread when ``explain_now`` can run it at once; None otherwise (the
    caller runs the endpoint in a worker thread)."""
    result = explain_now(model, digit, method, limits)
    return None if result is None else _heat_map_answer(result, digit, None, PICTURE_SCALE, labels=True)


def _heat_map_answer(
    result: Explanation, background: np.ndarray, measured: dict[str, Any] | None, scale: int, labels: bool
) -> Response:
    """The map as a PNG heat map over ``background``, with its legend under it when ``labels``, and the legend's
    values (and the metrics ``measured``, if any) in headers."""
    picture = heat_map(background, result.pixels[0], result.signed, scale)
    headers = {
        COLORMAP_HEADER: picture.colormap,
        RANGE_HEADER: f"{picture.low:.6g},{picture.high:.6g}",
        TARGET_HEADER: str(int(result.targets[0])),
        PROBABILITY_HEADER: f"{float(result.probabilities[0]):.6g}",
    }
    if measured is not None:
        headers[METRICS_HEADER] = _metrics_header(measured)
    if not labels:
        return rgb_png_response(picture.rgb, headers)
    target, probability = int(result.targets[0]), float(result.probabilities[0])
    text = f"{result.method} for class {target} (p = {probability:.3f}) · {picture.colormap} colour map"
    legend = with_legend(picture.rgb, bar_colours(picture.colormap), picture.low, picture.high, text)
    return rgb_png_response(legend, headers)


def _metrics_asked(model: LoadedModel | ImportedLoadedModel, method: str, metrics: str | None) -> tuple[str, ...]:
    """The quality metrics the request names (checked before any run; 422 naming a metric that cannot apply)."""
    if not metrics:
        return ()
    if isinstance(model, ImportedLoadedModel):
        return imported_metrics_asked(model, method, metrics)
    return metrics_asked(method, metrics)


def _metrics_header(measured: dict[str, Any]) -> str:
    """``X-Attribution-Metrics``: each metric's headline number (an area for the curves; pass or fail for
    sanity; null where undefined), ``name=value`` joined by ``;``."""
    parts = []
    for name, value in measured.items():
        if isinstance(value, dict) and "passes" in value:
            shown = "pass" if value["passes"] else "fail"
        elif isinstance(value, dict):
            shown = f"{value['area']:.6g}"
        else:
            shown = "null" if value is None else f"{value:.6g}"
        parts.append(f"{name}={shown}")
    return ";".join(parts)


def _imported(
    model: ImportedLoadedModel,
    image: np.ndarray,
    method: str,
    query: AttributionQuery,
    limits: AttributionLimits,
    gradients: GradientLimitsDep,
    with_faithfulness: bool,
) -> tuple[Explanation, np.ndarray]:
    """An imported model's map of ``method`` and the image as the model saw it (what the heat map is drawn over)."""
    result = explain_any(
        model, image, method, query.target, query.method_parameters(), limits, gradients, with_faithfulness
    )
    return result, seen(model, image)


def _single(model: str, result: Explanation) -> Attribution:
    checked = None
    if result.faithfulness is not None:
        f = result.faithfulness
        checked = AttributionFaithfulness(
            deletion_auc=float(f.deletion_auc[0]),
            insertion_auc=float(f.insertion_auc[0]),
            random_deletion_auc=float(f.random_deletion_auc[0]),
            random_insertion_auc=float(f.random_insertion_auc[0]),
        )
    return Attribution(
        model=model,
        method=result.method,
        target=int(result.targets[0]),
        predicted=int(result.predicted[0]),
        probability=float(result.probabilities[0]),
        signed=result.signed,
        shape=list(result.values.shape[1:]),
        values=_grid(result.values[0]),
        pixels=_grid(result.pixels[0]) if result.answers_pixels else None,
        parameters=result.parameters,
        faithfulness=checked,
    )


@router.post(
    "/attribution/{method}/batch",
    response_model=AttributionBatch,
    responses=ERRORS | NPY_ANSWER,
    openapi_extra=BATCH_BODY,
    summary="Attribution maps of many digits in one request (a .npy array or multipart files), in input order: "
    "JSON, or a .npy (N, ...) with `Accept: application/x-npy`",
)
def attribution_batch(
    method: Method,
    images: Batch,
    model: AnyModelDep,
    limits: AttributionLimits,
    gradients: GradientLimitsDep,
    query: AttributionQuery,
    metric_limits: MetricLimitsDep,
    maps: Annotated[
        Literal["values", "pixels"],
        Query(
            description="`.npy` only: the raw maps (`values`, default) or the maps over the 28x28 input (`pixels`: "
            "Grad-CAM resized, occlusion's per-pixel means; an imported model's input maps with their channels summed)"
        ),
    ] = "values",
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
    metrics: Metrics = None,
) -> Response:
    asked = _metrics_asked(model, method, metrics)
    if asked:
        check_batch_metrics(model, method, query.method_parameters(), asked, len(images), limits, metric_limits)
    if isinstance(model, ImportedLoadedModel):
        result = explain_any(model, images, method, query.target, query.method_parameters(), limits, gradients)
    else:
        result = explain(model, images, method, query.target, query.method_parameters(), limits)
    measured = batch_quality(model, images, result, asked, metric_limits, limits, gradients) if asked else None
    if wants_npy(accept):
        headers = {TARGET_HEADER: ",".join(str(int(t)) for t in result.targets)}
        if measured is not None:
            headers[METRICS_SUMMARY_HEADER] = summary_header(measured)
        return npy_response(getattr(result, maps), headers)
    return json_response(
        AttributionBatch(
            model=model.name,
            method=result.method,
            count=len(result.targets),
            signed=result.signed,
            shape=list(result.values.shape[1:]),
            parameters=result.parameters,
            results=[
                AttributionItem(
                    target=int(t),
                    probability=float(p),
                    values=_grid(v),
                    pixels=_grid(px) if result.answers_pixels else None,
                    metrics=AttributionMetrics(**measured[i]) if measured is not None else None,
                )
                for i, (t, p, v, px) in enumerate(
                    zip(result.targets, result.probabilities, result.values, result.pixels)
                )
            ],
        )
    )


@router.get(
    "/statistics/attribution",
    response_model=AttributionStatisticsAnswer,
    responses=STATISTICS_ERRORS | PNG_RESPONSE,
    summary="Which map to believe: every method's deletion and insertion curves over the first test images, "
    "ranked, and its quality metrics over a seeded sample; PNG: the curves, or the quality table",
)
def attribution_statistics(
    statistics: AnyStatisticsDep,
    model: AnyModelDep,
    format: Format = "json",
    figure: Annotated[
        Literal["curves", "quality"],
        Query(description="PNG only: the deletion and insertion `curves` or the `quality` table ranking the methods"),
    ] = "curves",
) -> Response:
    data = getattr(statistics.data, "attribution", None)  # an unlabelled analysis has neither section
    quality = getattr(statistics.data, "explanation_quality", None)
    if data is None and (quality is None or not isinstance(model, ImportedLoadedModel)):
        # no curves: StatisticsUnavailable saying how to add them, unless an imported model's quality table is there
        # (its analysis has no curves over the first test images)
        statistics.attribution()
    if format == "png":
        name = plot_name("attribution" if figure == "curves" else "explanation-quality")
        png = statistics.plot(name)
        if png is None:
            raise NotFound(
                f"these statistics have no plot {name} (the sweep analyses its variants without plots; the quality "
                "table needs `python -m training analyze --only quality`): ask for format=json"
            )
        return Response(png, media_type=PNG)
    ranked = sorted(data.methods.items(), key=lambda item: item[1].deletion_auc) if data is not None else []
    curves = {} if data is None else {name: getattr(data, name) for name in CURVE_FIELDS}
    return json_response(
        AttributionStatisticsAnswer(
            model=model.name,
            split=statistics.data.split,
            **curves,
            methods=[
                AttributionMethodStatistics(
                    method=name,
                    rank=rank,
                    deletion_auc=entry.deletion_auc,
                    insertion_auc=entry.insertion_auc,
                    deletion=entry.deletion,
                    insertion=entry.insertion,
                    parameters=entry.parameters,
                )
                for rank, (name, entry) in enumerate(ranked, 1)
            ],
            quality=_quality_answer(quality),
        )
    )


def _quality_answer(table: QualityTable | None) -> QualityTableAnswer | None:
    """The quality table with each cell's rank in its column."""
    if table is None:
        return None
    ranks = {
        column: ranked(
            {name: row.metrics[column].mean for name, row in table.methods.items() if column in row.metrics}, better
        )
        for column, better in table.better.items()
    }
    return QualityTableAnswer(
        images=table.images,
        seed=table.seed,
        indices=table.indices,
        target=table.target,
        better=table.better,
        methods=[
            QualityRow(
                method=name,
                parameters=row.parameters,
                metrics=[
                    QualityCell(metric=column, **cell.model_dump(), rank=ranks[column].get(name))
                    for column, cell in row.metrics.items()
                ],
            )
            for name, row in table.methods.items()
        ],
    )
