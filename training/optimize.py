"""What each filter and class wants to see: inputs made by gradient ascent (Erhan et al. 2009; Olah et al. 2017).

For every filter of conv1, conv2 and pool, a 28x28 input in [0, 1] that maximises the filter's mean activation, and
for every class one that maximises its logit (dense1 times the output layer's weights plus its bias: the graph ends
in a softmax, whose probabilities another class can raise just by falling). The classifier is rebuilt in Keras with
the ONNX file's own weights (checked against onnxruntime), and all filters of a layer are optimised at once as one
batch. Each input is ``sigmoid(v)``, so it stays in [0, 1]; ``v`` starts at grey plus noise (a flat start leaves
dead ReLUs without a gradient), once with little and once with much noise, the better kept per filter. The ascent
explores on a surrogate (leaky ReLU, 2x2 max-pooled map) with the usual regularisers, random jitter of up to 2 px and
a light blur every few steps, then settles on the true objective without jitter. No L2 pull: Adam scales a small
L2 gradient up to full steps wherever the objective's gradient is zero, which washed weak filters back to grey. The
results are 8-bit images, as they are served and checked: their activations are measured again through onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper
from tqdm import tqdm

from service.contract import CLASSES_KEY, PROBABILITIES, SPATIAL_LAYERS
from service.runtime.registry import LoadedModel

STEPS = 240
SETTLE = 40
EXPLORE = STEPS - SETTLE
LEARNING_RATE = 0.08
JITTER = 2
BLUR_EVERY = 8
LEAK = 0.1
STARTS = (0.5, 2.0)
METHOD = (
    f"gradient ascent on the mean activation (classes: the logit) of an input sigmoid(v), {STEPS} Adam steps "
    f"(learning rate {LEARNING_RATE}) from grey plus noise (one run for each spread {', '.join(map(str, STARTS))} in "
    f"logit space, the best kept per filter); {EXPLORE} steps on a surrogate (leaky ReLU {LEAK:g}, map max-pooled "
    f"2x2) with jitter of up to {JITTER} px and a 3x3 blur every {BLUR_EVERY} steps, then {SETTLE} on the true "
    "objective without jitter; 8-bit"
)


def onnx_weights(onnx_path) -> dict[tuple[int, ...], np.ndarray]:
    """The ONNX file's initializers by shape (every weight of the paper's classifier has a shape of its own)."""
    proto = onnx.load(str(onnx_path))
    return {tuple(a.shape): a for a in (numpy_helper.to_array(init) for init in proto.graph.initializer)}


def logit_weights(model: LoadedModel, onnx_path) -> tuple[np.ndarray, np.ndarray]:
    """The output layer's weights (dense1 units, classes) and bias (classes,) from the ONNX file."""
    weights = onnx_weights(onnx_path)
    units, classes = model.layer_shapes["dense1"][-1], model.layer_shapes[PROBABILITIES][-1]
    return weights[(units, classes)], weights[(classes,)]


def keras_classifier(model: LoadedModel, onnx_path) -> object:
    """The paper's classifier in Keras carrying the exact weights of ``onnx_path`` (the served ``model``), its
    activation from the manifest; RuntimeError when it disagrees with onnxruntime."""
    from training.networks import build_classifier

    weights = onnx_weights(onnx_path)
    keras_model = build_classifier(model.entry.training.get("activation", "relu"))
    kernels = model.kernels
    keras_model.get_layer("conv1").set_weights([kernels["conv1"], weights[(kernels["conv1"].shape[-1],)]])
    keras_model.get_layer("conv2").set_weights([kernels["conv2"], weights[(kernels["conv2"].shape[-1],)]])
    dense1, output = keras_model.get_layer("dense1"), keras_model.get_layer("output")
    dense1.set_weights([weights[tuple(dense1.kernel.shape)], weights[(dense1.units,)]])
    output.set_weights([weights[tuple(output.kernel.shape)], weights[(output.units,)]])
    probe = np.random.default_rng(0).random((8, 28, 28), dtype=np.float32)
    expected = model.run(probe, [PROBABILITIES])[PROBABILITIES]
    delta = float(np.abs(np.asarray(keras_model(probe[..., None], training=False)) - expected).max())
    if delta > 1e-4:
        raise RuntimeError(f"the Keras rebuild of {onnx_path} differs from onnxruntime by {delta}")
    return keras_model


def _objective_model(keras_model, layer: str, activation: str, surrogate: bool = False):
    """A Keras model from the input to what ``layer``'s inputs maximise: each filter's mean activation (N, C), or for
    ``classes`` the logits (N, 10).

    The ``surrogate`` is what the ascent explores with: the filter's ReLU made leaky (slope ``LEAK``), so that a
    filter silent on the current input still has a gradient, and its map max-pooled 2x2 before the mean, which
    rewards a strong response somewhere over a uniformly weak one. The inputs are judged by the true objective."""
    import keras
    from keras import ops

    x = keras_model.input
    if layer == CLASSES_KEY:
        output = keras_model.get_layer(PROBABILITIES)
        return keras.Model(x, ops.matmul(keras_model.get_layer("dense1").output, output.kernel) + output.bias)
    leaky = surrogate and activation == "relu"
    act = (lambda z: ops.leaky_relu(z, LEAK)) if leaky else keras.activations.get(activation)
    conv1, conv2 = keras_model.get_layer("conv1"), keras_model.get_layer("conv2")
    if layer == "conv1":
        maps = act(ops.conv(x, conv1.kernel) + conv1.bias)
    else:
        maps = act(ops.conv(conv1.output, conv2.kernel) + conv2.bias)
    if layer == "pool" or surrogate:
        maps = ops.max_pool(maps, 2)
    return keras.Model(x, ops.mean(maps, axis=(1, 2)))


