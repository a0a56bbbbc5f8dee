"""Deletion and insertion curves (Petsiuk et al. 2018, RISE): does the map rank the pixels the classifier needs?

Pixels are taken in the order of the map's magnitude (|map|, so signed maps rank by strength either way),
1/32 of the image per step. Deletion sets them to 0 in the image, insertion copies them onto a black image; the
target's softmax probability is tracked after each step, and each curve is summarised by its area (trapezoid
rule over the fraction of pixels, 0..1). A good map gives a low deletion and a high insertion area. The same
curves for a random pixel order are the reference a map must beat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.attribution.inputs import Range, RunFn, batch
from service.graphs.classifier_weights import IMAGE_SIZE

STEPS = 32
SEED = Range(default=0, low=0, high=2**32 - 1)


@dataclass(frozen=True)
class Faithfulness:
    """Curves (N, STEPS+1) of the target probability at ``fractions`` (STEPS+1,) of the pixels moved, and their
    areas (N,), for the map's order and for a random order."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    deletion_auc: np.ndarray
    insertion_auc: np.ndarray
    random_deletion_auc: np.ndarray
    random_insertion_auc: np.ndarray


def _curves(run: RunFn, x: np.ndarray, t: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion curves (N, STEPS+1) of images x along pixel ``order`` (N, 784), one batched run."""
    pixels = IMAGE_SIZE * IMAGE_SIZE
    counts = np.round(np.linspace(0, pixels, STEPS + 1)).astype(int)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(pixels)[None].repeat(len(x), 0), axis=1)
    moved = rank[:, None, :] < counts[None, :, None]  # (N, STEPS+1, 784): pixel moved by that step
    flat = x.reshape(len(x), 1, pixels)
    deleted = np.where(moved, 0, flat)
    inserted = np.where(moved, flat, 0)
    both = np.concatenate([deleted, inserted], axis=1).reshape(-1, IMAGE_SIZE, IMAGE_SIZE).astype(np.float32)
    p = run(both, ["output"])["output"].reshape(len(x), 2 * (STEPS + 1), -1)
    p = np.take_along_axis(p, t[:, None, None], axis=2)[..., 0]
    return p[:, : STEPS + 1], p[:, STEPS + 1 :]


def curves(run: RunFn, images: np.ndarray, targets: np.ndarray, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The deletion and insertion curves (N, STEPS+1) of ``maps`` alone, without the random reference (for a
    study that computes the reference once for several methods)."""
    x, t = batch(images, targets)
    m = np.asarray(maps, dtype=np.float32).reshape(x.shape)
    return _curves(run, x, t, np.argsort(-np.abs(m.reshape(len(m), -1)), axis=1, kind="stable"))


def faithfulness(
    run: RunFn, images: np.ndarray, targets: np.ndarray, maps: np.ndarray, seed: int = SEED.default
) -> Faithfulness:
    """Deletion and insertion curves and areas of (N,28,28) ``maps`` for their images' targets."""
    SEED.check("seed", seed)
    x, t = batch(images, targets)
    m = np.asarray(maps, dtype=np.float32)
    if m.shape != x.shape:
        raise ValueError(f"maps must be (N,{IMAGE_SIZE},{IMAGE_SIZE}) like the images {x.shape}, got {m.shape}")
    order = np.argsort(-np.abs(m.reshape(len(m), -1)), axis=1, kind="stable")
    random_order = np.argsort(np.random.default_rng(seed).random(order.shape), axis=1)
    fractions = np.linspace(0, 1, STEPS + 1)
    deletion, insertion = _curves(run, x, t, order)
    random_deletion, random_insertion = _curves(run, x, t, random_order)
    curves = (deletion, insertion, random_deletion, random_insertion)
    return Faithfulness(fractions, *curves, *(np.trapezoid(c, fractions, axis=1) for c in curves))


def faithfulness_over(
    probabilities: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    fill: np.ndarray,
    targets: np.ndarray,
    pixels: np.ndarray,
    seed: int = SEED.default,
) -> Faithfulness:
    """The deletion and insertion curves and areas of any model's maps: ``images`` (N, C, H, W) in the model's
    input, ``pixels`` (N, H, W) the maps over them, ``fill`` (C,) the input value of a black pixel (deletion sets a
    pixel's channels to it, insertion starts from the all-black image), ``probabilities`` the model's (M, C, H, W)
    to (M, classes). The same steps and random reference as ``faithfulness``."""
    SEED.check("seed", seed)
    n, channels, height, width = images.shape
    count = height * width
    black = np.broadcast_to(np.asarray(fill, images.dtype).reshape(1, channels, 1), (1, channels, count))
    steps = np.round(np.linspace(0, count, STEPS + 1)).astype(int)
    flat_maps = np.abs(np.asarray(pixels, dtype=np.float32).reshape(n, count))
    orders = {
        "map": np.argsort(-flat_maps, axis=1, kind="stable"),
        "random": np.argsort(np.random.default_rng(seed).random((n, count)), axis=1),
    }
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, order in orders.items():
        deletion, insertion = np.zeros((n, STEPS + 1)), np.zeros((n, STEPS + 1))
        for i in range(n):
            rank = np.empty(count, np.intp)
            rank[order[i]] = np.arange(count)
            moved = (rank[None, :] < steps[:, None])[:, None, :]  # (STEPS+1, 1, H*W)
            flat = images[i].reshape(1, channels, count)
            both = np.concatenate([np.where(moved, black, flat), np.where(moved, flat, black)])
            p = probabilities(both.reshape(-1, channels, height, width).astype(images.dtype))[:, targets[i]]
            deletion[i], insertion[i] = p[: STEPS + 1], p[STEPS + 1 :]
        found[name] = (deletion, insertion)
    fractions = np.linspace(0, 1, STEPS + 1)
    curves = (*found["map"], *found["random"])
    return Faithfulness(fractions, *curves, *(np.trapezoid(c, fractions, axis=1) for c in curves))
