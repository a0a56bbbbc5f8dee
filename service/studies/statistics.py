"""The dataset statistics shipped beside the models (``python -m training analyze``): loaded, verified, looked up.

``statistics.json`` records the SHA-256 of the classifier it was computed from and of every file it refers to
(``top_images.npz``, ``plots/*.png``); start-up checks all of them. Statistics are optional: when they are
absent, stale (another classifier) or damaged, the service still starts, and the endpoints that need them
answer 503 with the reason and the command that makes them. An imported model's statistics are in its own folder
(``models/imported/NAME/``), as ``statistics.json`` or, for a dataset without labels,
``unlabelled_statistics.json`` (the layer-wide parts only: the per-class lookups raise ``NoLabels``). Pure numpy,
no web code.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.contract import (
    CLASSIFIER,
    STATISTICS_FILE,
    STATISTICS_FORMAT,
    STATISTICS_NORM,
    SUMMARY,
    UNLABELLED_STATISTICS_FILE,
    AttributionStatistics,
    ContractError,
    FileRef,
    InvarianceStatistics,
    LayerStatistics,
    Statistics,
    UnlabelledLayerStatistics,
    UnlabelledStatistics,
    read_document,
    read_verified,
)
from service.errors import NotFoundError, UnavailableError
from service.runtime.imported import ImportedLoadedModel
from service.runtime.registry import Registry, variant_dirs
from service.studies.digit_judge import DigitJudgeModel, load_judge
from service.studies.layers import NotApplicable, UnknownLayer

log = logging.getLogger("convlens.statistics")

DATASET_THRESHOLD = "dataset"
ANALYZE = "run `python -m training analyze --data-dir MNIST_DIR --model-dir {model_dir}` to compute them"
ANALYZE_IMPORTED = (
    "run `python -m training analyze --images DATASET_DIR --model {name} --model-dir {model_dir}` to compute them "
    "(docs/own-dataset.md)"
)


class StatisticsUnavailable(UnavailableError):
    """The statistics cannot be served; the message says why and how to make them."""


class NoStatistics(NotFoundError, LookupError):
    """The model has no dataset statistics at all; the message lists the models that have."""


class NoLabels(NotFoundError, LookupError):
    """A per-class result of statistics computed over a dataset without labels."""


@dataclass
class DatasetStatistics:
    """Verified statistics: the validated document (``UnlabelledStatistics`` for a dataset without labels), the top
    images (uint8, by dataset index) and the PNG plots."""

    data: Statistics | UnlabelledStatistics
    images: dict[int, np.ndarray]
    plots: dict[str, bytes]
    hint: str = ANALYZE.format(model_dir="models")
    optimized: dict[str, np.ndarray] = field(default_factory=dict)
    judge: DigitJudgeModel | None = None

    @property
    def layers(self) -> list[str]:
        return list(self.data.layers)

    @property
    def labelled(self) -> bool:
        """Whether the analysed dataset had labels (and so per-class results)."""
        return isinstance(self.data, Statistics)

    @property
    def classes(self) -> int:
        """Classes of the analysed model (0 for a dataset without labels)."""
        return len(self.data.label_counts) if self.labelled else 0

    def check_label(self, label: int | None) -> None:
        """NoLabels for any per-class lookup (``label`` given or not) of unlabelled statistics; NotApplicable for a
        label that is not one of the model's classes."""
        if not self.labelled:
            raise NoLabels(
                f"the dataset {self.data.split!r} of these statistics had no labels (a flat folder): there are no "
                "per-class results, only the layer-wide ones (the norm distributions without label, the top images, "
                "threshold=dataset)"
            )
        if label is not None and not 0 <= label < self.classes:
            raise NotApplicable(f"label {label} is not a class of this model: labels are 0-{self.classes - 1}")

    def layer(self, name: str) -> LayerStatistics | UnlabelledLayerStatistics:
        """One layer's statistics; KeyError for a layer the statistics do not cover."""
        return self.data.layers[name]

    def check_layer(self, layer: str) -> None:
        """UnknownLayer, listing the layers these statistics cover, unless they cover ``layer``."""
        if layer not in self.data.layers:
            raise UnknownLayer(f"no statistics for layer {layer!r}; layers: {', '.join(self.layers)}")

    def dataset_threshold(self, layer: str) -> float:
        """The mean L2 norm over every feature map of ``layer`` in the analysed split."""
        return float(self.layer(layer).dataset_threshold)

    def active_counts(self, layer: str, rule: str, label: int | None = None) -> dict:
        """Images per [label][filter] in which the filter is active under ``rule``, for every label or one."""
        self.check_label(label)
        stats = self.layer(layer)
        labels = list(range(self.classes)) if label is None else [label]
        counts = [stats.active_counts[rule][d] for d in labels]
        thresholds = None
        if rule == "filter-label-mean":
            thresholds = [stats.filter_label_means[d] for d in labels]
        images = [self.data.label_counts[d] for d in labels]
        never = [k for k in range(stats.filters) if not any(row[k] for row in counts)]
        return {
            "labels": labels,
            "images": images,
            "counts": counts,
            "filter_label_means": thresholds,
            "dataset_threshold": stats.dataset_threshold if rule == "dataset-mean" else None,
            "never_active": never,
        }

    def norm_summary(self, layer: str, label: int | None = None) -> list[dict]:
        """Box-plot statistics of every filter's norm, over all images or the images of one label."""
        if label is not None:
            self.check_label(label)
        summary = self.layer(layer).norms["all" if label is None else str(label)]
        return [{"filter": k, **{name: summary[name][k] for name in SUMMARY}} for k in range(len(summary["median"]))]

    def images_of(self, label: int | None) -> int:
        if label is not None:
            self.check_label(label)
        return self.data.images if label is None else self.data.label_counts[label]

    def top_images(self, layer: str, filter: int) -> tuple[list[dict], np.ndarray]:
        """The filter's top images, strongest first: (index, label, norm) each (label -1 for a dataset without
        labels), and the images (9, 28, 28) uint8 (an imported model's: (9, H, W) or (9, H, W, C))."""
        top = self.layer(layer).top_images
        rows = [
            {"rank": rank + 1, "index": index, "label": label, "norm": norm}
            for rank, (index, label, norm) in enumerate(zip(top.indices[filter], top.labels[filter], top.norms[filter]))
        ]
        return rows, np.stack([self.images[row["index"]] for row in rows])

    def plot(self, name: str) -> bytes | None:
        return self.plots.get(name)

    def invariance(self) -> InvarianceStatistics:
        """The averaged invariance curves; StatisticsUnavailable when these statistics predate them."""
        if self.data.invariance is None:
            raise StatisticsUnavailable(f"these dataset statistics have no invariance curves; {self.hint}")
        return self.data.invariance

    def attribution(self) -> AttributionStatistics:
        """Every attribution method's faithfulness; StatisticsUnavailable when these statistics predate it."""
        if getattr(self.data, "attribution", None) is None:  # an unlabelled analysis has no such section
            only = self.hint.replace("` to compute them", " --only attribution` to add it")
            raise StatisticsUnavailable(f"these dataset statistics have no attribution faithfulness; {only}")
        return self.data.attribution

    def optimized_inputs(self) -> dict[str, np.ndarray]:
        """The optimized inputs (uint8, N x 28 x 28) by layer and ``classes``; StatisticsUnavailable when absent."""
        if not self.optimized:
            raise StatisticsUnavailable(f"these dataset statistics have no optimized inputs; {self.hint}")
        return self.optimized