def ascend(explore, objective, count: int, spread: float, seed: int) -> np.ndarray:
    """One run of the ascent from grey plus noise of ``spread`` (logit space): ``count`` inputs (uint8), input k
    maximising output k of ``objective``, after ``EXPLORE`` steps on the ``explore`` surrogate."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    v = tf.Variable(rng.normal(0.0, spread, (count, 28, 28, 1)).astype(np.float32))
    optimizer = tf.keras.optimizers.Adam(LEARNING_RATE)
    pick = tf.one_hot(np.arange(count), count)
    blur = tf.constant(np.full((3, 3, 1, 1), 1 / 9, np.float32))

    def step_on(target):
        @tf.function
        def step(shift_y: tf.Tensor, shift_x: tf.Tensor) -> None:
            with tf.GradientTape() as tape:
                x = tf.roll(tf.sigmoid(v), shift=[shift_y, shift_x], axis=[1, 2])
                value = tf.reduce_sum(target(x, training=False) * pick, axis=1)
                loss = -tf.reduce_sum(value)
            optimizer.apply_gradients([(tape.gradient(loss, v), v)])

        return step

    steps = (step_on(explore), step_on(objective))
    for i in range(STEPS):
        settling = i >= STEPS - SETTLE
        dy, dx = (0, 0) if settling else rng.integers(-JITTER, JITTER + 1, 2)
        steps[i >= EXPLORE](tf.constant(int(dy)), tf.constant(int(dx)))
        if not settling and i % BLUR_EVERY == BLUR_EVERY - 1:
            image = tf.sigmoid(v)
            smoothed = tf.nn.conv2d(tf.pad(image, [[0, 0], [1, 1], [1, 1], [0, 0]], "SYMMETRIC"), blur, 1, "VALID")
            smoothed = tf.clip_by_value(smoothed, 1e-4, 1 - 1e-4)
            v.assign(tf.math.log(smoothed / (1 - smoothed)))
    return np.round(tf.sigmoid(v).numpy()[..., 0] * 255).astype(np.uint8)


def optimize_layer(keras_model, layer: str, count: int, activation: str = "relu") -> np.ndarray:
    """``count`` inputs (uint8, count x 28 x 28), input k maximising output k of ``layer``: one ascent from each of
    the ``STARTS``, keeping per filter the input with the highest true objective."""
    import keras

    surrogate = _objective_model(keras_model, layer, activation, surrogate=True)
    true = _objective_model(keras_model, layer, activation)
    picked = np.arange(count)
    best, best_value = None, None
    for seed, spread in enumerate(STARTS):
        inputs = ascend(surrogate, true, count, spread, seed)
        value = keras.ops.convert_to_numpy(true(inputs[..., None].astype(np.float32) / 255.0))[picked, picked]
        if best is None:
            best, best_value = inputs, value
        else:
            better = value > best_value
            best[better], best_value[better] = inputs[better], value[better]
    return best


def optimized_inputs(model: LoadedModel, onnx_path, progress: bool = True) -> dict[str, np.ndarray]:
    """The optimized inputs of every filter of the spatial layers and of every class, by layer and ``classes``."""
    keras_model = keras_classifier(model, onnx_path)
    counts = {layer: model.layer_shapes[layer][-1] for layer in SPATIAL_LAYERS}
    counts[CLASSES_KEY] = model.layer_shapes[PROBABILITIES][-1]
    result = {}
    for layer, count in tqdm(counts.items(), desc="optimized inputs", unit="layer", disable=not progress):
        result[layer] = optimize_layer(keras_model, layer, count, model.entry.training.get("activation", "relu"))
    return result


def mean_activations(
    model: LoadedModel, logits: tuple[np.ndarray, np.ndarray], images: np.ndarray, batch_size: int = 500
) -> dict[str, np.ndarray]:
    """Through onnxruntime, per layer the mean activation of every filter (N, C) and per class the logit (N, 10) of
    uint8 ``images`` (N, 28, 28), the logits from dense1 and the output layer's ``logits`` weights and bias."""
    weights, bias = logits
    parts: dict[str, list[np.ndarray]] = {layer: [] for layer in (*SPATIAL_LAYERS, CLASSES_KEY)}
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].astype(np.float32) / 255.0
        outputs = model.run(batch, [*SPATIAL_LAYERS, "dense1"])
        for layer in SPATIAL_LAYERS:
            parts[layer].append(outputs[layer].mean(axis=(1, 2)))
        parts[CLASSES_KEY].append(outputs["dense1"] @ weights + bias)
    return {layer: np.concatenate(values) for layer, values in parts.items()}
