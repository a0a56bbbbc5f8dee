"""`python -m training analyze` on a slice of real MNIST equals a direct recomputation from onnxruntime activations.

The recomputation below is written independently of ``service.featuremaps``: activations straight from an
onnxruntime session on the shipped classifier, norms, thresholds, counts, quantiles and top-9 in plain numpy.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnxruntime as ort
import pytest

from tests.helpers import MODELS
from training.__main__ import main

LIMIT = 300
LAYERS = ("conv1", "conv2", "pool")
REL = 1e-5


@pytest.fixture(scope="module")
def analysed(mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("statistics")
    status = main(
        [
            "analyze",
            "--data-dir",
            str(mnist_dir),
            "--model-dir",
            str(MODELS),
            "--out-dir",
            str(out),
            "--limit",
            str(LIMIT),
            "--batch-size",
            "128",
            "--no-plots",
        ]
    )
    assert status == 0
    return out, json.loads((out / "statistics.json").read_text())


@pytest.fixture(scope="module")
def direct(mnist_test):
    """Per layer: the (N, C) L2 norms of the first LIMIT test images, in float64, from onnxruntime directly."""
    images, labels = mnist_test[0][:LIMIT], mnist_test[1][:LIMIT].astype(int)
    session = ort.InferenceSession(str(MODELS / "classifier.onnx"), providers=["CPUExecutionProvider"])
    maps = session.run(list(LAYERS), {"input": (images.astype(np.float32) / 255.0)[..., None]})
    norms = {layer: np.sqrt((m.astype(np.float64) ** 2).sum(axis=(1, 2))) for layer, m in zip(LAYERS, maps)}
    return norms, labels, images


def count_band(norms: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[label][filter] counts of norm > threshold, at the lowest and highest they can be within float32 rounding."""
    surely = norms > thresholds * (1 + REL) + 1e-6
    maybe = norms > thresholds * (1 - REL) - 1e-6
    return (
        np.stack([surely[labels == d].sum(axis=0) for d in range(10)]),
        np.stack([maybe[labels == d].sum(axis=0) for d in range(10)]),
    )


def assert_counts(analysed_counts, norms, labels, thresholds):
    low, high = count_band(norms, labels, thresholds)
    counts = np.asarray(analysed_counts)
    assert counts.shape == (10, norms.shape[1])
    assert (low <= counts).all() and (counts <= high).all()
    assert (high - low).sum() <= 2, "too many norms within rounding of their threshold to compare"


def test_it_records_what_it_analysed(analysed, direct):
    _, stats = analysed
    _, labels, _ = direct
    manifest = json.loads((MODELS / "manifest.json").read_text())
    assert stats["model"] == "classifier" and stats["model_sha256"] == manifest["models"]["classifier"]["sha256"]
    assert stats["split"] == "test" and stats["images"] == LIMIT and stats["norm"] == "l2"
    assert stats["label_counts"] == np.bincount(labels, minlength=10).tolist()
    assert list(stats["layers"]) == list(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_dataset_threshold_is_the_mean_of_every_norm(analysed, direct, layer):
    norms, _, _ = direct
    assert analysed[1]["layers"][layer]["dataset_threshold"] == pytest.approx(norms[layer].mean(), rel=REL)


@pytest.mark.parametrize("layer", LAYERS)
def test_image_mean_counts_are_filters_above_each_images_mean_norm(analysed, direct, layer):
    norms, labels, _ = direct
    n = norms[layer]
    assert_counts(analysed[1]["layers"][layer]["active_counts"]["image-mean"], n, labels, n.mean(axis=1, keepdims=True))


@pytest.mark.parametrize("layer", LAYERS)
def test_dataset_mean_counts_are_filters_above_the_dataset_threshold(analysed, direct, layer):
    norms, labels, _ = direct
    n = norms[layer]
    assert_counts(analysed[1]["layers"][layer]["active_counts"]["dataset-mean"], n, labels, np.full((1, 1), n.mean()))


@pytest.mark.parametrize("layer", LAYERS)
def test_filter_label_mean_counts_use_each_filters_mean_over_the_label(analysed, direct, layer):
    norms, labels, _ = direct
    n, stats = norms[layer], analysed[1]["layers"][layer]
    means = np.stack([n[labels == d].mean(axis=0) for d in range(10)])
    assert np.allclose(stats["filter_label_means"], means, rtol=REL, atol=1e-6)
    low, high = count_band(n, labels, means[labels])
    counts = np.asarray(stats["active_counts"]["filter-label-mean"])
    assert (low <= counts).all() and (counts <= high).all()


@pytest.mark.parametrize("layer", LAYERS)
def test_norm_summaries_per_label_and_overall(analysed, direct, layer):
    norms, labels, _ = direct
    summaries = analysed[1]["layers"][layer]["norms"]
    assert set(summaries) == {"all", *map(str, range(10))}
    for key, summary in summaries.items():
        n = norms[layer] if key == "all" else norms[layer][labels == int(key)]
        expected = {
            "min": n.min(0),
            "q1": np.percentile(n, 25, axis=0),
            "median": np.median(n, axis=0),
            "q3": np.percentile(n, 75, axis=0),
            "max": n.max(0),
            "mean": n.mean(0),
            "std": n.std(0),
        }
        for name, values in expected.items():  # float32 norms: errors scale with the norms, not with the std
            assert np.allclose(summary[name], values, rtol=REL, atol=REL * n.max()), (key, name)


@pytest.mark.parametrize("layer", LAYERS)
def test_top_nine_are_the_images_with_the_largest_norm(analysed, direct, layer):
    norms, labels, _ = direct
    n, top = norms[layer], analysed[1]["layers"][layer]["top_images"]
    indices = np.asarray(top["indices"])
    assert indices.shape == (n.shape[1], 9)
    for k in range(n.shape[1]):
        strongest = np.sort(n[:, k])[::-1][:9]
        assert np.allclose(n[indices[k], k], strongest, rtol=REL, atol=1e-6), k
        assert np.allclose(top["norms"][k], strongest, rtol=REL, atol=1e-6), k
        assert top["labels"][k] == labels[indices[k]].tolist()


def test_the_top_images_are_stored_beside_with_their_checksum(analysed, direct):
    out, stats = analysed
    _, _, images = direct
    path = out / stats["top_images"]["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == stats["top_images"]["sha256"]
    with np.load(path) as archive:
        kept, pixels = archive["indices"], archive["images"]
    listed = {i for layer in LAYERS for row in stats["layers"][layer]["top_images"]["indices"] for i in row}
    assert set(kept.tolist()) == listed
    assert pixels.dtype == np.uint8 and np.array_equal(pixels, images[kept])


def test_a_slice_without_every_digit_is_refused(mnist_dir, tmp_path, capsys):
    status = main(
        [
            "analyze",
            "--data-dir",
            str(mnist_dir),
            "--model-dir",
            str(MODELS),
            "--out-dir",
            str(tmp_path),
            "--limit",
            "5",
            "--no-plots",
        ]
    )
    assert status == 2
    assert "hold no digit 3; use a larger --limit" in capsys.readouterr().err
    assert not (tmp_path / "statistics.json").exists()
