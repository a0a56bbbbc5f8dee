"""The training input pipeline and precision: whole-pixel batch shifts, every image once per epoch, and a
mixed-precision classifier exported as float32 with the parity check."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tensorflow as tf

from training.config import TrainConfig
from training.export import check_parity, export_onnx
from training.networks import CLASSIFIER_LAYERS, build_classifier, float32_classifier
from training.train import shift_batch, to_input, train_classifier, training_batches


def centres(images: np.ndarray) -> np.ndarray:
    """Centre of mass (row, column) of each image (N, H, W)."""
    grid = np.indices(images.shape[1:]).reshape(2, -1).astype(np.float64)
    flat = images.reshape(len(images), -1).astype(np.float64)
    return flat @ grid.T / flat.sum(axis=1, keepdims=True)


def test_every_image_of_a_batch_moves_by_its_own_offset_of_at_most_the_shift(mnist_test):
    tf.random.set_seed(0)
    digits = to_input(mnist_test[0][:500])
    moved = shift_batch(tf.constant(digits), 2).numpy()
    assert moved.shape == digits.shape and moved.dtype == np.float32
    offsets = centres(moved[..., 0]) - centres(digits[..., 0])
    assert np.abs(offsets).max() <= 2.1  # a digit near the border loses a little ink there, no more
    assert (offsets.min(axis=0) < -1.5).all() and (offsets.max(axis=0) > 1.5).all()
    assert len(np.unique(np.round(offsets, 2), axis=0)) > 400  # sub-pixel offsets, one per image
    ink = moved.sum(axis=(1, 2, 3)) / digits.sum(axis=(1, 2, 3))
    assert np.median(np.abs(ink - 1)) < 1e-4 and np.abs(ink - 1).max() < 0.1  # interpolation keeps the ink


def test_an_epoch_of_batches_holds_every_training_image_once(mnist_test):
    images, labels = mnist_test[0][:1000], mnist_test[1][:1000]
    config = TrainConfig(batch_size=128, shift=0)
    batches = list(training_batches(to_input(images), labels, config))
    assert [len(y) for _, y in batches] == [128] * 7 + [104]
    seen = np.concatenate([x.numpy() for x, _ in batches])[..., 0]
    order = np.lexsort(seen.reshape(len(seen), -1).T)
    expected = to_input(images)[..., 0]
    assert np.array_equal(seen[order], expected[np.lexsort(expected.reshape(len(expected), -1).T)])
    assert not np.array_equal(seen, expected)  # shuffled


def test_mixed_precision_computes_in_bfloat16_on_float32_weights():
    model = build_classifier(precision="mixed_bfloat16")
    assert model.get_layer("conv2").compute_dtype == "bfloat16"
    assert model.get_layer("output").compute_dtype == "float32"
    assert all(weight.dtype == "float32" for weight in model.weights)


def test_a_mixed_precision_run_is_exported_in_float32_within_the_parity_tolerance(mnist_test, tmp_path):
    x, y = to_input(mnist_test[0][:512]), mnist_test[1][:512]
    config = TrainConfig(epochs=1, precision="mixed_bfloat16")
    model, history = train_classifier(x, y, x[:256], y[:256], config)
    assert len(history["seconds"]) == 1
    assert all(model.get_layer(name).compute_dtype == "float32" for name in CLASSIFIER_LAYERS)
    path = tmp_path / "classifier.onnx"
    export_onnx(model, path, list(CLASSIFIER_LAYERS))
    assert max(check_parity(model, path, list(CLASSIFIER_LAYERS), x[:128]).values()) <= 1e-4
    inputs = {i.name: i.type.tensor_type.elem_type for i in onnx.load(str(path)).graph.input}
    assert inputs == {"input": onnx.TensorProto.FLOAT}


def test_the_float32_copy_carries_the_weights_exactly():
    trained = build_classifier(precision="mixed_bfloat16")
    copy = float32_classifier(trained)
    assert all(np.array_equal(a, b) for a, b in zip(trained.get_weights(), copy.get_weights()))


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="unknown precision 'float8'"):
        build_classifier(precision="float8")
