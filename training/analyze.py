"""Dataset statistics of the shipped classifier (the paper's sections 3.2-4), computed once and shipped beside it.

The classifier runs through the service's own runtime (``service.runtime.registry``) and every norm, threshold and
active-filter decision through the service's own math (``service.featuremaps.norms``), so the statistics and
the live endpoints share one definition. Over a split of MNIST this writes, into the model folder:

- ``statistics.json``: per spatial layer and digit label, the active-filter counts under three rules, the
  dataset threshold, the norm distribution of every filter, and the top-9 images of every filter by index;
  it records the SHA-256 of the classifier it was computed from and of every file below;
- ``top_images.npz``: the top-9 images themselves (uint8), since the service has no MNIST at run time;
- ``plots/*.png``: the statistics as figures (``training.plots``), served as they are.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from service.contract import (
    AUTOENCODER,
    CLASSIFIER,
    LABELS,
    MANIFEST_FILE,
    PLOTS_DIR,
    RULES,
    SPATIAL_LAYERS,
    STATISTICS_FILE,
    STATISTICS_FORMAT,
    STATISTICS_NORM,
    SUMMARY,
    TOP_IMAGES_FILE,
    ContractError,
    FileRef,
    Statistics,
    plot_name,
    read_document,
)
from service.featuremaps.norms import active_mask, feature_map_norms, threshold
from service.runtime.registry import ModelLoadError, load_registry
from training import quality_table as quality_
from training import studies as studies_
from training.data import FILES, load_split, sha256_of
from training.npz import write_npz

TOP_K = 9


class AnalysisError(RuntimeError):
    """The analysis cannot run on what it was given (no model, a slice missing a digit, ...)."""


def layer_norms(
    model, images: np.ndarray, batch_size: int = 500, progress: bool = True
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """L2 norm of every feature map of every image, per spatial layer ((N, C) float32), and the predicted digits.

    ``images`` are uint8 (N, 28, 28); they are fed in batches to ``model.run`` (the service's onnxruntime
    session) and reduced with ``feature_map_norms`` batch by batch, so memory stays at one batch of maps.
    """
    n = len(images)
    outputs = [*SPATIAL_LAYERS, "output"]
    norms = {layer: np.empty((n, model.layer_shapes[layer][-1]), np.float32) for layer in SPATIAL_LAYERS}
    predicted = np.empty(n, np.int64)
    with tqdm(total=n, unit="img", desc="analyze", disable=not progress) as bar:
        for start in range(0, n, batch_size):
            batch = images[start : start + batch_size].astype(np.float32) / 255.0
            result = model.run(batch, outputs)
            for layer in SPATIAL_LAYERS:
                norms[layer][start : start + len(batch)] = feature_map_norms(result[layer], STATISTICS_NORM)
            predicted[start : start + len(batch)] = result["output"].argmax(axis=1)
            bar.update(len(batch))
    return norms, predicted


def norm_summary(norms: np.ndarray) -> dict[str, np.ndarray]:
    """Box-plot statistics of each filter's norm over images (N, C): min, quartiles, median, max, mean, std."""
    q = np.quantile(norms.astype(np.float64), [0.0, 0.25, 0.5, 0.75, 1.0], axis=0)
    return dict(zip(SUMMARY, (*q, norms.mean(axis=0, dtype=np.float64), norms.std(axis=0, dtype=np.float64))))


def layer_statistics(norms: np.ndarray, labels: np.ndarray) -> dict:
    """Everything the statistics hold for one layer, from its norms (N, C) and the true labels (N,).

    - ``image-mean`` (the paper's rule, section 3.2.1): filter k is active in an image when its norm is above
      the mean of that image's norms in the layer;
    - ``dataset-mean`` (section 3.2.2): above the dataset threshold, the mean norm over all feature maps of
      all images;
    - ``filter-label-mean`` (the other reading of 3.2.1): above filter k's own mean norm over the images of
      the label.
    Counts are images per [label][filter]; top images are ordered by norm, ties by index.
    """
    onehot = labels[:, None] == np.arange(LABELS)[None, :]
    dataset_threshold = float(threshold(norms.reshape(-1), "mean"))
    per_label = [norms[onehot[:, d]] for d in range(LABELS)]
    label_means = np.stack([group.mean(axis=0, dtype=np.float64) for group in per_label])
    masks = {
        "image-mean": active_mask(norms, threshold(norms, "mean")),
        "dataset-mean": active_mask(norms, dataset_threshold),
    }
    counts = {rule: onehot.T.astype(np.int64) @ mask.astype(np.int64) for rule, mask in masks.items()}
    counts["filter-label-mean"] = np.stack([(group > mean).sum(axis=0) for group, mean in zip(per_label, label_means)])
    order = np.argsort(-norms, axis=0, kind="stable")[:TOP_K].T
    return {
        "filters": int(norms.shape[1]),
        "dataset_threshold": dataset_threshold,
        "active_counts": {rule: counts[rule].tolist() for rule in RULES},
        "filter_label_means": label_means,
        "norms": {"all": norm_summary(norms), **{str(d): norm_summary(per_label[d]) for d in range(LABELS)}},
        "top_images": {"indices": order, "norms": np.take_along_axis(norms.T, order, axis=1), "labels": labels[order]},
    }


