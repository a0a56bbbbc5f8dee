"""Fit and calibrate the "is this a digit?" judge (``service.studies.digit_judge``) for ``python -m training analyze``.

- Class means and the shared covariance of dense1 come from ``FIT_DIGITS`` training digits.
- The shape network (one hidden layer of ``HIDDEN`` ReLUs, Keras) learns those digits against ``STROKES`` synthetic
  non-digits (``training.nondigits.strokes``), classes weighted equally.
- Each part's score is centred on its own calibration point over the analysed split's digits, the
  ``1 - TARGET_RATE`` quantile for the shape part and the ``1 - INK_RATE`` quantile for the ink (whose heavy tail of
  bold digits would otherwise eat the false-alarm budget), and scaled by their inter-quartile range; the threshold is
  the ``1 - TARGET_RATE`` quantile of the judge's score (the larger part) over those digits.
- Then it is measured: the shares of the digits, of font-rendered letters and of uniform noise it flags, and the ROC
  AUC (letters and noise against the digits) of each simpler score tried on the way: the autoencoder's
  reconstruction error, the classifier's entropy and top probability, the Mahalanobis distance, and each part alone.
"""

from __future__ import annotations

import numpy as np

from service.runtime.registry import LoadedModel
from service.studies.digit_judge import OUTPUTS, DigitJudgeModel, features, part_scores
from training import nondigits

FIT_DIGITS = 20_000
STROKES = 20_000
HIDDEN = 32
EPOCHS = 15
TARGET_RATE = 0.02
INK_RATE = 0.0025
NOISE = 1_000
METHOD = (
    f"the larger of two robust z-scores: a {HIDDEN}-unit network over dense1, entropy, top probability and the "
    f"Mahalanobis distance, trained on {FIT_DIGITS:,} training digits against {STROKES:,} random-stroke non-digits "
    "(outlier exposure), and the input's mean intensity"
)


def _outputs(model: LoadedModel, images: np.ndarray, batch_size: int = 1000) -> dict[str, np.ndarray]:
    parts = [model.run(images[i : i + batch_size], list(OUTPUTS)) for i in range(0, len(images), batch_size)]
    return {name: np.concatenate([part[name] for part in parts]) for name in OUTPUTS}


def class_statistics(dense1: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class means of dense1 (10, units) and W with W W^T the inverse of the shared (within-class) covariance."""
    values = dense1.astype(np.float64)
    means = np.stack([values[labels == c].mean(axis=0) for c in range(10)])
    centred = values - means[labels]
    covariance = centred.T @ centred / len(values) + 1e-6 * np.eye(values.shape[1])
    return means, np.linalg.cholesky(np.linalg.inv(covariance))


def train_shape_network(x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Standardisation and weights of the shape network fitted to features ``x`` and labels ``y`` (1: non-digit)."""
    import keras

    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    keras.utils.set_random_seed(seed)
    network = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(HIDDEN, activation="relu", kernel_regularizer=keras.regularizers.l2(1e-4)),
            keras.layers.Dense(1),
        ]
    )
    network.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True))
    weight = np.where(y == 1, 0.5 * len(y) / y.sum(), 0.5 * len(y) / (len(y) - y.sum()))
    network.fit(
        ((x - mu) / sd).astype(np.float32),
        y.astype(np.float32),
        sample_weight=weight,
        batch_size=256,
        epochs=EPOCHS,
        verbose=0,
    )
    (w1, b1), (w2, b2) = (layer.get_weights() for layer in network.layers)
    return {"mu": mu, "sd": sd, "w1": w1, "b1": b1, "w2": w2, "b2": b2}


def roc_auc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """The probability that a positive scores above a negative (ties count half): the ROC AUC."""
    _, inverse, counts = np.unique(np.concatenate([negatives, positives]), return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]
    positive_ranks = ranks[len(negatives) :].sum()
    return float((positive_ranks - len(positives) * (len(positives) + 1) / 2) / (len(negatives) * len(positives)))


def fit_judge(
    classifier: LoadedModel,
    autoencoder: LoadedModel | None,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    digits: np.ndarray,
) -> tuple[dict[str, np.ndarray], dict]:
    """The judge's arrays and its statistics section (without the file fields), from uint8 training images and
    labels and the analysed split's uint8 ``digits``."""
    pick = np.random.default_rng(0).choice(len(train_images), min(FIT_DIGITS, len(train_images)), replace=False)
    fit_images = train_images[pick].astype(np.float32) / 255.0
    fit = _outputs(classifier, fit_images)
    means, whitening = class_statistics(fit["dense1"], train_labels[pick].astype(np.int64))
    synthetic = nondigits.strokes(STROKES)
    fake = _outputs(classifier, synthetic)
    x = np.concatenate([features(o["dense1"], o["output"], means, whitening) for o in (fit, fake)])
    y = np.r_[np.zeros(len(fit_images)), np.ones(len(synthetic))]
    arrays = {"means": means, "whitening": whitening, **train_shape_network(x, y)}

    letters, _ = nondigits.letters()
    noise = nondigits.uniform_noise(NOISE)
    groups = {"digits": digits.astype(np.float32) / 255.0, "letters": letters, "noise": noise}
    outputs = {name: _outputs(classifier, images) for name, images in groups.items()}
    raw = {name: part_scores(arrays, groups[name], o["dense1"], o["output"]) for name, o in outputs.items()}
    q1, q3 = np.quantile(raw["digits"], [0.25, 0.75], axis=0)
    arrays["centre"] = np.array(
        [np.quantile(raw["digits"][:, 0], 1 - TARGET_RATE), np.quantile(raw["digits"][:, 1], 1 - INK_RATE)]
    )
    arrays["spread"] = np.maximum(q3 - q1, 1e-9)
    judge = DigitJudgeModel(arrays, 0.0)
    scores = {name: judge.scores(groups[name], o) for name, o in outputs.items()}
    threshold = float(np.quantile(scores["digits"], 1 - TARGET_RATE))

    tried = {
        "judge": scores,
        "shape part alone": {name: r[:, 0] for name, r in raw.items()},
        "ink part alone": {name: r[:, 1] for name, r in raw.items()},
        "mahalanobis (dense1, shared covariance)": {
            name: features(o["dense1"], o["output"], means, whitening)[:, -1] for name, o in outputs.items()
        },
        "entropy": {name: features(o["dense1"], o["output"], means, whitening)[:, -3] for name, o in outputs.items()},
        "1 - top probability": {name: 1 - o["output"].max(axis=1) for name, o in outputs.items()},
    }
    if autoencoder is not None:
        tried["autoencoder reconstruction error"] = {
            name: ((autoencoder.run(images, ["decoded"])["decoded"][..., 0] - images) ** 2).mean(axis=(1, 2))
            for name, images in groups.items()
        }
    auc = {
        name: roc_auc(values["digits"], np.concatenate([values["letters"], values["noise"]]))
        for name, values in tried.items()
    }
    section = {
        "method": METHOD,
        "fitted_on": f"{len(pick):,} training digits and {len(synthetic):,} random-stroke non-digits",
        "threshold": threshold,
        "target_rate": TARGET_RATE,
        "flagged_digits": float((scores["digits"] > threshold).mean()),
        "flagged_letters": float((scores["letters"] > threshold).mean()),
        "flagged_noise": float((scores["noise"] > threshold).mean()),
        "letters": len(letters),
        "noise": len(noise),
        "auc": auc,
    }
    return arrays, section
