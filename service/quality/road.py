"""ROAD, RemOve And Debias (Rong et al. 2022): does the classifier still find its class when the pixels a map ranks
highest (MoRF) or lowest (LeRF) are removed, by an imputation that does not itself leak which pixels were removed?

Removal is the paper's noisy linear imputation: each removed pixel becomes the weighted mean of its 8 neighbours
(1/6 the direct ones, 1/12 the diagonal ones, neighbours outside the image left out), removed neighbours being
unknowns too, so one linear system per image and fraction (all solved as one block-diagonal system); then Gaussian
noise of standard deviation ``noise`` is added to the removed pixels. The order is by the signed map (most relevant
first: the highest value), as the paper and Quantus's ROAD (``abs=False``) rank. At each fraction the model's
prediction is compared with the target, as Quantus's ROAD scores it; a map's score is the mean of those 0/1 answers
over the fractions (the area under the accuracy curve): low for MoRF and high for LeRF is a faithful map.

Against Quantus 0.6.0: the same system (its ``noisy_linear_imputation``, adapted from the paper's code), solved
with scipy's sparse solver as Quantus does, and the noise drawn from a seeded generator instead of numpy's global
one; Quantus ranks MoRF only, LeRF is the ascending order of the same map.

Images (N, C, H, W) of an imported model, in its normalised input: the same pixels are removed in every channel,
each channel imputed from its own neighbours (Quantus's ``noisy_linear_imputation`` of a (C, H, W) image: one
system, a right-hand side per channel), and each channel's noise is ``noise`` in [0, 1] pixel units times the
channel's ``scale`` (the model's 1 / std), so that it is the same amount of noise in the picture whatever the
model's normalisation.
"""

from __future__ import annotations

import numpy as np

from service.quality.callables import ScoresFn, as_planes

PERCENTAGES = tuple(range(5, 100, 10))  # the fractions of the pixels removed, in percent
NOISE = 0.01  # the paper's and Quantus's default
NEIGHBOURS = (
    ((1, 1), 1 / 12),
    ((0, 1), 1 / 6),
    ((-1, 1), 1 / 12),
    ((1, -1), 1 / 12),
    ((0, -1), 1 / 6),
    ((-1, -1), 1 / 12),
    ((1, 0), 1 / 6),
    ((-1, 0), 1 / 6),
)


Entries = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def imputation_system(image: np.ndarray, removed: np.ndarray) -> Entries:
    """The linear system imputing the pixels at flat indices ``removed`` of ``image`` (H, W): its entries' rows,
    columns and values (one row per removed pixel, at most 9 entries each) and its right-hand side."""
    height, width = image.shape
    flat = image.astype(np.float64).ravel()
    count = len(removed)
    unknown = np.full(flat.size, -1)
    unknown[removed] = np.arange(count)
    rows, cols = np.divmod(removed, width)
    entry_rows, entry_cols, entries = [np.arange(count)], [np.arange(count)], []
    known = np.zeros(count)
    total = np.zeros(count)
    for (dr, dc), weight in NEIGHBOURS:
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (c >= 0) & (r < height) & (c < width)
        at = np.flatnonzero(inside)
        neighbour = r[inside] * width + c[inside]
        total[at] += weight
        variable = unknown[neighbour]
        is_unknown = variable >= 0
        entry_rows.append(at[is_unknown])
        entry_cols.append(variable[is_unknown])
        entries.append(np.full(int(is_unknown.sum()), -weight))
        known[at[~is_unknown]] += weight * flat[neighbour[~is_unknown]]
    return np.concatenate(entry_rows), np.concatenate(entry_cols), np.concatenate([total, *entries]), known


def solved(systems: list[Entries]) -> list[np.ndarray]:
    """The solutions of independent ``imputation_system``s, as one block-diagonal sparse solve (scipy imported here,
    on the first ROAD request, so the service starts without it: its start-up memory is budgeted)."""
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    offsets = np.cumsum([0, *(len(known) for *_, known in systems)])
    matrix = sparse.csc_matrix(
        (
            np.concatenate([values for _, _, values, _ in systems]),
            (
                np.concatenate([rows + at for (rows, _, _, _), at in zip(systems, offsets)]),
                np.concatenate([cols + at for (_, cols, _, _), at in zip(systems, offsets)]),
            ),
        ),
        shape=(offsets[-1], offsets[-1]),
    )
    solution = np.atleast_1d(spsolve(matrix, np.concatenate([known for *_, known in systems])))
    return np.split(solution, offsets[1:-1])


def imputed(image: np.ndarray, removed: np.ndarray, noise_values: np.ndarray) -> np.ndarray:
    """``image`` (H, W) or (C, H, W) with the pixels at flat indices ``removed`` (of H x W) replaced in every
    channel by the linear imputation from their neighbours plus ``noise_values`` (one per removed pixel, or
    (C, removed) one per channel)."""
    planes = image.astype(np.float64).reshape(-1, *image.shape[-2:])
    flat = planes.reshape(len(planes), -1)
    drawn = np.broadcast_to(np.asarray(noise_values).reshape(-1, len(removed)), (len(planes), len(removed)))
    for c, solution in enumerate(solved([imputation_system(plane, removed) for plane in planes])):
        flat[c, removed] = solution + drawn[c]
    return flat.reshape(image.shape)


def road(
    scores: ScoresFn,
    images: np.ndarray,
    targets: np.ndarray,
    maps: np.ndarray,
    most_relevant_first: bool,
    noise: float = NOISE,
    seed: int = 0,
    percentages: tuple[int, ...] = PERCENTAGES,
    scale: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(N, len(percentages)) whether each image ((N, H, W), or (N, C, H, W) with the same pixels removed in every
    channel, their noise times the channel's ``scale``) is still classified as its target after that percentage of
    its pixels is imputed in the map's order, and (N,) its mean over the percentages. One sparse solve of every
    imputation and one batched run of ``scores``."""
    n = len(images)
    planes = as_planes(np.asarray(images, np.float64))
    channels = planes.shape[1]
    flat = np.asarray(maps, np.float64).reshape(n, -1)
    order = np.argsort(-flat if most_relevant_first else flat, axis=1, kind="stable")
    rng = np.random.default_rng(seed)
    removals = [
        (i, j, order[i, : int(flat.shape[1] * percentage / 100)])
        for i in range(n)
        for j, percentage in enumerate(percentages)
    ]
    noises = [noise * rng.standard_normal((channels, len(removed))) for _, _, removed in removals]
    if scale is not None:
        noises = [drawn * np.asarray(scale, np.float64).reshape(channels, 1) for drawn in noises]
    solutions = solved(
        [imputation_system(planes[i, c], removed) for i, _, removed in removals for c in range(channels)]
    )
    perturbed = np.repeat(planes.reshape(n, 1, channels, -1), len(percentages), axis=1)
    for k, ((i, j, removed), drawn) in enumerate(zip(removals, noises, strict=True)):
        for c in range(channels):
            perturbed[i, j, c, removed] = solutions[k * channels + c] + drawn[c]
    perturbed = perturbed.astype(np.float32)
    predicted = scores(perturbed.reshape(-1, *images.shape[1:])).argmax(axis=1).reshape(n, len(percentages))
    correct = (predicted == np.asarray(targets)[:, None]).astype(np.float64)
    return correct, correct.mean(axis=1)
