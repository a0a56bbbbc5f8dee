"""The dataset statistics shipped beside the models (made by ``python -m training analyze``): loaded, verified, looked up.

``statistics.json`` records the SHA-256 of the classifier it was computed from and of every file it refers to
(``top_images.npz``, ``plots/*.png``); start-up checks all of them. Statistics are optional: when they are
absent, stale (another classifier) or damaged, the service still starts, and the endpoints that need them
answer 503 with the reason and the command that makes them. Pure numpy, no web code.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.featuremaps.deconv import PROJECTION_INPUTS, project
from service.featuremaps.grids import tile
from service.registry import LoadedModel, Registry, variant_dirs

log = logging.getLogger("convlens.statistics")

FORMAT = 1
STATISTICS_MODEL = "classifier"
STATISTICS_NORM = "l2"
DATASET_THRESHOLD = "dataset"
STATISTICS_FILE = "statistics.json"
RULES = ("image-mean", "dataset-mean", "filter-label-mean")
SUMMARY = ("min", "q1", "median", "q3", "max", "mean", "std")
ANALYZE = "run `python -m training analyze --data-dir MNIST_DIR --model-dir {model_dir}` to compute them"


class StatisticsUnavailable(Exception):
    """The statistics cannot be served; the message says why and how to make them."""


@dataclass
class DatasetStatistics:
    """Verified statistics: the JSON document, the top images (uint8, by dataset index) and the PNG plots."""

    data: dict
    images: dict[int, np.ndarray]
    plots: dict[str, bytes]

    @property
    def layers(self) -> list[str]:
        return list(self.data["layers"])

    def layer(self, name: str) -> dict:
        """One layer's statistics; KeyError for a layer the statistics do not cover."""
        return self.data["layers"][name]

    def dataset_threshold(self, layer: str) -> float:
        """The mean L2 norm over every feature map of ``layer`` in the analysed split."""
        return float(self.layer(layer)["dataset_threshold"])

    def active_counts(self, layer: str, rule: str, label: int | None = None) -> dict:
        """Images per [label][filter] in which the filter is active under ``rule``, for every label or one."""
        stats = self.layer(layer)
        labels = list(range(10)) if label is None else [label]
        counts = [stats["active_counts"][rule][d] for d in labels]
        thresholds = None
        if rule == "filter-label-mean":
            thresholds = [stats["filter_label_means"][d] for d in labels]
        images = [self.data["label_counts"][d] for d in labels]
        never = [k for k in range(stats["filters"]) if not any(row[k] for row in counts)]
        return {"labels": labels, "images": images, "counts": counts, "filter_label_means": thresholds,
                "dataset_threshold": stats["dataset_threshold"] if rule == "dataset-mean" else None,
                "never_active": never}

    def norm_summary(self, layer: str, label: int | None = None) -> list[dict]:
        """Box-plot statistics of every filter's norm, over all images or the images of one label."""
        summary = self.layer(layer)["norms"]["all" if label is None else str(label)]
        return [{"filter": k, **{name: summary[name][k] for name in SUMMARY}}
                for k in range(len(summary["median"]))]

    def images_of(self, label: int | None) -> int:
        return self.data["images"] if label is None else self.data["label_counts"][label]

    def top_images(self, layer: str, filter: int) -> tuple[list[dict], np.ndarray]:
        """The filter's top images, strongest first: (index, label, norm) each, and the images (9, 28, 28) uint8."""
        top = self.layer(layer)["top_images"]
        rows = [{"rank": rank + 1, "index": index, "label": label, "norm": norm} for rank, (index, label, norm)
                in enumerate(zip(top["indices"][filter], top["labels"][filter], top["norms"][filter]))]
        return rows, np.stack([self.images[row["index"]] for row in rows])

    def plot(self, name: str) -> bytes | None:
        return self.plots.get(name)


def plot_name(kind: str, layer: str | None = None, rule: str | None = None, label: int | None = None) -> str:
    """The name ``training.plots.statistics_plots`` gives a plot, e.g. ``active-filters-conv2-image-mean-label-3``."""
    parts = [kind, layer, rule] + ([] if label is None else ["label", str(label)])
    return "-".join(part for part in parts if part is not None)


