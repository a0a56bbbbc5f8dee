"""The shipped classifier's weights in Keras, for the reference columns (needs the train extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from service.contract import INPUT_NAME


def keras_classifier(onnx_path: Path):
    """The paper's Keras classifier carrying the exact weights of ``onnx_path`` (checked against onnxruntime)."""
    import onnxruntime as ort

    from training.networks import build_classifier

    weights = {
        tuple(a.shape): a for a in (numpy_helper.to_array(i) for i in onnx.load(str(onnx_path)).graph.initializer)
    }
    model = build_classifier()
    model.get_layer("conv1").set_weights([weights[(32, 1, 3, 3)].transpose(2, 3, 1, 0), weights[(32,)]])
    model.get_layer("conv2").set_weights([weights[(64, 32, 3, 3)].transpose(2, 3, 1, 0), weights[(64,)]])
    model.get_layer("dense1").set_weights([weights[(9216, 128)], weights[(128,)]])
    model.get_layer("output").set_weights([weights[(128, 10)], weights[(10,)]])
    probe = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    expected = ort.InferenceSession(str(onnx_path)).run(["output"], {INPUT_NAME: probe})[0]
    delta = float(np.abs(model(probe, training=False).numpy() - expected).max())
    if delta > 1e-4:
        raise RuntimeError(f"Keras rebuild of {onnx_path} differs from onnxruntime by {delta}")
    return model


class KerasSession:
    """Looks like an onnxruntime session to the service's registry, but runs Keras ``model(x)``: the naive server."""

    def __init__(self, model) -> None:
        import keras

        self.model = model
        self.layers = keras.Model(
            model.input, [model.get_layer(n).output for n in ("conv1", "conv2", "pool", "dense1", "output")]
        )

    def run(self, outputs: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        if outputs == ["output"]:
            return [self.model(feed[INPUT_NAME], training=False).numpy()]
        names = ("conv1", "conv2", "pool", "dense1", "output")
        values = dict(zip(names, (v.numpy() for v in self.layers(feed[INPUT_NAME], training=False))))
        return [values[name] for name in outputs]
