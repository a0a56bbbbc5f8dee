"""The paper's two networks, built with the Keras functional API; layer names are the API's names."""

from __future__ import annotations

import keras
from keras import layers

from training.config import PRECISIONS

CLASSIFIER_LAYERS = ("conv1", "conv2", "pool", "dense1", "output")


def build_classifier(activation: str = "relu", precision: str = "float32") -> keras.Model:
    """The paper's MNIST classifier (1,199,882 parameters); ``activation`` is the hidden layers' non-linearity.

    ``precision`` is the hidden layers' Keras dtype policy: with ``mixed_bfloat16`` they compute in bfloat16 on
    float32 weights; the softmax stays float32 either way.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    inputs = keras.Input(shape=(28, 28, 1), name="input")
    x = layers.Conv2D(32, 3, activation=activation, name="conv1", dtype=precision)(inputs)
    x = layers.Conv2D(64, 3, activation=activation, name="conv2", dtype=precision)(x)
    x = layers.MaxPooling2D(2, name="pool", dtype=precision)(x)
    x = layers.Dropout(0.25, name="dropout1", dtype=precision)(x)
    x = layers.Flatten(name="flatten", dtype=precision)(x)
    x = layers.Dense(128, activation=activation, name="dense1", dtype=precision)(x)
    x = layers.Dropout(0.5, name="dropout2", dtype=precision)(x)
    outputs = layers.Dense(10, activation="softmax", name="output", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="classifier")


def float32_classifier(model: keras.Model, activation: str = "relu") -> keras.Model:
    """The classifier rebuilt in float32 with ``model``'s weights (float32 variables under any policy): what is
    exported, parity-checked and analysed, whatever precision it was trained in."""
    copy = build_classifier(activation)
    copy.set_weights(model.get_weights())
    return copy


def build_autoencoder() -> keras.Model:
    """The paper's convolutional autoencoder: 28x28x1 -> ``encoded`` 4x4x8 -> ``decoded`` 28x28x1."""
    inputs = keras.Input(shape=(28, 28, 1), name="input")
    x = layers.Conv2D(16, 3, activation="relu", padding="same", name="enc_conv1")(inputs)
    x = layers.MaxPooling2D(2, padding="same", name="enc_pool1")(x)
    x = layers.Conv2D(8, 3, activation="relu", padding="same", name="enc_conv2")(x)
    x = layers.MaxPooling2D(2, padding="same", name="enc_pool2")(x)
    x = layers.Conv2D(8, 3, activation="relu", padding="same", name="enc_conv3")(x)
    x = layers.MaxPooling2D(2, padding="same", name="encoded")(x)
    x = layers.Conv2D(8, 3, activation="relu", padding="same", name="dec_conv1")(x)
    x = layers.UpSampling2D(2, name="dec_up1")(x)
    x = layers.Conv2D(8, 3, activation="relu", padding="same", name="dec_conv2")(x)
    x = layers.UpSampling2D(2, name="dec_up2")(x)
    x = layers.Conv2D(16, 3, activation="relu", name="dec_conv3")(x)
    x = layers.UpSampling2D(2, name="dec_up3")(x)
    outputs = layers.Conv2D(1, 3, activation="sigmoid", padding="same", name="decoded")(x)
    return keras.Model(inputs, outputs, name="autoencoder")


def exported_layers(model: keras.Model) -> list[str]:
    """Names of the layers whose outputs the ONNX export exposes: the classifier's five, every autoencoder layer."""
    if model.name == "classifier":
        return list(CLASSIFIER_LAYERS)
    return [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def describe_layers(model: keras.Model) -> list[dict]:
    """Name, type, output shape (without batch) and parameter count of every layer but the input."""
    return [
        {
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": list(layer.output.shape[1:]),
            "params": int(layer.count_params()),
        }
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