def projections(model: LoadedModel, images: np.ndarray, layer: str, filter: int) -> np.ndarray:
    """Each image's deconvolution projection of one filter (the service's ``project``): (N, 28, 28)."""
    outputs = model.run(images.astype(np.float32) / 255.0, PROJECTION_INPUTS[layer])
    w1, w2 = model.kernels["conv1"], model.kernels["conv2"]
    return np.stack([project(layer, {name: maps[i] for name, maps in outputs.items()}, w1, w2, [filter])[0]
                     for i in range(len(images))])


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4, columns: int = 3) -> np.ndarray:
    """Two stacks (N, H, W) as two grids of ``columns`` columns next to each other, each tile scaled on its own,
    on mid-gray (the gaps)."""
    a, b = tile(left, columns=columns, pad_value=128), tile(right, columns=columns, pad_value=128)
    height = max(a.shape[0], b.shape[0])
    out = np.full((height, a.shape[1] + gap + b.shape[1]), 128, np.uint8)
    out[:a.shape[0], :a.shape[1]] = a
    out[:b.shape[0], a.shape[1] + gap:] = b
    return out


def _verified(model_dir: Path, entry: dict, what: str) -> bytes:
    path = model_dir / entry["file"]
    if not path.is_file():
        raise StatisticsUnavailable(f"{path} ({what}, listed in {STATISTICS_FILE}) is missing")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != entry["sha256"]:
        raise StatisticsUnavailable(f"{path} has SHA-256 {actual}, {STATISTICS_FILE} says {entry['sha256']}: "
                                    "the file was changed or truncated")
    return data


def _load_images(data: bytes) -> dict[int, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            indices, images = archive["indices"], archive["images"]
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise StatisticsUnavailable(f"the top images cannot be read: {exc}") from exc
    if images.dtype != np.uint8 or images.shape != (len(indices), 28, 28):
        raise StatisticsUnavailable(f"the top images are {images.dtype} {images.shape}, expected uint8 (N, 28, 28)")
    return {int(index): image for index, image in zip(indices, images)}


def load_statistics(model_dir: Path, registry: Registry, name: str = STATISTICS_MODEL) -> DatasetStatistics:
    """Read and verify ``model_dir/statistics.json`` and its files against the served model ``name``.

    ``analyze`` names the classifier of its own folder ``classifier``; a variant's folder is served under the
    variant's name, so the file is checked against the model served as ``name``.

    Raises StatisticsUnavailable with a one-line reason (absent, invalid, made for another classifier,
    a file changed).
    """
    hint = ANALYZE.format(model_dir=model_dir)
    path = model_dir / STATISTICS_FILE
    if not path.is_file():
        raise StatisticsUnavailable(f"no dataset statistics: {path} does not exist; {hint}")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise StatisticsUnavailable(f"{path} has format {data.get('format')!r}, expected {FORMAT}; {hint}")
        if data["model"] != STATISTICS_MODEL or data["norm"] != STATISTICS_NORM:
            raise StatisticsUnavailable(f"{path} describes the {data['norm']} norms of {data['model']!r}, expected "
                                        f"the {STATISTICS_NORM} norms of {STATISTICS_MODEL!r}; {hint}")
        model = registry.models.get(name)
        if model is None:
            raise StatisticsUnavailable(f"{path} describes model {name!r}, which is not served; {hint}")
        if data["model_sha256"] != model.entry["sha256"]:
            raise StatisticsUnavailable(f"{path} was computed from another {data['model']} (SHA-256 "
                                        f"{data['model_sha256'][:12]}…, served: {model.entry['sha256'][:12]}…); "
                                        f"{hint}")
        for layer, stats in data["layers"].items():
            shape = model.layer_shapes.get(layer)
            if shape is None or shape[-1] != stats["filters"]:
                raise StatisticsUnavailable(f"{path}: layer {layer!r} does not match the served {data['model']}")
        images = _load_images(_verified(model_dir, data["top_images"], "top images"))
        plots = {name: _verified(model_dir, entry, "plot") for name, entry in data["plots"].items()}
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise StatisticsUnavailable(f"{path} is not a valid statistics file ({type(exc).__name__}: {exc}); "
                                    f"{hint}") from exc
    return DatasetStatistics(data, images, plots)


def try_load_statistics(model_dir: Path, registry: Registry,
                        name: str = STATISTICS_MODEL) -> DatasetStatistics | StatisticsUnavailable:
    """The statistics, or the reason they are unavailable (logged as a warning); never stops the service."""
    try:
        return load_statistics(model_dir, registry, name)
    except StatisticsUnavailable as reason:
        log.warning("dataset statistics of %s unavailable: %s", name, reason)
        return reason


def load_all_statistics(model_dir: Path, registry: Registry) -> dict[str, DatasetStatistics | StatisticsUnavailable]:
    """The statistics of the shipped classifier and of every served variant, by model name."""
    folders = {STATISTICS_MODEL: model_dir} if STATISTICS_MODEL in registry.models else {}
    folders |= {folder.name: folder for folder in variant_dirs(model_dir) if folder.name in registry.models}
    return {name: try_load_statistics(folder, registry, name) for name, folder in folders.items()}
