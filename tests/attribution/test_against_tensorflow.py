"""The backward pass (the ONNX backward graph run by onnxruntime) against TensorFlow's GradientTape on the same
network with the ONNX file's weights, for 24 real test digits and two real classifiers (the shipped ReLU model and a
tanh variant); every map within 1e-4 of the TensorFlow map's max abs. See tf_reference for why the pooling switches
are onnxruntime's."""

from __future__ import annotations

import numpy as np
import pytest

from service.attribution.backward import backward
from service.attribution.grad_cam import grad_cam
from service.attribution.gradient_x_input import gradient_x_input
from service.attribution.guided_backprop import guided_backprop
from service.attribution.saliency import saliency
from service.attribution.smoothgrad import smoothgrad, smoothgrad_noise
from tests.attribution.conftest import Classifier, load_classifier
from tests.attribution.maps import assert_maps_close
from tests.attribution.tf_reference import keras_network, native_keras_network, tf_gradients

SPATIAL_LAYERS = ("conv1", "conv2", "pool")


@pytest.fixture(scope="module")
def tensorflow():
    """reference(classifier, images, targets, guided=False): TensorFlow's activations and gradients, from Keras
    copies of the classifiers built once each."""
    networks = {}

    def reference(
        classifier: Classifier, images: np.ndarray, targets: np.ndarray, guided: bool = False
    ) -> dict[str, np.ndarray]:
        key = (classifier.path, guided)
        if key not in networks:
            networks[key] = keras_network(classifier.weights, guided)
        return tf_gradients(networks[key], images, targets, classifier.run(images, ["conv2"])["conv2"])

    return reference


def test_the_target_logits_equal_tensorflow(classifier, digits, tensorflow):
    images, targets = digits
    ours = backward(classifier.weights, images, targets).logits
    reference = tensorflow(classifier, images, targets)["logits"][np.arange(len(targets)), targets]
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layer", SPATIAL_LAYERS)
def test_the_gradient_at_each_spatial_layer_equals_tensorflow(classifier, digits, tensorflow, layer):
    images, targets = digits
    ours = getattr(backward(classifier.weights, images, targets), layer)
    assert_maps_close(ours, tensorflow(classifier, images, targets)[f"grad_{layer}"])


def test_saliency_equals_tensorflow(classifier, digits, tensorflow):
    images, targets = digits
    ours = saliency(classifier.run, classifier.weights, images, targets)
    assert ours.shape == (len(images), 28, 28) and ours.dtype == np.float32
    assert_maps_close(ours, tensorflow(classifier, images, targets)["grad_input"])


def test_saliency_equals_keras_own_network_and_pooling_on_the_clean_digits(classifier, digits):
    """training.networks.build_classifier end to end, Keras' own max pooling gradient included."""
    images, targets = digits
    ours = saliency(classifier.run, classifier.weights, images, targets)
    assert_maps_close(ours, tf_gradients(native_keras_network(classifier.weights), images, targets)["grad_input"])


def test_gradient_x_input_equals_tensorflow(classifier, digits, tensorflow):
    images, targets = digits
    ours = gradient_x_input(classifier.run, classifier.weights, images, targets)
    assert_maps_close(ours, images * tensorflow(classifier, images, targets)["grad_input"])


def test_guided_backprop_equals_tensorflow_with_a_guided_relu(shipped, digits, tensorflow):
    images, targets = digits
    ours = guided_backprop(shipped.run, shipped.weights, images, targets)
    assert_maps_close(ours, tensorflow(shipped, images, targets, guided=True)["grad_input"])
    assert np.abs(ours - saliency(shipped.run, shipped.weights, images, targets)).max() > 1e-2 * np.abs(ours).max()


@pytest.mark.parametrize("layer", SPATIAL_LAYERS)
def test_grad_cam_equals_tensorflow(classifier, digits, tensorflow, layer):
    images, targets = digits
    ours = grad_cam(classifier.run, classifier.weights, images, targets, layer=layer)
    result = tensorflow(classifier, images, targets)
    alphas = result[f"grad_{layer}"].mean(axis=(1, 2), keepdims=True)
    reference = np.maximum((alphas * result[layer]).sum(axis=-1), 0)
    assert ours.shape == reference.shape == result[layer].shape[:3]
    assert_maps_close(ours, reference)


def test_smoothgrad_equals_tensorflow_on_the_same_noise(classifier, digits, tensorflow):
    images, targets = digits
    ours = smoothgrad(classifier.run, classifier.weights, images, targets, samples=10, noise=0.15, seed=7)
    reference = np.mean(
        [tensorflow(classifier, images + field, targets)["grad_input"] for field in smoothgrad_noise(10, 0.15, 7)],
        axis=0,
    )
    assert_maps_close(ours, reference)


@pytest.fixture(scope="module", params=["sigmoid", "elu"])
def other_activation(request, tmp_path_factory) -> Classifier:
    """A freshly initialised classifier with the sigmoid or elu activation, exported as training does (tf2onnx
    leaves out its all-zero biases altogether)."""
    import keras

    from training.export import export_onnx
    from training.networks import CLASSIFIER_LAYERS, build_classifier

    keras.utils.set_random_seed(3)
    path = tmp_path_factory.mktemp(request.param) / "classifier.onnx"
    export_onnx(build_classifier(request.param), path, list(CLASSIFIER_LAYERS))
    exported = load_classifier(path)
    assert exported.weights.activation == request.param
    return exported


def test_saliency_equals_tensorflow_for_the_other_activations(other_activation, digits, tensorflow):
    """The sigmoid and elu derivatives and graph ops."""
    images, targets = digits
    ours = saliency(other_activation.run, other_activation.weights, images, targets)
    assert_maps_close(ours, tensorflow(other_activation, images, targets)["grad_input"])


@pytest.mark.parametrize("layer", SPATIAL_LAYERS)
def test_the_spatial_gradients_equal_tensorflow_for_the_other_activations(other_activation, digits, tensorflow, layer):
    """Grad-CAM's gradients through the sigmoid and elu derivatives."""
    images, targets = digits
    ours = getattr(backward(other_activation.weights, images, targets), layer)
    assert_maps_close(ours, tensorflow(other_activation, images, targets)[f"grad_{layer}"])
