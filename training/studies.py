"""The studies ``python -m training analyze`` adds to the statistics, beyond the active filters:

- feature invariance (Zeiler and Fergus' figure 5) averaged over the first ``INVARIANCE_IMAGES`` images, per
  transform and per digit (``service.studies.invariance`` does the transforms, as the service does for one upload);
- the optimized inputs of every filter and class (``training.optimize``), with each one's activation measured
  through onnxruntime next to the largest over the analysed images;
- the "is this a digit?" judge (``training.judge``), fitted and calibrated.

Each returns its section of ``statistics.json`` (a plain dict, validated by ``service.contract`` with the rest).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from service.attribution import METHODS
from service.attribution.faithfulness import STEPS, curves, faithfulness
from service.contract import DIGIT_JUDGE_FILE, LABELS, OPTIMIZED_INPUTS_FILE, PROBABILITIES
from service.runtime.registry import LoadedModel
from service.studies.explain import Limits, explain
from service.studies.invariance import LAYERS, TRANSFORMS, amounts, layer_distances, transformed
from training import optimize
from training.data import load_split, sha256_of
from training.judge import fit_judge
from training.npz import write_npz

INVARIANCE_IMAGES = 1000
IMAGES_PER_RUN = 24


def _average(rows: dict[str, np.ndarray], mask: np.ndarray) -> dict:
    """The curves of the images in ``mask``, averaged."""
    return {
        "images": int(mask.sum()),
        "probability": rows["probability"][mask].mean(axis=0),
        "accuracy": rows["correct"][mask].mean(axis=0),
        "distance": {layer: rows[layer][mask].mean(axis=0) for layer in LAYERS},
    }


def invariance_statistics(model: LoadedModel, images: np.ndarray, labels: np.ndarray, progress: bool = True) -> dict:
    """Every transform at its default amounts over uint8 ``images`` (N, 28, 28): the mean probability of the true
    digit, the share still classified as it, and each layer's mean distance from the untransformed image, for all
    images and per digit. The untransformed image and its transforms go through the model together, a few images
    per run."""
    inputs = images.astype(np.float32) / 255.0
    transforms = {}
    for name, spec in TRANSFORMS.items():
        values = amounts(name)
        steps = len(values)
        rows = {key: np.empty((len(images), steps)) for key in ("probability", "correct", *LAYERS)}
        for start in tqdm(
            range(0, len(images), IMAGES_PER_RUN), desc=f"invariance {name}", unit="run", disable=not progress
        ):
            chunk = inputs[start : start + IMAGES_PER_RUN]
            batch = np.concatenate([np.concatenate([image[None], transformed(image, name, values)]) for image in chunk])
            outputs = model.run(batch, [*LAYERS, PROBABILITIES])
            for i, label in enumerate(labels[start : start + IMAGES_PER_RUN]):
                rows_of = slice(i * (steps + 1), (i + 1) * (steps + 1))
                mine = {layer: maps[rows_of] for layer, maps in outputs.items()}
                moved = {layer: maps[1:] for layer, maps in mine.items()}
                distances = layer_distances(moved, {layer: maps[0] for layer, maps in mine.items()})
                probabilities = moved[PROBABILITIES]
                rows["probability"][start + i] = probabilities[:, label]
                rows["correct"][start + i] = probabilities.argmax(axis=1) == label
                for layer in LAYERS:
                    rows[layer][start + i] = distances[layer]
        transforms[name] = {
            "unit": spec.unit,
            "amounts": values,
            "all": _average(rows, np.ones(len(images), bool)),
            "digits": [_average(rows, labels == d) for d in range(LABELS)],
        }
    return {"images": int(len(images)), "transforms": transforms}


def optimized_statistics(
    model: LoadedModel, onnx_path: Path, images: np.ndarray, out_dir: Path, progress: bool = True
) -> dict:
    """The optimized inputs written to ``OPTIMIZED_INPUTS_FILE`` in ``out_dir``, and per layer each one's mean
    activation (classes: logit) through onnxruntime beside the largest over the uint8 ``images``."""

    started = time.perf_counter()
    inputs = optimize.optimized_inputs(model, onnx_path, progress)
    logits = optimize.logit_weights(model, onnx_path)
    dataset = optimize.mean_activations(model, logits, images)
    layers = {}
    for layer, made in inputs.items():
        reached = optimize.mean_activations(model, logits, made)[layer]
        layers[layer] = {"activation": np.diagonal(reached), "dataset_max": dataset[layer].max(axis=0)}
    path = out_dir / OPTIMIZED_INPUTS_FILE
    write_npz(path, **inputs)
    if progress:
        print(f"optimized inputs in {time.perf_counter() - started:.1f} s; {optimized_share(layers):.1%} beat the data")
    return {"file": OPTIMIZED_INPUTS_FILE, "sha256": sha256_of(path), "method": optimize.METHOD, "layers": layers}


def optimized_share(layers: dict) -> float:
    """Among the filters (and classes) active on at least one analysed image, the share whose optimized input
    excites them more than every one of those images."""
    beats = alive = 0
    for layer in layers.values():
        reached, best = np.asarray(layer["activation"]), np.asarray(layer["dataset_max"])
        mask = best > 0
        alive += int(mask.sum())
        beats += int((reached[mask] > best[mask]).sum())
    return beats / alive if alive else 0.0


def judge_statistics(
    classifier: LoadedModel,
    autoencoder: LoadedModel | None,
    data_dir,
    digits: np.ndarray,
    out_dir: Path,
    progress: bool = True,
) -> dict:
    """The digit judge fitted on the training split, calibrated on ``digits``, written to ``DIGIT_JUDGE_FILE``."""

    started = time.perf_counter()
    train_images, train_labels = load_split(data_dir, "train")
    arrays, section = fit_judge(classifier, autoencoder, train_images, train_labels, digits)
    path = out_dir / DIGIT_JUDGE_FILE
    write_npz(path, **arrays)
    if progress:
        print(
            f"digit judge in {time.perf_counter() - started:.1f} s: flags {section['flagged_digits']:.1%} of the "
            f"digits, {section['flagged_letters']:.1%} of {section['letters']} letters, "
            f"{section['flagged_noise']:.1%} of the noise"
        )
    return {"file": DIGIT_JUDGE_FILE, "sha256": sha256_of(path), **section}


ATTRIBUTION_IMAGES = 1000
ATTRIBUTION_CHUNK = 100  # images per call: each method's maps, then their curves (a progress step each)


def attribution_statistics(model: LoadedModel, images: np.ndarray, progress: bool = True) -> dict:
    """Faithfulness of every attribution method (``service.studies.explain``, the service's own maps, default
    parameters) over uint8 ``images`` (N, 28, 28): the mean deletion and insertion curves of each method's maps
    for the predicted class, and of a random pixel order (``attribution.faithfulness``, steps of 1/32)."""

    inputs = images.astype(np.float32) / 255.0
    n = len(inputs)
    methods, random_rows, first = {}, {"deletion": [], "insertion": []}, next(iter(METHODS))
    unlimited = Limits(max_steps=10**6, max_samples=10**6, max_squares=10**6, max_batch_work=10**12)
    for name in METHODS:
        started = time.perf_counter()
        rows = {"deletion": [], "insertion": []}
        parameters = {}
        for start in tqdm(range(0, n, ATTRIBUTION_CHUNK), desc=f"attribution {name}", unit="run", disable=not progress):
            chunk = inputs[start : start + ATTRIBUTION_CHUNK]
            maps = explain(model, chunk, name, limits=unlimited)
            parameters = maps.parameters
            if name == first:  # the random order does not depend on the map: its curves once, with the first
                reference = faithfulness(model.run, chunk, maps.targets, maps.pixels)
                deletion, insertion = reference.deletion, reference.insertion
                random_rows["deletion"].append(reference.random_deletion)
                random_rows["insertion"].append(reference.random_insertion)
            else:
                deletion, insertion = curves(model.run, chunk, maps.targets, maps.pixels)
            rows["deletion"].append(deletion)
            rows["insertion"].append(insertion)
        deletion, insertion = (np.concatenate(rows[kind]) for kind in ("deletion", "insertion"))
        fractions = np.linspace(0, 1, STEPS + 1)
        methods[name] = {
            "deletion_auc": float(np.trapezoid(deletion, fractions, axis=1).mean()),
            "insertion_auc": float(np.trapezoid(insertion, fractions, axis=1).mean()),
            "deletion": deletion.mean(axis=0),
            "insertion": insertion.mean(axis=0),
            "parameters": parameters,
            "seconds": time.perf_counter() - started,
        }
        if progress:
            print(
                f"attribution {name}: deletion {methods[name]['deletion_auc']:.3f}, insertion "
                f"{methods[name]['insertion_auc']:.3f} ({methods[name]['seconds']:.1f} s)"
            )
    fractions = np.linspace(0, 1, STEPS + 1)
    random_deletion, random_insertion = (np.concatenate(random_rows[kind]) for kind in ("deletion", "insertion"))
    return {
        "images": n,
        "target": "predicted",
        "fractions": fractions,
        "random_deletion_auc": float(np.trapezoid(random_deletion, fractions, axis=1).mean()),
        "random_insertion_auc": float(np.trapezoid(random_insertion, fractions, axis=1).mean()),
        "random_deletion": random_deletion.mean(axis=0),
        "random_insertion": random_insertion.mean(axis=0),
        "methods": methods,
    }
