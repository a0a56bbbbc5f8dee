"""The paper's dataset analyses as mergeable accumulators: fed batch by batch, merged exactly, in bounded memory.

Per spatial layer and per class (one group when the dataset is unlabelled) the state holds:

- the top-k images of every filter: a (k, C) table of norms and dataset indices, ordered by norm (descending),
  ties by index (ascending), so any split of the dataset merged in any order keeps the same k;
- the active-filter counts under the paper's image-mean rule, as sums of integers;
- the exact sums of the norms and of their squares (for the dataset threshold, each filter's mean per class and
  the standard deviations): every float is split into 32-bit integer slices at fixed powers of two and the slices
  are summed as int64, so a sum is the same integer whatever the order or the split;
- the norm distribution of every filter: counts over fixed log-spaced bins, the same for every model and shard
  (``EDGES``: 32 bins per octave from 2^-20 to 2^24, plus a bin for exact zeros, one below and one above), known
  before any image is seen, so merging is the sum of the counts; with the exact minimum and maximum.

The quartiles, the medians and the counts under the two rules whose threshold is known only at the end (the
dataset mean, each filter's mean over its class) are read from the merged histograms: the same bytes for any
split, within one bin (2.2 % of the value) of an in-memory computation. Memory: k x filters for the tables, and
groups x filters x (``BINS`` x 4 + ``SLICES`` x 16) bytes for the rest, whatever the dataset's size.
Pure numpy; the norms are ``service.featuremaps.norms``'s.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from service.contract import RULES, SUMMARY
from service.errors import NotApplicableError
from service.featuremaps.norms import active_mask, threshold

TOP_K = 9
PER_OCTAVE = 32
LOWEST_OCTAVE, HIGHEST_OCTAVE = -20, 24
EDGES = 2.0 ** (np.arange(LOWEST_OCTAVE * PER_OCTAVE, HIGHEST_OCTAVE * PER_OCTAVE + 1) / PER_OCTAVE)
# bin 0: exact zeros; 1: (0, EDGES[0]); 2 ... BINS-2: [EDGES[i], EDGES[i+1]); BINS-1: [EDGES[-1], inf)
BINS = len(EDGES) + 2
# Exact sums: slice j holds the bits of a float64 between 2^(32 j) and 2^(32 j + 32), j from FIRST_SLICE on, which
# covers every float64 (subnormals from 2^-1074, the largest below 2^1024). A slice's sum over n images stays below
# n x 2^32, so int64 holds it for up to 2^31 images.
SLICE_BITS = 32
FIRST_SLICE = -35
SLICES = 1024 // SLICE_BITS - FIRST_SLICE
NO_IMAGE = np.iinfo(np.int64).max
STATE_FORMAT = 1


class AnalysisMismatch(NotApplicableError, ValueError):
    """Partial results that cannot be merged (another model, dataset, split or bins); the message says which."""


class AnalysedModel(Protocol):
    """What the streamed analysis needs of a model: its identity, class labels, spatial layers, preprocessing,
    and the feature-map norms of a batch."""

    name: str
    sha256: str
    labels: tuple[str, ...]
    spatial_layers: dict[str, int]  # layer -> channels (the last axis of its NHWC output)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One decoded uint8 image as the model's input (ValueError when it cannot be)."""
        ...

    def preprocess_many(self, images: np.ndarray) -> np.ndarray | None:
        """Decoded uint8 images of one shape (N, ...) as the model's inputs, as ``preprocess`` makes each, in one
        array operation; None when they need ``preprocess`` one by one."""
        ...

    def picture(self, preprocessed: np.ndarray) -> np.ndarray:
        """A preprocessed input as the uint8 image the statistics ship for it (the top images)."""
        ...

    def norms(self, batch: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The spatial layers' feature-map norms (``STATISTICS_NORM``, (N, C) float32) by name, and the class scores
        (N, classes)."""
        ...


def state_bytes(layers: Mapping[str, int], groups: int, picture_bytes: int, k: int = TOP_K) -> int:
    """The most one state of ``layers`` (name -> channels) over ``groups`` groups can hold, in bytes: per layer the
    top tables (k x C x 20 bytes) and groups x C x (``BINS`` x 4 + ``SLICES`` x 16 + 16) bytes of accumulators,
    and one picture of ``picture_bytes`` for every entry of every top table (each a different image at worst)."""
    per_filter = groups * (BINS * 4 + SLICES * 16 + 16) + k * (20 + picture_bytes)
    return sum(channels * per_filter for channels in layers.values())


def add_exact_sums(total: np.ndarray, onehot: np.ndarray, values: np.ndarray) -> None:
    """Add the per-group sums of nonnegative float64 ``values`` (B, C) (float32 norms or their squares, so within
    2^640 of each other) to ``total`` (SLICES, G, C) int64, exactly, ``onehot`` (G, B) float64 saying each row's group.

    Slice j of a value holds its bits between 2^(32 j) and 2^(32 j + 32): with W_j = floor(value / 2^(32 j)), it is
    W_j - 2^32 W_(j+1). Scaling by a power of two and floor are exact, and so is the difference, a whole number below
    2^32; the product with ``onehot`` sums fewer than 2^21 of them, exact in float64. Only the slices the values reach
    are made, from the highest down, in two reused buffers."""
    positive = values[values > 0]
    if not len(positive):
        return
    low = math.floor(math.log2(float(positive.min()))) - 53
    high = math.floor(math.log2(float(positive.max())))
    first, last = math.floor(max(low, -1074) / SLICE_BITS), math.floor(high / SLICE_BITS)
    above, whole = np.zeros_like(values), np.empty_like(values)  # W_(j+1): every value is below 2^(32 (last + 1))
    for j in range(last, first - 1, -1):
        np.floor(_scaled(values, -SLICE_BITS * j), out=whole)
        above *= 2.0**SLICE_BITS
        np.subtract(whole, above, out=above)
        total[j - FIRST_SLICE] += (onehot @ above).astype(np.int64)
        above, whole = whole, above


def _scaled(values: np.ndarray, exponent: int) -> np.ndarray:
    """``values`` x 2^exponent, exactly where the product is a normal float: a product with the power of two when it
    is a float (many times faster than ``np.ldexp`` for large exponents), else ``np.ldexp``."""
    if -1022 <= exponent <= 1023:
        return values * math.ldexp(1.0, exponent)
    return np.ldexp(values, exponent)


def exact_value(slices: np.ndarray) -> Fraction:
    """The exact number held by one cell's slices (SLICES,) from FIRST_SLICE on."""
    total = sum(int(count) << (SLICE_BITS * s) for s, count in enumerate(slices.tolist()) if count)
    return Fraction(total, 1 << (-SLICE_BITS * FIRST_SLICE))


def bin_of(norms: np.ndarray) -> np.ndarray:
    """The histogram bin of every norm (see ``EDGES``): the same for a value wherever it is computed."""
    with np.errstate(divide="ignore"):
        scaled = np.floor(np.log2(norms.astype(np.float64)) * PER_OCTAVE) - LOWEST_OCTAVE * PER_OCTAVE
    bins = np.clip(scaled, -1, len(EDGES) - 1).astype(np.int64) + 2
    bins[norms <= 0] = 0
    return bins


def _batch_top(
    norms: np.ndarray, indices: np.ndarray, labels: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k strongest images of every filter of one batch ((k, C) norms, indices, labels; all of them when the batch
    holds k or fewer), by norm descending then index ascending: one ``argpartition`` over a key that orders both,
    the norm's bits (nonnegative float32 order as their unsigned integers do) above the row's place from the end
    (the rows' indices ascend)."""
    rows, filters = norms.shape
    if rows <= k:
        return norms, np.broadcast_to(indices[:, None], norms.shape), np.broadcast_to(labels[:, None], norms.shape)
    key = (norms.view(np.uint32).astype(np.uint64) << np.uint64(32)) | (rows - 1 - np.arange(rows, dtype=np.uint64))[
        :, None
    ]
    chosen = np.argpartition(key, rows - k, axis=0)[rows - k :]
    return np.take_along_axis(norms, chosen, axis=0), indices[chosen], labels[chosen]


@dataclass
class LayerState:
    """One layer's accumulators over the images seen so far (groups x filters unless said)."""

    top_norms: np.ndarray  # (k, C) float32, strongest first
    top_indices: np.ndarray  # (k, C) int64, NO_IMAGE where fewer than k images were seen
    top_labels: np.ndarray  # (k, C) int64, -1 for an unlabelled dataset
    image_mean_counts: np.ndarray  # (G, C) int64
    sums: np.ndarray  # (SLICES, G, C) int64
    squares: np.ndarray  # (SLICES, G, C) int64
    histogram: np.ndarray  # (G, C, BINS) uint32
    minimum: np.ndarray  # (G, C) float32
    maximum: np.ndarray  # (G, C) float32

    @classmethod
    def empty(cls, groups: int, filters: int, k: int = TOP_K) -> LayerState:
        return cls(
            top_norms=np.full((k, filters), -np.inf, np.float32),
            top_indices=np.full((k, filters), NO_IMAGE, np.int64),
            top_labels=np.full((k, filters), -1, np.int64),
            image_mean_counts=np.zeros((groups, filters), np.int64),
            sums=np.zeros((SLICES, groups, filters), np.int64),
            squares=np.zeros((SLICES, groups, filters), np.int64),
            histogram=np.zeros((groups, filters, BINS), np.uint32),
            minimum=np.full((groups, filters), np.inf, np.float32),
            maximum=np.full((groups, filters), -np.inf, np.float32),
        )

    def add(self, norms: np.ndarray, indices: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> None:
        """Take in one batch: ``norms`` (B, C) float32, dataset ``indices`` (B,) ascending, ``labels`` (B,) and the
        group of every image (B,) int64 (counts per group are float64 products with the one-hot groups: exact)."""
        self._keep_top(*_batch_top(norms, indices, labels, len(self.top_norms)))
        count, filters = self.image_mean_counts.shape
        onehot = (groups[None, :] == np.arange(count)[:, None]).astype(np.float64)
        active = active_mask(norms, threshold(norms, "mean"))
        self.image_mean_counts += (onehot @ active).astype(np.int64)
        wide = norms.astype(np.float64)
        add_exact_sums(self.sums, onehot, wide)
        add_exact_sums(self.squares, onehot, wide * wide)  # float32 squares are exact in float64
        cells = (groups[:, None] * filters + np.arange(filters)[None, :]) * BINS + bin_of(norms)
        np.add.at(self.histogram.reshape(-1), cells.reshape(-1), np.uint32(1))
        for g in np.unique(groups).tolist():
            rows = norms[groups == g]
            np.minimum(self.minimum[g], rows.min(axis=0), out=self.minimum[g])
            np.maximum(self.maximum[g], rows.max(axis=0), out=self.maximum[g])

    def _keep_top(self, norms: np.ndarray, indices: np.ndarray, labels: np.ndarray) -> None:
        """The k strongest of the table and the candidates, by norm descending then index ascending."""
        all_norms = np.concatenate([self.top_norms, norms])
        all_indices = np.concatenate([self.top_indices, indices])
        all_labels = np.concatenate([self.top_labels, labels])
        order = np.lexsort((all_indices, -all_norms.astype(np.float64)), axis=0)[: len(self.top_norms)]
        self.top_norms = np.take_along_axis(all_norms, order, axis=0)
        self.top_indices = np.take_along_axis(all_indices, order, axis=0)
        self.top_labels = np.take_along_axis(all_labels, order, axis=0)

    def merge(self, other: LayerState) -> None:
        """Add ``other``'s images (a disjoint part of the same dataset) to these."""
        self._keep_top(other.top_norms, other.top_indices, other.top_labels)
        self.image_mean_counts += other.image_mean_counts
        self.sums += other.sums
        self.squares += other.squares
        self.histogram += other.histogram
        np.minimum(self.minimum, other.minimum, out=self.minimum)
        np.maximum(self.maximum, other.maximum, out=self.maximum)


@dataclass
class AnalysisState:
    """Everything a (part of a) pass has accumulated, with what it was computed on; saved and merged as a whole."""

    model: str
    model_sha256: str
    dataset: str  # the dataset's fingerprint (``service.images.datasets.Dataset.fingerprint``)
    labelled: bool
    classes: int
    shard: int
    shards: int
    layers: dict[str, LayerState]
    position: int = 0  # items of the shard consumed (read, used or skipped)
    complete: bool = False
    group_counts: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    correct: int = 0
    skipped: int = 0
    pictures: dict[int, np.ndarray] = field(default_factory=dict)

    @classmethod
    def start(
        cls, model: AnalysedModel, dataset: str, labelled: bool, shard: int = 0, shards: int = 1
    ) -> AnalysisState:
        groups = len(model.labels) if labelled else 1
        layers = {name: LayerState.empty(groups, channels) for name, channels in model.spatial_layers.items()}
        return cls(
            model.name,
            model.sha256,
            dataset,
            labelled,
            len(model.labels),
            shard,
            shards,
            layers,
            group_counts=np.zeros(groups, np.int64),
        )

    @property
    def groups(self) -> int:
        return len(self.group_counts)

    @property
    def images(self) -> int:
        return int(self.group_counts.sum())

    def add(
        self,
        norms: Mapping[str, np.ndarray],
        scores: np.ndarray,
        indices: np.ndarray,
        labels: np.ndarray,
        inputs: np.ndarray,
        picture: Callable[[np.ndarray], np.ndarray],
    ) -> None:
        """Take in one batch: the model's feature-map norms by layer and class scores for the images of dataset
        ``indices`` (ascending; their ``labels``, -1 when unlabelled, and their model ``inputs``, of which
        ``picture`` makes the shipped image of those that enter a top table)."""
        groups = np.maximum(labels, 0) if self.labelled else np.zeros(len(indices), np.int64)
        self.group_counts += np.bincount(groups, minlength=self.groups)
        if self.labelled:
            self.correct += int((scores.argmax(axis=1) == labels).sum())
        for name, layer in self.layers.items():
            layer.add(norms[name], indices, labels, groups)
        wanted = self._wanted()
        rows = np.flatnonzero(np.isin(indices, list(wanted - self.pictures.keys())))
        self._keep_pictures({int(indices[row]): picture(inputs[row]) for row in rows}, wanted)

    def _wanted(self) -> set[int]:
        """The images in some top table."""
        return {
            int(i) for i in np.unique(np.concatenate([layer.top_indices.ravel() for layer in self.layers.values()]))
        } - {NO_IMAGE}

    def _keep_pictures(self, new: dict[int, np.ndarray], wanted: set[int] | None = None) -> None:
        """Hold the pictures of the images in some top table and drop the others."""
        wanted = self._wanted() if wanted is None else wanted
        self.pictures = {i: picture for i, picture in {**self.pictures, **new}.items() if i in wanted}

    def merge(self, other: AnalysisState) -> None:
        """Add a disjoint part of the same split (same model, dataset and number of shards) to this one."""
        for attribute in ("model_sha256", "dataset", "labelled", "shards"):
            if getattr(self, attribute) != getattr(other, attribute):
                raise AnalysisMismatch(
                    f"cannot merge shard {other.shard}/{other.shards} into shard {self.shard}/{self.shards}: "
                    f"their {attribute.replace('_', ' ')} differ"
                )
        for name, layer in self.layers.items():
            layer.merge(other.layers[name])
        self.group_counts += other.group_counts
        self.correct += other.correct
        self.skipped += other.skipped
        self._keep_pictures(other.pictures)

    def save(self, path: Path) -> Path:
        """Write the state to ``path`` atomically (a temporary file renamed over it): a kill leaves the previous
        checkpoint or this one, never half of one."""
        meta = {
            "format": STATE_FORMAT,
            "model": self.model,
            "model_sha256": self.model_sha256,
            "dataset": self.dataset,
            "labelled": self.labelled,
            "classes": self.classes,
            "shard": self.shard,
            "shards": self.shards,
            "position": self.position,
            "complete": self.complete,
            "correct": self.correct,
            "skipped": self.skipped,
            "layers": list(self.layers),
            "bins": [PER_OCTAVE, LOWEST_OCTAVE, HIGHEST_OCTAVE, FIRST_SLICE, SLICE_BITS],
        }
        kept = sorted(self.pictures)
        arrays = {"meta": np.array(json.dumps(meta)), "group_counts": self.group_counts}
        arrays["picture_indices"] = np.array(kept, np.int64)
        arrays["pictures"] = np.stack([self.pictures[i] for i in kept]) if kept else np.zeros((0,), np.uint8)
        for name, layer in self.layers.items():
            for key, value in vars(layer).items():
                arrays[f"{name}.{key}"] = value
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as stream:
            np.savez(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        return path

    @classmethod
    def load(cls, path: Path) -> AnalysisState:
        """A state saved by ``save``; AnalysisMismatch when the file is not one or uses other bins."""
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            meta = json.loads(str(arrays["meta"]))
        except (OSError, ValueError, KeyError) as exc:
            raise AnalysisMismatch(f"{path} is not a partial analysis: {exc}") from exc
        if meta.get("format") != STATE_FORMAT or meta["bins"] != [
            PER_OCTAVE,
            LOWEST_OCTAVE,
            HIGHEST_OCTAVE,
            FIRST_SLICE,
            SLICE_BITS,
        ]:
            raise AnalysisMismatch(f"{path} was written with another format or other bins; run its shard again")
        layers = {
            name: LayerState(**{key: arrays[f"{name}.{key}"] for key in LayerState.__dataclass_fields__})
            for name in meta["layers"]
        }
        pictures = dict(zip(arrays["picture_indices"].tolist(), arrays["pictures"]))
        return cls(
            meta["model"],
            meta["model_sha256"],
            meta["dataset"],
            meta["labelled"],
            meta["classes"],
            meta["shard"],
            meta["shards"],
            layers,
            meta["position"],
            meta["complete"],
            arrays["group_counts"],
            meta["correct"],
            meta["skipped"],
            pictures,
        )


def merge_states(states: Sequence[AnalysisState]) -> AnalysisState:
    """The N complete shards of one split merged into the first (in any order: the result is the same);
    AnalysisMismatch when a shard is missing, repeated or incomplete, or the parts disagree."""
    if not states:
        raise AnalysisMismatch("nothing to merge: give the partial results of every shard")
    shards = states[0].shards
    seen = sorted(state.shard for state in states)
    if seen != list(range(shards)):
        missing = sorted(set(range(shards)) - set(seen))
        repeated = sorted({s for s in seen if seen.count(s) > 1})
        said = [
            f"missing {', '.join(map(str, missing))}" if missing else "",
            f"repeated {repeated}" if repeated else "",
        ]
        raise AnalysisMismatch(f"the parts are not the {shards} shards of one split: {'; '.join(filter(None, said))}")
    unfinished = [state.shard for state in states if not state.complete]
    if unfinished:
        raise AnalysisMismatch(
            f"shard(s) {', '.join(map(str, unfinished))} did not finish: run them again (they resume)"
        )
    merged, *rest = sorted(states, key=lambda state: state.shard)
    for state in rest:
        merged.merge(state)
    merged.shard, merged.shards = 0, 1
    return merged


def _summary(
    histogram: np.ndarray, sums: np.ndarray, squares: np.ndarray, count: int, low: np.ndarray, high: np.ndarray
) -> dict:
    """Box-plot statistics of every filter (C,) from its histogram (C, BINS), exact sums, count and extremes."""
    filters = histogram.shape[0]
    if count == 0:
        return {name: [None] * filters for name in SUMMARY}
    means, stds = [], []
    for c in range(filters):
        total, total_squares = exact_value(sums[:, c]), exact_value(squares[:, c])
        means.append(float(total / count))
        stds.append(math.sqrt(max(float((total_squares * count - total * total) / (count * count)), 0.0)))
    q1, median, q3 = (_quantile(histogram, q, count, low, high) for q in (0.25, 0.5, 0.75))
    return dict(
        zip(SUMMARY, (low.astype(np.float64), q1, median, q3, high.astype(np.float64), np.array(means), np.array(stds)))
    )


def _bin_bounds(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound of every bin for every filter ((C, BINS) each): the extremes close the open bins."""
    filters = len(low)
    lower = np.concatenate([[0.0, 0.0], EDGES])[None, :].repeat(filters, axis=0)
    upper = np.concatenate([[0.0], EDGES, [0.0]])[None, :].repeat(filters, axis=0)
    upper[:, -1] = np.maximum(high, EDGES[-1])
    return lower, upper


def _quantile(histogram: np.ndarray, q: float, count: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """numpy's linear quantile with the values of a bin spread evenly across it, clamped to the extremes."""
    lower, upper = _bin_bounds(low, high)
    cumulative = histogram.astype(np.int64).cumsum(axis=1)
    rank = q * (count - 1)

    def order_statistic(j: int) -> np.ndarray:
        where = (cumulative > j).argmax(axis=1)
        rows = np.arange(len(where))
        before = np.where(where > 0, cumulative[rows, np.maximum(where - 1, 0)], 0)
        inside = histogram[rows, where].astype(np.float64)
        offset = (j - before + 0.5) / inside
        return lower[rows, where] + offset * (upper[rows, where] - lower[rows, where])

    below, above = order_statistic(math.floor(rank)), order_statistic(math.ceil(rank))
    value = below + (rank - math.floor(rank)) * (above - below)
    return np.clip(value, low, high)


def _count_above(histogram: np.ndarray, limit: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Images per filter whose norm is above ``limit`` (C,), from the histogram (C, BINS): whole bins above it, and
    the share of the bin holding it that lies above, the bin's values spread evenly; rounded to whole images."""
    lower, upper = _bin_bounds(low, high)
    width = np.where(upper > lower, upper - lower, 1.0)
    share = np.clip((upper - limit[:, None]) / width, 0.0, 1.0)
    share[:, 0] = 0.0  # exact zeros are never above a nonnegative threshold
    return np.rint((histogram * share).sum(axis=1)).astype(np.int64)


def layer_result(layer: LayerState, group_counts: np.ndarray, labelled: bool) -> dict:
    """One layer's statistics (``service.contract.LayerStatistics``'s fields) from its merged state."""
    groups, filters = layer.image_mean_counts.shape
    total = sum((exact_value(layer.sums[:, g, c]) for g in range(groups) for c in range(filters)), Fraction(0))
    images = int(group_counts.sum())
    dataset_threshold = float(total / (images * filters)) if images else math.nan
    everything = _summary(
        layer.histogram.sum(axis=0),
        layer.sums.sum(axis=1),
        layer.squares.sum(axis=1),
        images,
        layer.minimum.min(axis=0),
        layer.maximum.max(axis=0),
    )
    valid = layer.top_indices[:, 0] != NO_IMAGE
    top = {
        "indices": layer.top_indices[valid].T,
        "norms": layer.top_norms[valid].T,
        "labels": layer.top_labels[valid].T,
    }
    result = {
        "filters": filters,
        "dataset_threshold": dataset_threshold,
        "norms": {"all": everything},
        "top_images": top,
    }
    if not labelled:
        return result
    label_means = np.array(
        [
            [
                float(exact_value(layer.sums[:, g, c]) / int(group_counts[g])) if group_counts[g] else math.nan
                for c in range(filters)
            ]
            for g in range(groups)
        ]
    )
    counts = {
        "image-mean": layer.image_mean_counts,
        "dataset-mean": np.stack(
            [
                _count_above(
                    layer.histogram[g], np.full(filters, dataset_threshold), layer.minimum[g], layer.maximum[g]
                )
                for g in range(groups)
            ]
        ),
        "filter-label-mean": np.stack(
            [
                _count_above(layer.histogram[g], label_means[g], layer.minimum[g], layer.maximum[g])
                for g in range(groups)
            ]
        ),
    }
    per_group = {
        str(g): _summary(
            layer.histogram[g],
            layer.sums[:, g],
            layer.squares[:, g],
            int(group_counts[g]),
            layer.minimum[g],
            layer.maximum[g],
        )
        for g in range(groups)
    }
    return {
        **result,
        "active_counts": {rule: counts[rule].tolist() for rule in RULES},
        "filter_label_means": label_means,
        "norms": {"all": everything, **per_group},
    }