def _verified(model_dir: Path, ref: FileRef, what: str) -> bytes:
    return read_verified(
        model_dir,
        ref,
        StatisticsUnavailable,
        lambda path: f"{path} ({what}, listed in {STATISTICS_FILE}) is missing",
        lambda path, actual: (
            f"{path} has SHA-256 {actual}, {STATISTICS_FILE} says {ref.sha256}: the file was changed or truncated"
        ),
    )


def _load_arrays(data: bytes, what: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file; StatisticsUnavailable naming ``what`` when it cannot be read."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise StatisticsUnavailable(f"the {what} cannot be read: {exc}") from exc


def _load_images(data: bytes, picture: tuple[int, ...] = (28, 28)) -> dict[int, np.ndarray]:
    arrays = _load_arrays(data, "top images")
    if not {"indices", "images"} <= set(arrays):
        raise StatisticsUnavailable("the top images cannot be read: expected the arrays indices and images")
    indices, images = arrays["indices"], arrays["images"]
    if images.dtype != np.uint8 or images.shape != (len(indices), *picture):
        expected = ", ".join(map(str, ("N", *picture)))
        raise StatisticsUnavailable(f"the top images are {images.dtype} {images.shape}, expected uint8 ({expected})")
    return {int(index): image for index, image in zip(indices, images, strict=True)}


def load_statistics(model_dir: Path, registry: Registry, name: str = CLASSIFIER) -> DatasetStatistics:
    """Read and verify ``model_dir/statistics.json`` (or, when only it is there, ``unlabelled_statistics.json``)
    and its files against the served model ``name``.

    ``analyze`` names the classifier of its own folder ``classifier``; a variant's folder is served under the
    variant's name, so the file is checked against the model served as ``name``. An imported model's statistics
    name the model itself, and are checked against its file's SHA-256 and its layers' channels.

    Raises StatisticsUnavailable with a one-line reason (absent, invalid, made for another classifier,
    a file changed).
    """
    model = registry.find(name)
    imported = isinstance(model, ImportedLoadedModel)
    hint = statistics_hint(model_dir, name, imported)
    path = model_dir / STATISTICS_FILE
    kind: type[Statistics] | type[UnlabelledStatistics] = Statistics
    if not path.is_file() and (model_dir / UNLABELLED_STATISTICS_FILE).is_file():
        path, kind = model_dir / UNLABELLED_STATISTICS_FILE, UnlabelledStatistics
    if not path.is_file():
        raise StatisticsUnavailable(f"no dataset statistics: {path} does not exist; {hint}")
    try:
        data = read_document(path, kind)
    except ContractError as exc:
        raise StatisticsUnavailable(f"{exc}; {hint}") from exc
    if data.format != STATISTICS_FORMAT:
        raise StatisticsUnavailable(f"{path} has format {data.format!r}, expected {STATISTICS_FORMAT}; {hint}")
    expected = name if imported else CLASSIFIER
    if data.model != expected or data.norm != STATISTICS_NORM:
        raise StatisticsUnavailable(
            f"{path} describes the {data.norm} norms of {data.model!r}, expected "
            f"the {STATISTICS_NORM} norms of {expected!r}; {hint}"
        )
    if model is None:
        raise StatisticsUnavailable(f"{path} describes model {name!r}, which is not served; {hint}")
    if data.model_sha256 != model.entry.sha256:
        raise StatisticsUnavailable(
            f"{path} was computed from another {data.model} (SHA-256 "
            f"{data.model_sha256[:12]}…, served: {model.entry.sha256[:12]}…); {hint}"
        )
    for layer, stats in data.layers.items():
        shape = model.layer_shapes.get(layer)
        channels = None if not shape else shape[0] if imported else shape[-1]
        if channels != stats.filters:
            raise StatisticsUnavailable(f"{path}: layer {layer!r} does not match the served {data.model}")
    if isinstance(data, Statistics) and imported and len(data.label_counts) != len(model.manifest.labels):
        raise StatisticsUnavailable(f"{path} counts {len(data.label_counts)} classes, {name!r} has another number")
    images = _load_images(_verified(model_dir, data.top_images, "top images"), _picture_shape(model))
    plots = {name: _verified(model_dir, ref, "plot") for name, ref in data.plots.items()}
    if not isinstance(data, Statistics):
        return DatasetStatistics(data, images, plots, hint)
    optimized = {}
    if data.optimized_inputs is not None:
        ref = FileRef(file=data.optimized_inputs.file, sha256=data.optimized_inputs.sha256)
        optimized = _load_arrays(_verified(model_dir, ref, "optimized inputs"), "optimized inputs")
        if any(a.dtype != np.uint8 or a.shape[1:] != (28, 28) for a in optimized.values()):
            raise StatisticsUnavailable("the optimized inputs must be uint8 (N, 28, 28) arrays")
    judge = None
    if data.digit_judge is not None:
        ref = FileRef(file=data.digit_judge.file, sha256=data.digit_judge.sha256)
        try:
            judge = load_judge(_load_arrays(_verified(model_dir, ref, "digit judge"), "digit judge"), data.digit_judge)
        except ValueError as exc:
            raise StatisticsUnavailable(f"the digit judge cannot be used: {exc}; {hint}") from exc
    return DatasetStatistics(data, images, plots, hint, optimized, judge)


def statistics_hint(model_dir: Path, name: str, imported: bool) -> str:
    """The command that computes the statistics of model ``name`` into ``model_dir``."""
    if imported:
        return ANALYZE_IMPORTED.format(name=name, model_dir=model_dir.parent.parent)
    return ANALYZE.format(model_dir=model_dir)


def _picture_shape(model: object) -> tuple[int, ...]:
    """The shape of one top image of ``model``'s statistics: 28 x 28 for the shipped models, an imported model's
    input picture ((H, W) grey, (H, W, C) otherwise)."""
    if not isinstance(model, ImportedLoadedModel):
        return (28, 28)
    spec = model.manifest.input
    return (spec.height, spec.width) if spec.channels == 1 else (spec.height, spec.width, spec.channels)


def try_load_statistics(
    model_dir: Path, registry: Registry, name: str = CLASSIFIER
) -> DatasetStatistics | StatisticsUnavailable:
    """The statistics, or the reason they are unavailable (logged as a warning); never stops the service."""
    try:
        return load_statistics(model_dir, registry, name)
    except StatisticsUnavailable as reason:
        log.warning("dataset statistics of %s unavailable: %s", name, reason)
        return reason


class LoadedStatistics(Mapping[str, DatasetStatistics | StatisticsUnavailable]):
    """What start-up loaded for each served classifier, by model name: its statistics or why they are unavailable;
    looked up by model (``of``), with each model's digit judge at hand for the hot path (``judge``)."""

    def __init__(
        self, loaded: dict[str, DatasetStatistics | StatisticsUnavailable], absent: dict[str, str] | None = None
    ) -> None:
        self._loaded = loaded
        self._absent = absent or {}
        self._judges = {name: s.judge for name, s in loaded.items() if isinstance(s, DatasetStatistics)}

    def __getitem__(self, name: str) -> DatasetStatistics | StatisticsUnavailable:
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded)

    def __len__(self) -> int:
        return len(self._loaded)

    def of(self, name: str) -> DatasetStatistics:
        """The statistics of model ``name``: NoStatistics for a model without any, StatisticsUnavailable with the
        reason (and the command that makes them) when they could not be loaded."""
        loaded = self._loaded.get(name)
        if name in self._absent:
            raise NoStatistics(f"no dataset statistics for imported model {name!r}; {self._absent[name]}")
        if loaded is None:
            raise NoStatistics(
                f"no dataset statistics for model {name!r}; statistics exist for: {', '.join(self._loaded) or 'none'}"
            )
        if isinstance(loaded, StatisticsUnavailable):
            raise StatisticsUnavailable(str(loaded))
        return loaded

    def judge(self, name: str) -> DigitJudgeModel | None:
        """The calibrated digit judge of model ``name``'s statistics; None when there is none (``digit_like`` is
        null)."""
        return self._judges.get(name)

    def layer_rule(self, name: str, layer: str, norm: str, rule: str | float) -> str | float:
        """The rule to apply to ``layer``'s ``norm`` norms: ``dataset`` becomes the layer's mean L2 norm over the
        analysed images (NotApplicable for another norm, NoStatistics, UnknownLayer for a layer not covered)."""
        if rule != DATASET_THRESHOLD:
            return rule
        if norm != STATISTICS_NORM:
            raise NotApplicable(
                f"threshold=dataset is the layer's mean {STATISTICS_NORM} norm over the test set; use it "
                f"with norm={STATISTICS_NORM}"
            )
        statistics = self.of(name)
        statistics.check_layer(layer)
        return statistics.dataset_threshold(layer)


def load_all_statistics(model_dir: Path, registry: Registry) -> LoadedStatistics:
    """The statistics of the shipped classifier, of every served variant and of every served imported model that
    has some in its folder, by model name; for each imported model without any, the command that computes them."""
    folders = {CLASSIFIER: model_dir} if CLASSIFIER in registry.models else {}
    folders |= {folder.name: folder for folder in variant_dirs(model_dir) if folder.name in registry.models}
    absent = {}
    for name, model in registry.imported.items():
        if any((model.folder / file).is_file() for file in (STATISTICS_FILE, UNLABELLED_STATISTICS_FILE)):
            folders[name] = model.folder
        else:
            absent[name] = statistics_hint(model.folder, name, imported=True)
    loaded = {name: try_load_statistics(folder, registry, name) for name, folder in folders.items()}
    return LoadedStatistics(loaded, absent)
