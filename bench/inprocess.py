"""In-process inference: onnxruntime against the same weights in Keras, and all layer outputs against one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from bench.measure import Row, latencies_ms, p50, ratio
from service.contract import INPUT_NAME

OUTPUTS = ["conv1", "conv2", "pool", "dense1", "output"]


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def images(count: int) -> np.ndarray:
    """A deterministic batch of digit-like inputs (uniform noise costs the network the same as digits)."""
    return np.random.default_rng(0).random((count, 28, 28, 1), dtype=np.float32)


def onnxruntime_figures(model_path: Path, seconds: float) -> dict[str, float]:
    """Batch-1 p50 (1 and 2 threads), batch-1 and batch-256 throughput, all-outputs p50."""
    one, batch = images(1), images(256)
    figures = {}
    for threads in (1, 2):
        s = session(model_path, threads)
        times = latencies_ms(lambda s=s: s.run(["output"], {INPUT_NAME: one}), seconds)
        figures[f"b1_p50_ms_{threads}t"] = p50(times)
        figures[f"b1_img_s_{threads}t"] = 1000 / float(times.mean())
        batch_times = latencies_ms(lambda s=s: s.run(["output"], {INPUT_NAME: batch}), seconds, warmup=10)
        figures[f"b256_img_s_{threads}t"] = 256_000 / p50(batch_times)
        figures[f"all_outputs_p50_ms_{threads}t"] = p50(
            latencies_ms(lambda s=s: s.run(OUTPUTS, {INPUT_NAME: one}), seconds)
        )
    return figures


def keras_figures(model_path: Path, seconds: float) -> dict[str, float] | None:
    """Keras ``model(x)`` and ``model.predict`` on the same weights; None without the train extra."""
    try:
        from bench.keras_reference import keras_classifier
    except ImportError:
        return None
    model = keras_classifier(model_path)
    one, batch = images(1), images(256)
    return {
        "call_b1_p50_ms": p50(latencies_ms(lambda: model(one, training=False), seconds)),
        "predict_b1_p50_ms": p50(latencies_ms(lambda: model.predict(one, verbose=0), seconds, warmup=3)),
        "call_b256_img_s": 256_000 / p50(latencies_ms(lambda: model(batch, training=False), seconds, warmup=3)),
        "predict_b256_img_s": 256_000 / p50(latencies_ms(lambda: model.predict(batch, verbose=0), seconds, warmup=2)),
    }


def rows(ort_fig: dict[str, float], keras_fig: dict[str, float] | None) -> list[Row]:
    """The in-process table rows."""
    missing = "train extra not installed"
    k = keras_fig or {}
    result = []
    for threads in (1, 2):
        b1 = ort_fig[f"b1_p50_ms_{threads}t"]
        result += [
            Row(
                f"onnxruntime batch-1 p50 ({threads} thread{'s' * (threads > 1)})",
                b1,
                "ms",
                "Keras model(x, training=False) batch-1 p50" if keras_fig else missing,
                k.get("call_b1_p50_ms"),
                ratio(k.get("call_b1_p50_ms"), b1),
                "times faster than Keras model(x)",
            ),
            Row(
                f"onnxruntime batch-1 p50 ({threads} thread{'s' * (threads > 1)})",
                b1,
                "ms",
                "Keras model.predict batch-1 p50" if keras_fig else missing,
                k.get("predict_b1_p50_ms"),
                ratio(k.get("predict_b1_p50_ms"), b1),
                "times faster than model.predict",
            ),
            Row(
                f"onnxruntime batch-256 ({threads} thread{'s' * (threads > 1)})",
                ort_fig[f"b256_img_s_{threads}t"],
                "img/s",
                "Keras model(x) batch-256" if keras_fig else missing,
                k.get("call_b256_img_s"),
                ratio(ort_fig[f"b256_img_s_{threads}t"], k.get("call_b256_img_s")),
                "times Keras' throughput",
            ),
            Row(
                f"onnxruntime all five outputs, batch-1 p50 ({threads} thread{'s' * (threads > 1)})",
                ort_fig[f"all_outputs_p50_ms_{threads}t"],
                "ms",
                "asking for `output` only",
                b1,
                ratio(ort_fig[f"all_outputs_p50_ms_{threads}t"], b1),
                "times the cost of one output",
            ),
        ]
    if keras_fig:
        result.append(
            Row(
                "Keras model.predict batch-256",
                k["predict_b256_img_s"],
                "img/s",
                "onnxruntime batch-256 (2 threads)",
                ort_fig["b256_img_s_2t"],
                ratio(k["predict_b256_img_s"], ort_fig["b256_img_s_2t"]),
                "times onnxruntime's throughput",
            )
        )
    return result
