"""The classifier rebuilt in Keras with an ONNX file's own weights, differentiated by TensorFlow's GradientTape: the
independent reference for the backward pass (the ONNX backward graph).

Max pooling's gradient is discontinuous where two units of a window are equal, and saturated tanh or sigmoid
units and blank regions make such ties common; TensorFlow and onnxruntime round those sums differently, so each
may see a different maximum. ``keras_network`` therefore takes its pooling switches from a given conv2 (the
first maximum of each window, worked out here in TensorFlow) so that both differentiate the same piece of the
function: onnxruntime's. ``native_keras_network`` is training.networks.build_classifier itself, Keras' own
pooling included, for the inputs where the two runtimes agree on every switch.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from service.attribution import ClassifierWeights
from training.networks import build_classifier


@tf.custom_gradient
def guided_relu(x: tf.Tensor):
    """ReLU whose gradient passes only positive signals, and only where the input was positive."""

    def grad(dy: tf.Tensor) -> tf.Tensor:
        return dy * tf.cast(x > 0, dy.dtype) * tf.cast(dy > 0, dy.dtype)

    return tf.nn.relu(x), grad


def _windows(x: tf.Tensor) -> tf.Tensor:
    """(N,H,W,C) as (N,H/2,W/2,C,4), each 2x2 window's units in row-major order."""
    n, (h, w, c) = tf.shape(x)[0], x.shape[1:]
    return tf.reshape(
        tf.transpose(tf.reshape(x, (n, h // 2, 2, w // 2, 2, c)), (0, 1, 3, 5, 2, 4)), (n, h // 2, w // 2, c, 4)
    )


def max_pool_with_switches(x: tf.Tensor, switch_source: tf.Tensor) -> tf.Tensor:
    """2x2 stride-2 max pooling of x whose gradient goes to the first maximum of each window of ``switch_source``."""
    source = _windows(switch_source)
    is_max = tf.cast(source >= tf.reduce_max(source, axis=-1, keepdims=True), x.dtype)
    switch = is_max * tf.cast(tf.math.cumsum(is_max, axis=-1, exclusive=True) == 0, x.dtype)

    @tf.custom_gradient
    def pool(x: tf.Tensor):
        n, (h, w, c) = tf.shape(x)[0], x.shape[1:]

        def grad(dy: tf.Tensor) -> tf.Tensor:
            routed = tf.reshape(switch * dy[..., None], (n, h // 2, w // 2, c, 2, 2))
            return tf.reshape(tf.transpose(routed, (0, 1, 4, 2, 5, 3)), (n, h, w, c))

        return tf.reduce_max(_windows(x), axis=-1), grad

    return pool(x)


def _load(model_layers: dict[str, layers.Layer], weights: ClassifierWeights) -> None:
    for name, kernel, bias in (
        ("conv1", weights.conv1_kernel, weights.conv1_bias),
        ("conv2", weights.conv2_kernel, weights.conv2_bias),
        ("dense1", weights.dense1_kernel, weights.dense1_bias),
        ("logits", weights.output_kernel, weights.output_bias),
    ):
        model_layers[name].set_weights([kernel, bias])


def keras_network(weights: ClassifierWeights, guided: bool = False) -> keras.Model:
    """Keras model of [image (N,28,28,1), switch source (N,24,24,64)] returning conv1, conv2, pool and the
    pre-softmax logits, loaded with ``weights``; its pooling routes gradients by the switch source."""
    activation = guided_relu if guided else weights.activation
    image = keras.Input(shape=(28, 28, 1), name="input")
    switch_source = keras.Input(shape=(24, 24, 64), name="switch_source")
    named = {
        "conv1": layers.Conv2D(32, 3, activation=activation, name="conv1"),
        "conv2": layers.Conv2D(64, 3, activation=activation, name="conv2"),
        "dense1": layers.Dense(128, activation=activation, name="dense1"),
        "logits": layers.Dense(10, name="logits"),
    }
    conv1 = named["conv1"](image)
    conv2 = named["conv2"](conv1)
    pool = layers.Lambda(lambda t: max_pool_with_switches(*t), output_shape=(12, 12, 64), name="pool")(
        [conv2, switch_source]
    )
    logits = named["logits"](named["dense1"](layers.Flatten(name="flatten")(pool)))
    _load(named, weights)
    return keras.Model([image, switch_source], [conv1, conv2, pool, logits])


def native_keras_network(weights: ClassifierWeights) -> keras.Model:
    """training.networks.build_classifier with ``weights``, returning conv1, conv2, pool and the logits."""
    model = build_classifier(weights.activation)
    logits = layers.Dense(10, name="logits")
    out = logits(model.get_layer("dense1").output)
    _load(
        {
            "conv1": model.get_layer("conv1"),
            "conv2": model.get_layer("conv2"),
            "dense1": model.get_layer("dense1"),
            "logits": logits,
        },
        weights,
    )
    return keras.Model(model.input, [model.get_layer(name).output for name in ("conv1", "conv2", "pool")] + [out])


def tf_gradients(
    model: keras.Model, images: np.ndarray, targets: np.ndarray, switch_source: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Forward activations and d(target logit)/d(input, conv1, conv2, pool) by GradientTape; ``switch_source``
    (onnxruntime's conv2 for ``images``) is required by keras_network's models."""
    x = tf.constant(images[..., None], dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        inputs = x if switch_source is None else [x, tf.constant(switch_source)]
        conv1, conv2, pool, logits = model(inputs, training=False)
        chosen = tf.reduce_sum(tf.gather(logits, tf.constant(targets), batch_dims=1))
    grads = tape.gradient(chosen, [x, conv1, conv2, pool])
    result = {f"grad_{name}": g.numpy() for name, g in zip(("input", "conv1", "conv2", "pool"), grads, strict=True)}
    result["grad_input"] = result["grad_input"][..., 0]
    return {**result, "conv1": conv1.numpy(), "conv2": conv2.numpy(), "pool": pool.numpy(), "logits": logits.numpy()}
