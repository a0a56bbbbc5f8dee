"""The two networks have exactly the paper's layers, shapes and parameter counts."""

from __future__ import annotations

import pytest

from training.networks import build_autoencoder, build_classifier, describe_layers

CLASSIFIER = {
    "conv1": ([26, 26, 32], 320),
    "conv2": ([24, 24, 64], 18_496),
    "pool": ([12, 12, 64], 0),
    "dense1": ([128], 1_179_776),
    "output": ([10], 1_290),
}


@pytest.fixture(scope="module")
def classifier_layers():
    return {layer["name"]: layer for layer in describe_layers(build_classifier())}


@pytest.mark.parametrize("name", CLASSIFIER)
def test_classifier_layer_has_the_papers_shape_and_parameter_count(classifier_layers, name):
    shape, params = CLASSIFIER[name]
    assert classifier_layers[name]["output_shape"] == shape
    assert classifier_layers[name]["params"] == params


def test_classifier_has_1199882_parameters():
    assert build_classifier().count_params() == 1_199_882


def test_classifier_activation_is_an_argument():
    model = build_classifier("tanh")
    assert model.get_layer("conv1").activation.__name__ == "tanh"
    assert model.get_layer("output").activation.__name__ == "softmax"


def test_autoencoder_encodes_to_4x4x8_and_decodes_to_28x28x1():
    layers = {layer["name"]: layer for layer in describe_layers(build_autoencoder())}
    assert layers["encoded"]["output_shape"] == [4, 4, 8]
    assert layers["decoded"]["output_shape"] == [28, 28, 1]
    assert [name for name in layers if name.startswith("dec_conv")] == ["dec_conv1", "dec_conv2", "dec_conv3"]
