"""ONNX export with every layer of interest as a named graph output, a parity check, and the manifest."""

from __future__ import annotations

import platform
from pathlib import Path

import keras
import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

from service.contract import INPUT_NAME, MANIFEST_FILE, FileRef, Manifest, ModelEntry, write_document
from training.data import sha256_of
from training.networks import describe_layers, exported_layers

OPSET = 15
PARITY_TOLERANCE = 1e-4


class ParityError(RuntimeError):
    """onnxruntime and Keras disagree on some output by more than the tolerance."""


def layer_model(model: keras.Model, names: list[str]) -> keras.Model:
    """A Keras model returning the outputs of ``names`` in that order (inference mode)."""
    return keras.Model(model.input, [model.get_layer(name).output for name in names], name=f"{model.name}_layers")


def export_onnx(model: keras.Model, path: Path, names: list[str]) -> None:
    """Write ``model`` to ``path`` with input ``input`` (N,28,28,1) and one output per name in ``names``."""
    signature = [tf.TensorSpec((None, 28, 28, 1), tf.float32, name=INPUT_NAME)]
    proto, _ = tf2onnx.convert.from_keras(layer_model(model, names), input_signature=signature, opset=OPSET)
    actual = [output.name for output in proto.graph.output]
    if actual != names:
        raise RuntimeError(f"ONNX outputs are named {actual}, expected {names}")
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))


def check_parity(model: keras.Model, path: Path, names: list[str], images: np.ndarray) -> dict[str, float]:
    """Max |onnxruntime - Keras| per output on ``images``; raises ParityError above PARITY_TOLERANCE."""
    expected = layer_model(model, names).predict(images, batch_size=256, verbose=0)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(names, {INPUT_NAME: images})
    deltas = {name: float(np.abs(a - e).max()) for name, a, e in zip(names, actual, expected)}
    worst = max(deltas, key=deltas.get)
    if deltas[worst] > PARITY_TOLERANCE:
        raise ParityError(f"{path.name}: output {worst} differs from Keras by {deltas[worst]:.3g} > {PARITY_TOLERANCE}")
    return deltas


def run_onnx(path: Path, images: np.ndarray, output: str, batch_size: int = 1000) -> np.ndarray:
    """One output of an exported model over many images, in batches."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate(
        [session.run([output], {INPUT_NAME: images[i : i + batch_size]})[0] for i in range(0, len(images), batch_size)]
    )


def manifest_entry(
    model: keras.Model,
    path: Path,
    training: dict,
    metrics: dict,
    history: dict,
    parity: dict[str, float],
    evolution: Path | None = None,
) -> ModelEntry:
    """Everything a server or a reader needs to know about one exported model (the contract's ``ModelEntry``),
    with the file of its feature evolution when one was recorded (beside ``path``)."""
    layers = describe_layers(model)
    shapes = {layer["name"]: layer["output_shape"] for layer in layers}
    return ModelEntry.model_validate(
        {
            "file": path.name,
            "sha256": sha256_of(path),
            "opset": OPSET,
            "input": {"name": INPUT_NAME, "shape": [None, 28, 28, 1], "dtype": "float32", "range": [0.0, 1.0]},
            "outputs": [{"name": name, "shape": [None, *shapes[name]]} for name in exported_layers(model)],
            "layers": layers,
            "total_params": int(model.count_params()),
            "training": training,
            "metrics": metrics,
            "history": history,
            "parity_max_abs_diff": parity,
            **({"evolution": FileRef(file=evolution.name, sha256=sha256_of(evolution))} if evolution else {}),
        }
    )


def library_versions() -> dict[str, str]:
    """Versions of what produced the models."""
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
    }


def write_manifest(directory: Path, models: dict[str, ModelEntry]) -> Path:
    """Write ``manifest.json`` describing ``models`` (name -> manifest_entry)."""
    return write_document(directory / MANIFEST_FILE, Manifest(models=models, versions=library_versions()))