def _rounded(value):
    """Plain JSON values, floats to 7 significant digits (float32 precision), arrays as nested lists."""
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return _rounded(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(f"{float(value):.7g}") if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def dumps(value, indent: int = 0) -> str:
    """JSON with nested objects indented and each list of numbers on one line (readable, diffable, small)."""
    pad = "  " * indent
    if isinstance(value, dict) and value:
        items = [f"{pad}  {json.dumps(key)}: {dumps(item, indent + 1)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value and isinstance(value[0], (list, dict)):
        return "[\n" + ",\n".join(f"{pad}  {dumps(item, indent + 1)}" for item in value) + f"\n{pad}]"
    return json.dumps(value, separators=(", ", ": "))


def analyze(
    model_dir: Path,
    data_dir: str | os.PathLike[str] | None,
    out_dir: Path | None = None,
    split: str = "test",
    limit: int | None = None,
    batch_size: int = 500,
    plots: bool = True,
    progress: bool = True,
    threads: int = 0,
    studies: bool | None = None,
    attribution: bool | None = None,
) -> Path:
    """Compute the statistics of ``model_dir``'s classifier over ``split`` and write them to ``out_dir``.

    ``out_dir`` defaults to ``model_dir`` (where the service looks); ``limit`` keeps the first N images.
    ``studies`` (default: with the plots) adds feature invariance, the optimized inputs and the digit judge
    (``training.studies``; the judge reads the training split too); ``attribution`` (default: with the studies)
    adds the attribution methods' faithfulness. Returns the path of ``statistics.json``.
    """
    from training import plots as figures  # matplotlib only when this runs

    model_dir = Path(model_dir)
    out_dir = Path(out_dir or model_dir)
    try:
        registry = load_registry(model_dir, intra_op_threads=threads, variants=False)
    except ModelLoadError as exc:
        raise AnalysisError(str(exc)) from exc
    if CLASSIFIER not in registry.models:
        raise AnalysisError(f"{model_dir / MANIFEST_FILE} lists no {CLASSIFIER}")
    classifier = registry.models[CLASSIFIER]
    images, labels = load_split(data_dir, split)
    if limit:
        images, labels = images[:limit], labels[:limit]
    missing = sorted(set(range(LABELS)) - set(np.unique(labels).tolist()))
    if missing:
        raise AnalysisError(f"the {len(labels)} {split} images hold no digit {missing[0]}; use a larger --limit")

    started = time.perf_counter()
    norms, predicted = layer_norms(classifier, images, batch_size, progress)
    layers = {layer: layer_statistics(norms[layer], labels.astype(np.int64)) for layer in SPATIAL_LAYERS}
    seconds = time.perf_counter() - started

    out_dir.mkdir(parents=True, exist_ok=True)
    extra = {}
    studies_on = plots if studies is None else studies
    if studies_on:
        extra = {
            "invariance": studies_.invariance_statistics(
                classifier, images[: studies_.INVARIANCE_IMAGES], labels[: studies_.INVARIANCE_IMAGES], progress
            ),
            "optimized_inputs": studies_.optimized_statistics(
                classifier, model_dir / classifier.entry.file, images, out_dir, progress
            ),
            "digit_judge": studies_.judge_statistics(
                classifier, registry.models.get(AUTOENCODER), data_dir, images, out_dir, progress
            ),
        }
    if studies_on if attribution is None else attribution:
        extra["attribution"] = studies_.attribution_statistics(
            classifier, images[: studies_.ATTRIBUTION_IMAGES], progress
        )
        extra["explanation_quality"] = _quality(classifier, images, progress)
    kept = np.unique(np.concatenate([stats["top_images"]["indices"].ravel() for stats in layers.values()]))
    top_path = out_dir / TOP_IMAGES_FILE
    write_npz(top_path, indices=kept.astype(np.int32), images=images[kept])

    document = Statistics.model_validate(
        _rounded(
            {
                "format": STATISTICS_FORMAT,
                "model": CLASSIFIER,
                "model_sha256": classifier.entry.sha256,
                "split": split,
                "images": int(len(labels)),
                "data_sha256": {
                    f"{FILES[(split, kind)].name}.gz": FILES[(split, kind)].gz_sha256 for kind in ("images", "labels")
                },
                "norm": STATISTICS_NORM,
                "accuracy": float((predicted == labels).mean()),
                "label_counts": np.bincount(labels, minlength=LABELS),
                "rules": list(RULES),
                "layers": layers,
                "top_images": {"file": TOP_IMAGES_FILE, "sha256": sha256_of(top_path)},
                "plots": {},
                **extra,
            }
        )
    )
    if plots:
        written = figures.statistics_plots(document, registry.manifest, out_dir / PLOTS_DIR, progress=progress)
        document.plots = {
            name: FileRef(file=f"{PLOTS_DIR}/{path.name}", sha256=sha256_of(path)) for name, path in written.items()
        }
        for stale in set((out_dir / PLOTS_DIR).glob("*.png")) - set(written.values()):
            stale.unlink()
    path = out_dir / STATISTICS_FILE
    path.write_text(dumps(document.model_dump()) + "\n")
    if progress:
        drawn = f" and {len(document.plots)} plots in {out_dir / PLOTS_DIR}" if plots else ""
        print(
            f"{len(labels):,} {split} images analysed in {seconds:.1f} s; wrote {path}, {top_path}{drawn} "
            f"({time.perf_counter() - started:.1f} s in all)"
        )
    return path


def _quality(classifier, images: np.ndarray, progress: bool) -> dict:
    """The explanation-quality table over the seeded sample of ``images`` (``training.quality_table``)."""
    indices = quality_.quality_sample(len(images))
    return quality_.quality_table(classifier, images[indices], indices, progress=progress)


def add_attribution(
    model_dir: Path,
    data_dir: str | os.PathLike[str] | None,
    out_dir: Path | None = None,
    split: str = "test",
    limit: int | None = None,
    plots: bool = True,
    progress: bool = True,
    threads: int = 0,
    curves: bool = True,
) -> Path:
    """``analyze --only attribution``: compute the attribution faithfulness curves (without ``curves``:
    ``--only quality``, not them) and the explanation-quality table alone and merge them into the existing
    ``statistics.json`` of ``out_dir`` (default ``model_dir``), which must describe ``model_dir``'s classifier;
    with ``plots``, draw their figures and list them. Every other section and file is kept as it is."""
    from training import plots as figures  # matplotlib only when this runs

    model_dir = Path(model_dir)
    out_dir = Path(out_dir or model_dir)
    path = out_dir / STATISTICS_FILE
    if not path.is_file():
        raise AnalysisError(f"{path} does not exist: run the whole `python -m training analyze` first")
    try:
        document = read_document(path, Statistics)
        registry = load_registry(model_dir, intra_op_threads=threads, variants=False)
    except (ContractError, ModelLoadError) as exc:
        raise AnalysisError(str(exc)) from exc
    if CLASSIFIER not in registry.models:
        raise AnalysisError(f"{model_dir / MANIFEST_FILE} lists no {CLASSIFIER}")
    classifier = registry.models[CLASSIFIER]
    if document.model_sha256 != classifier.entry.sha256:
        raise AnalysisError(
            f"{path} describes another classifier (SHA-256 {document.model_sha256[:12]}…, the folder's: "
            f"{classifier.entry.sha256[:12]}…): run the whole `python -m training analyze`"
        )
    if document.split != split:
        raise AnalysisError(f"{path} was computed on the {document.split} split, not {split}: use --split")
    images, _ = load_split(data_dir, split)
    count = min(limit or studies_.ATTRIBUTION_IMAGES, studies_.ATTRIBUTION_IMAGES)
    started = time.perf_counter()
    sections = {"explanation_quality": _quality(classifier, images[: limit or len(images)], progress)}
    if curves:
        sections["attribution"] = studies_.attribution_statistics(classifier, images[:count], progress)
    document = Statistics.model_validate({**document.model_dump(), **_rounded(sections)})
    if plots:
        drawn = {
            plot_name("explanation-quality"): figures.quality_figure(document.explanation_quality, split),
        }
        if curves:
            drawn[plot_name("attribution")] = figures.attribution_figure(document.attribution, split)
        for name, made in drawn.items():
            figure = figures.save(made, out_dir / PLOTS_DIR / f"{name}.png")
            document.plots = {
                **document.plots,
                name: FileRef(file=f"{PLOTS_DIR}/{figure.name}", sha256=sha256_of(figure)),
            }
    path.write_text(dumps(document.model_dump()) + "\n")
    if progress:
        print(
            f"{' and '.join(sections)} over the {split} split in {time.perf_counter() - started:.1f} s; "
            f"merged into {path}"
        )
    return path
