"""The explanation-quality table ``python -m training analyze`` adds to the statistics: every attribution method's
quality metrics (``service.quality``: deletion and insertion, ROAD most and least relevant first, faithfulness
correlation, max-sensitivity, sparseness, effective complexity, the completeness gap of integrated gradients, and
the sanity checks of Adebayo et al. 2018) over a seeded sample of the test set, each column's mean and spread.

The maps are the service's (``service.studies.explain``, default parameters, the predicted class) and the metrics
the service's (``service.studies.explanation_quality``, default ``MetricLimits``), so a cell is the mean of what
``POST /v1/attribution/{method}/batch?metrics=all`` answers for those images. The sample is small because every
image costs each method hundreds of passes through the model (max-sensitivity re-explains 10 noisy copies, the
sanity checks re-explain on 4 randomised models and for another class): ``QUALITY_IMAGES`` keeps the run for all
methods within a few minutes on 2 cores (``docs/explanation-quality.md`` states the time measured).
``imported_quality_table`` is the same table for an imported model (``analyze --images DIR --model NAME --only
quality``) over the same seeded sample of the dataset's items, every method it serves.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from service.attribution import METHODS
from service.quality.report import MetricLimits
from service.quality.summary import COLUMNS, summary
from service.runtime.imported import ImportedLoadedModel
from service.runtime.registry import LoadedModel
from service.studies.any_model_explain import explain_any, gradient_methods_of, served_methods
from service.studies.explain import Limits, explain
from service.studies.explanation_quality import explanation_quality, metrics_asked
from service.studies.imported_gradients import GradientLimits
from service.studies.imported_quality import imported_metrics_asked, imported_quality

QUALITY_IMAGES = 48
QUALITY_SEED = 0
UNLIMITED = Limits(max_steps=10**6, max_samples=10**6, max_squares=10**6, max_batch_work=10**12)
UNLIMITED_GRADIENTS = GradientLimits(max_work=10**15)
UNBOUNDED = MetricLimits(max_work=10**12)


def quality_sample(total: int, count: int = QUALITY_IMAGES, seed: int = QUALITY_SEED) -> np.ndarray:
    """``count`` indices of a split of ``total`` images drawn without replacement from generator ``seed``, sorted."""
    return np.sort(np.random.default_rng(seed).choice(total, size=min(count, total), replace=False))


def quality_table(
    model: LoadedModel,
    images: np.ndarray,
    indices: np.ndarray,
    methods: tuple[str, ...] = tuple(METHODS),
    seed: int = QUALITY_SEED,
    progress: bool = True,
) -> dict:
    """Every one of ``methods``' metrics over the uint8 ``images`` (N, 28, 28) at ``indices`` of the split (drawn
    with ``seed``): per method and column, the mean and spread over the images (``service.quality.summary``), the
    parameters used and the seconds taken. One progress step per method."""
    inputs = images.astype(np.float32) / 255.0

    def measured(name: str) -> tuple[list[dict], dict]:
        maps = explain(model, inputs, name, limits=UNLIMITED)
        return explanation_quality(model, inputs, maps, metrics_asked(name, "all"), UNBOUNDED), maps.parameters

    return _table(measured, methods, len(images), indices, seed, progress)


def imported_methods(model: ImportedLoadedModel) -> tuple[str, ...]:
    """The attribution methods ``model`` serves: every forward-run method, and the gradient ones it has gradients
    for (``gradient_methods_of``)."""
    gradient, _ = gradient_methods_of(model)
    return tuple(name for name in served_methods() if METHODS[name].forward_runs is not None or name in gradient)


def imported_quality_table(
    model: ImportedLoadedModel,
    inputs: np.ndarray,
    indices: np.ndarray,
    methods: tuple[str, ...] | None = None,
    seed: int = QUALITY_SEED,
    progress: bool = True,
) -> dict:
    """``quality_table`` of an imported model: ``inputs`` its preprocessed inputs (N, its layout) of the dataset's
    items at ``indices``, every method it serves (or ``methods``) with the metrics that apply
    (``service.studies.imported_quality``: ``?model=NAME&metrics=all`` of the batch route)."""

    def measured(name: str) -> tuple[list[dict], dict]:
        maps = explain_any(model, inputs, name, limits=UNLIMITED, gradient_limits=UNLIMITED_GRADIENTS)
        names = imported_metrics_asked(model, name, "all")
        return imported_quality(model, inputs, maps, names, UNBOUNDED, UNLIMITED, UNLIMITED_GRADIENTS), maps.parameters

    return _table(measured, methods or imported_methods(model), len(inputs), indices, seed, progress)


def _table(
    measured: Callable[[str], tuple[list[dict], dict]],
    methods: tuple[str, ...],
    images: int,
    indices: np.ndarray,
    seed: int,
    progress: bool,
) -> dict:
    """The table of ``methods``, each method's rows and parameters from ``measured``; one progress step each."""
    rows = {}
    with tqdm(methods, desc="explanation quality", unit="method", disable=not progress) as bar:
        for name in bar:
            bar.set_postfix_str(name)
            started = time.perf_counter()
            found, parameters = measured(name)
            rows[name] = {
                "metrics": summary(found),
                "parameters": parameters,
                "seconds": time.perf_counter() - started,
            }
    return {
        "images": int(images),
        "seed": seed,
        "indices": [int(i) for i in indices],
        "target": "predicted",
        "better": {column: better for column, (_, better) in COLUMNS.items()},
        "methods": rows,
    }
