"""The builder on Keras models converted by tf2onnx (NHWC, the converter's Transposes around every NCHW op)
against TensorFlow's GradientTape on the Keras originals: a small functional CNN with BatchNormalization, a
DepthwiseConv2D, a residual Add and GlobalAveragePooling (the input's gradient and an intermediate layer's), and
MobileNetV2's saliency (Relu6 as Clip, ZeroPadding2D as Pad, expanded and projected residual blocks; 13 s on the
busy 2-core machine, so in the fast lane)."""

from __future__ import annotations

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf
import tf2onnx

from service.graphs.gradient_builder import gradient_graph

RELATIVE = 1e-4
SIDE, CLASSES = 16, 5


def small_cnn() -> keras.Model:
    """Conv -> BN -> ReLU -> depthwise -> BN -> ReLU, added back to the first block (residual), a strided Conv,
    GlobalAveragePooling and a Dense layer; outputs the logits and the residual block's output ``block``. The
    BatchNormalization statistics and affine parameters are set to random values, so no BN is the identity."""
    rng = np.random.default_rng(3)
    keras.utils.set_random_seed(3)
    layers = keras.layers
    images = keras.Input((SIDE, SIDE, 3), name="input")
    stem = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same")(images)))
    branch = layers.DepthwiseConv2D(3, padding="same")(stem)
    branch = layers.ReLU()(layers.BatchNormalization()(branch))
    block = layers.Add(name="block")([stem, branch])
    features = layers.ReLU()(layers.Conv2D(12, 3, strides=2, padding="same")(block))
    logits = layers.Dense(CLASSES, name="logits")(layers.GlobalAveragePooling2D()(features))
    model = keras.Model(images, [logits, block])
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, variance = (w.shape for w in layer.get_weights())
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma).astype(np.float32),
                    rng.normal(0, 0.2, beta).astype(np.float32),
                    rng.normal(0, 0.2, mean).astype(np.float32),
                    rng.uniform(0.5, 2.0, variance).astype(np.float32),
                ]
            )
    return model


def converted(model: keras.Model, shape: tuple[int, ...]) -> onnx.ModelProto:
    signature = [tf.TensorSpec((None, *shape), tf.float32, name="input")]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=17)
    return proto


def tape_gradients(
    model: keras.Model, images: np.ndarray, seeds: np.ndarray, layer: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """GradientTape's ∂(Σ seed·logits)/∂ input and (with ``layer``) ∂/∂ the model's second output."""
    x = tf.constant(images)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outputs = model(x, training=False)
        logits = outputs[0] if isinstance(outputs, list | tuple) else outputs
        value = tf.reduce_sum(logits * seeds)
    grad_input = tape.gradient(value, x).numpy()
    grad_layer = tape.gradient(value, outputs[1]).numpy() if layer else None
    return grad_input, grad_layer


def builder_gradients(proto: onnx.ModelProto, wrt: list[str], images: np.ndarray, seeds: np.ndarray) -> list:
    logits = proto.graph.output[0].name
    built = gradient_graph(proto, logits, wrt)
    session = ort.InferenceSession(built.model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([built.gradients[name] for name in wrt], {"input": images, built.seed_input: seeds})


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert np.abs(expected).max() > 0, what
    np.testing.assert_allclose(actual, expected, rtol=0, atol=RELATIVE * np.abs(expected).max(), err_msg=what)


@pytest.fixture(scope="module")
def small() -> tuple[keras.Model, onnx.ModelProto]:
    model = small_cnn()
    return model, converted(model, (SIDE, SIDE, 3))


def test_the_converted_graph_holds_the_converter_s_transposes_and_the_layers_under_test(small) -> None:
    ops = {node.op_type for node in small[1].graph.node}
    assert {"Transpose", "Conv", "Add", "Relu"} <= ops
    assert [output.name for output in small[1].graph.output] == ["logits", "block"]


def test_input_and_intermediate_gradients_of_a_keras_cnn_equal_gradient_tape(small) -> None:
    model, proto = small
    rng = np.random.default_rng(4)
    images = rng.normal(size=(3, SIDE, SIDE, 3)).astype(np.float32)
    seeds = np.eye(CLASSES, dtype=np.float32)[[0, 2, 4]]
    grad_input, grad_block = builder_gradients(proto, ["input", "block"], images, seeds)
    expected_input, expected_block = tape_gradients(model, images, seeds, layer=True)
    assert_close(grad_input, expected_input, "input")
    assert_close(grad_block, expected_block, "block")


def test_mobilenet_v2_saliency_equals_gradient_tape() -> None:
    keras.utils.set_random_seed(5)
    model = keras.applications.MobileNetV2(
        weights=None, input_shape=(96, 96, 3), classes=10, classifier_activation=None
    )
    proto = converted(model, (96, 96, 3))
    assert {"Clip", "Pad", "Add", "GlobalAveragePool"} <= {node.op_type for node in proto.graph.node}
    images = np.random.default_rng(6).uniform(-1, 1, size=(2, 96, 96, 3)).astype(np.float32)
    seeds = np.eye(10, dtype=np.float32)[[3, 7]]
    (saliency,) = builder_gradients(proto, ["input"], images, seeds)
    expected, _ = tape_gradients(model, images, seeds, layer=False)
    assert_close(saliency, expected, "saliency")
