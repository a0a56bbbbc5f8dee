"""``python -m training collect``: the comparison of the variant folders present, without TensorFlow.

A variant counts as present when its folder is complete: ``manifest.json`` naming the classifier, the ONNX file it
lists (checked by SHA-256), ``statistics.json`` computed from that file and the top images it lists. Hidden folders
(``.relu-adam-partial-1a2b3c4d``: a variant still training, or one killed midway) are never read. Collecting writes
``comparison.json`` and ``comparison.md`` of the variants present, naming the missing ones, into the folder it is
given: in place when that is the source, else a new folder made of copies of the complete variants and the
comparison, swapped in as a whole. It writes into the shipped ``models/variants`` only a full set: all 16 variants
on the full data, from one recipe.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from service.contract import (
    COMPARISON_JSON,
    COMPARISON_MD,
    MANIFEST_FILE,
    SPATIAL_LAYERS,
    STATISTICS_FILE,
    VARIANT_MODEL,
    VARIANTS_DIR,
    ContractError,
    LayerStatistics,
    Manifest,
    ModelEntry,
    Statistics,
    read_document,
)
from training.config import VARIANT_NAMES, TrainConfig, variant_name
from training.data import sha256_of

PAPER_RULE = "image-mean"
COMPARISON_FORMAT = 1
# the recipe every variant shares: the config without what differs between variants
RECIPE_KEYS = tuple(
    field.name
    for field in dataclasses.fields(TrainConfig)
    if field.name not in ("activation", "optimizer", "learning_rate", "extra", "autoencoder_epochs")
)
SHIPPED = Path("models") / VARIANTS_DIR


class CollectError(RuntimeError):
    """Collecting cannot be done as asked; the one-line message says why."""


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


def is_shipped(folder: Path) -> bool:
    """Whether ``folder`` is the shipped ``models/variants`` (of the working directory or of this checkout)."""
    shipped = {SHIPPED.resolve(), (Path(__file__).resolve().parents[1] / SHIPPED).resolve()}
    return folder.resolve() in shipped


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


def comparison_markdown(rows: list[dict], missing: list[str] = ()) -> str:
    """The comparison as a Markdown table, best test accuracy first; the missing variants named below it."""
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
    if missing:
        lines += ["", f"Missing ({len(missing)}, not collected): {', '.join(missing)}."]
    return "\n".join(lines)


def read_variant(folder: Path) -> tuple[ModelEntry, Statistics]:
    """The classifier entry and statistics of a complete variant folder; CollectError saying what is missing."""
    try:
        entry = read_document(folder / MANIFEST_FILE, Manifest).models.get(VARIANT_MODEL)
        if entry is None:
            raise CollectError(f"{MANIFEST_FILE} lists no {VARIANT_MODEL}")
        if variant_name(entry.training.get("activation"), entry.training.get("optimizer")) != folder.name:
            raise CollectError(f"{MANIFEST_FILE} is of another variant")
        if not (folder / entry.file).is_file():
            raise CollectError(f"no {entry.file}")
        if sha256_of(folder / entry.file) != entry.sha256:
            raise CollectError(f"{entry.file} is not the file {MANIFEST_FILE} lists")
        statistics = read_document(folder / STATISTICS_FILE, Statistics)
    except ContractError as exc:
        raise CollectError(str(exc).replace(f"{folder}/", "")) from exc
    if statistics.model_sha256 != entry.sha256:
        raise CollectError(f"{STATISTICS_FILE} is of another {entry.file}")
    top = folder / statistics.top_images.file
    if not top.is_file() or sha256_of(top) != statistics.top_images.sha256:
        raise CollectError(f"{statistics.top_images.file} is missing or not the file {STATISTICS_FILE} lists")
    return entry, statistics


def recipe_of(entry: ModelEntry, statistics: Statistics) -> dict:
    """What a variant shares with the others of its sweep (the comparison's ``recipe``)."""
    training = entry.training
    recipe = {key: training[key] for key in RECIPE_KEYS if key in training}
    recipe.update(
        learning_rate="the optimizer's customary one",
        train_images=training["train_images"],
        test_images=statistics.images,
    )
    return recipe


def write_comparison(folder: Path, rows: list[dict], recipe: dict, missing: list[str]) -> Path:
    """``comparison.json`` and ``comparison.md`` in ``folder``, each written whole (a temporary file renamed)."""
    comparison = {"format": COMPARISON_FORMAT, "recipe": recipe, "variants": rows, "missing": missing}
    for name, text in (
        (COMPARISON_JSON, json.dumps(comparison, indent=2) + "\n"),
        (COMPARISON_MD, comparison_markdown(rows, missing) + "\n"),
    ):
        partial = folder / f".{name}-{uuid.uuid4().hex[:8]}"
        partial.write_text(text)
        os.replace(partial, folder / name)
    return folder / COMPARISON_JSON


def _check_target(out_dir: Path) -> None:
    """Refuse to replace a folder that is not a variants folder (``--out-dir models`` by mistake, say)."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise CollectError(f"{out_dir} is not a folder")
    allowed = {*VARIANT_NAMES, COMPARISON_JSON, COMPARISON_MD}
    other = sorted(p.name for p in out_dir.iterdir() if p.name not in allowed and not p.name.startswith("."))
    if other:
        raise CollectError(
            f"{out_dir} holds {', '.join(other[:5])}{' ...' if len(other) > 5 else ''}: not a variants folder, "
            "and collecting replaces the folder it writes; give a new or empty folder"
        )


def collect(source: Path, out_dir: Path | None = None, expected: tuple[str, ...] = VARIANT_NAMES) -> Path:
    """The comparison of the complete variants of ``expected`` in ``source``, into ``out_dir`` (default: ``source``);
    returns the path of ``comparison.json``. CollectError when none is complete, when they come from different
    recipes, or when ``out_dir`` is the shipped folder and this is not the full set on the full data."""
    out_dir = source if out_dir is None else out_dir
    if not source.is_dir():
        raise CollectError(f"{source} is not a folder")
    present: dict[str, tuple[ModelEntry, Statistics]] = {}
    missing: list[str] = []
    reasons: list[str] = []
    for name in expected:
        folder = source / name
        if not folder.is_dir():
            missing.append(name)
            reasons.append(f"{name} (no folder)")
            continue
        try:
            present[name] = read_variant(folder)
        except CollectError as exc:
            missing.append(name)
            reasons.append(f"{name} ({exc})")
    if not present:
        raise CollectError(f"no complete variant in {source} (missing: {', '.join(reasons)})")

    recipes = {name: recipe_of(*documents) for name, documents in present.items()}
    first, recipe = next(iter(recipes.items()))
    for name, other in recipes.items():
        differ = sorted(key for key in recipe.keys() | other.keys() if recipe.get(key) != other.get(key))
        if differ:
            raise CollectError(
                f"{first} and {name} were trained differently ({', '.join(differ)}): "
                "a comparison is of one sweep's variants only"
            )
    full = not missing and set(expected) == set(VARIANT_NAMES)
    full_data = recipe.get("train_limit") is None and recipe.get("test_limit") is None
    if is_shipped(out_dir) and not (full and full_data):
        why = f"{len(missing)} variant(s) missing" if missing else "a slice of the data"
        raise CollectError(
            f"not writing into the shipped {out_dir}: {why}; only a full set (all {len(VARIANT_NAMES)} variants "
            "on the full data) replaces it. Collect into another folder with --out-dir"
        )

    rows = [comparison_row(name, *documents) for name, documents in present.items()]
    same = out_dir.exists() and out_dir.resolve() == source.resolve()
    if same:
        path = write_comparison(out_dir, rows, recipe, missing)
    else:
        _check_target(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = sibling(out_dir, "new")
        try:
            staging.mkdir()
            for name in present:
                shutil.copytree(source / name, staging / name, ignore=shutil.ignore_patterns(".*"))
            write_comparison(staging, rows, recipe, missing)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        replace_folder(staging, out_dir)
        path = out_dir / COMPARISON_JSON
    print(
        f"collected {len(present)} of {len(expected)} variants into {out_dir} ({COMPARISON_JSON}, {COMPARISON_MD})"
        + (f"; missing {len(missing)}: {', '.join(reasons)}" if missing else ""),
        flush=True,
    )
    return path
