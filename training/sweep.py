"""``python -m training sweep``: the paper's classifier under every activation x optimizer, trained alike and compared.

Every variant gets the same seed, data, batch size and epoch budget, its optimizer's customary learning rate
with a constant schedule, and no shift augmentation (so that only the activation and the optimizer differ).
Each lands in ``<out_dir>/<activation>-<optimizer>/`` as ``classifier.onnx`` (parity-checked), ``manifest.json``
(the main manifest's format) and its dataset statistics (``training.analyze``, without plots); the whole sweep
is summarised in ``comparison.json`` and ``comparison.md``. The run writes into a temporary sibling of
``out_dir`` and swaps it in at the end, so ``out_dir`` holds one sweep's results, never a mix of two.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
import uuid
from itertools import product
from pathlib import Path

import numpy as np

from service.contract import (
    COMPARISON_JSON,
    COMPARISON_MD,
    SPATIAL_LAYERS,
    VARIANT_MODEL,
    LayerStatistics,
    ModelEntry,
    Statistics,
    read_document,
)
from training.analyze import analyze
from training.config import ACTIVATIONS, OPTIMIZERS, SWEEP_EPOCHS, SWEEP_OPTIMIZERS, TrainConfig
from training.export import write_manifest
from training.pipeline import load_data, train_classifier_entry

PAPER_RULE = "image-mean"


def variant_name(activation: str, optimizer: str) -> str:
    """The variant's folder and served model name, e.g. ``tanh-sgd``."""
    return f"{activation}-{optimizer}"


def sibling(target: Path, role: str) -> Path:
    """An unused hidden name beside ``target``, e.g. ``models/.variants-new-1a2b3c4d``."""
    return target.parent / f".{target.name}-{role}-{uuid.uuid4().hex[:8]}"


def replace_folder(new: Path, target: Path) -> None:
    """Put ``new`` in the place of ``target`` (a sibling), whole: the old folder is renamed aside, then deleted."""
    if target.exists():
        old = sibling(target, "old")
        target.rename(old)
        new.rename(target)
        shutil.rmtree(old)
    else:
        new.rename(target)


def layer_summary(stats: LayerStatistics, images: int) -> dict:
    """One layer's filter statistics: mean fraction of filters active per image (the paper's rule: norm above the
    image's mean norm in the layer), how many filters are active in no image, and the mean L2 norm."""
    per_filter = np.asarray(stats.active_counts[PAPER_RULE]).sum(axis=0)
    return {
        "mean_active_fraction": round(float(per_filter.sum() / (images * stats.filters)), 4),
        "never_active": int((per_filter == 0).sum()),
        "mean_norm": round(float(np.mean(stats.norms["all"]["mean"])), 4),
    }


def comparison_row(name: str, entry: ModelEntry, statistics: Statistics) -> dict:
    """One variant's line of the comparison: its recipe, test metrics, timing, curve and per-layer filter statistics."""
    training, metrics = entry.training, entry.metrics
    return {
        "model": name,
        "activation": training["activation"],
        "optimizer": training["optimizer"],
        "learning_rate": training["learning_rate"],
        "epochs": training["epochs"],
        "test_accuracy": metrics["test_accuracy"],
        "test_loss": metrics["test_loss"],
        "seconds_per_epoch": metrics["seconds_per_epoch"],
        "val_accuracy": entry.history["val_accuracy"],
        "layers": {layer: layer_summary(statistics.layers[layer], statistics.images) for layer in SPATIAL_LAYERS},
    }


def comparison_markdown(rows: list[dict]) -> str:
    """The comparison as a Markdown table, best test accuracy first."""
    header = ["variant", "test accuracy", "test loss", "s/epoch"]
    for layer in SPATIAL_LAYERS:
        header += [f"{layer} active", f"{layer} never active", f"{layer} mean norm"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for row in sorted(rows, key=lambda r: -r["test_accuracy"]):
        cells = [
            row["model"],
            f"{100 * row['test_accuracy']:.2f} %",
            f"{row['test_loss']:.4f}",
            f"{row['seconds_per_epoch']:.1f}",
        ]
        for layer in SPATIAL_LAYERS:
            stats = row["layers"][layer]
            cells += [
                f"{100 * stats['mean_active_fraction']:.1f} %",
                str(stats["never_active"]),
                f"{stats['mean_norm']:.3f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep(
    data_dir: str | os.PathLike[str] | None,
    out_dir: Path,
    activations: tuple[str, ...] = ACTIVATIONS,
    optimizers: tuple[str, ...] = SWEEP_OPTIMIZERS,
    epochs: int = SWEEP_EPOCHS,
    batch_size: int = 128,
    seed: int = 42,
    train_limit: int | None = None,
    test_limit: int | None = None,
) -> Path:
    """Train, export and analyse every variant, then replace ``out_dir`` with the results as a whole; returns the
    path of ``comparison.json``."""
    unknown = sorted(set(activations) - set(ACTIVATIONS)) + sorted(set(optimizers) - set(OPTIMIZERS))
    if unknown:
        raise ValueError(f"unknown activation or optimizer: {', '.join(unknown)}")
    base = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        schedule="constant",
        shift=0,
        autoencoder_epochs=0,
        seed=seed,
        train_limit=train_limit,
        test_limit=test_limit,
    )
    data = load_data(data_dir, base)
    staging = sibling(out_dir, "new")
    staging.mkdir(parents=True)
    try:
        _train_variants(data, data_dir, staging, base, activations, optimizers)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_folder(staging, out_dir)
    path = out_dir / COMPARISON_JSON
    print(f"wrote {out_dir}: one folder per variant, {path.name} and {COMPARISON_MD}")
    return path


def _train_variants(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    data_dir: str | os.PathLike[str] | None,
    out_dir: Path,
    base: TrainConfig,
    activations: tuple[str, ...],
    optimizers: tuple[str, ...],
) -> None:
    """Every variant's folder and the comparison files, written into ``out_dir``."""
    epochs, test_limit = base.epochs, base.test_limit
    combinations = list(product(activations, optimizers))
    rows, started = [], time.perf_counter()
    for number, (activation, optimizer) in enumerate(combinations, 1):
        name, began = variant_name(activation, optimizer), time.perf_counter()
        print(
            f"[{number}/{len(combinations)}] {name}: training {epochs} epoch(s) on {len(data[0]):,} images", flush=True
        )
        folder = out_dir / name
        config = dataclasses.replace(base, activation=activation, optimizer=optimizer)
        entry = train_classifier_entry(*data, config, folder)
        write_manifest(folder, {VARIANT_MODEL: entry})
        statistics = read_document(analyze(folder, data_dir, limit=test_limit, plots=False, progress=False), Statistics)
        rows.append(comparison_row(name, entry, statistics))
        print(
            f"[{number}/{len(combinations)}] {name}: test accuracy {100 * entry.metrics['test_accuracy']:.2f} %, "
            f"{entry.metrics['seconds_per_epoch']:.1f} s/epoch, {time.perf_counter() - began:.0f} s "
            f"({time.perf_counter() - started:.0f} s in all)",
            flush=True,
        )

    recipe = {
        key: value
        for key, value in dataclasses.asdict(base).items()
        if key not in ("activation", "optimizer", "learning_rate", "extra", "autoencoder_epochs")
    }
    recipe.update(learning_rate="the optimizer's customary one", train_images=len(data[0]), test_images=len(data[2]))
    comparison = {"format": 1, "recipe": recipe, "variants": rows}
    (out_dir / COMPARISON_JSON).write_text(json.dumps(comparison, indent=2) + "\n")
    (out_dir / COMPARISON_MD).write_text(comparison_markdown(rows) + "\n")
