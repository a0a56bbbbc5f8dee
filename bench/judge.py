"""What the digit judge adds to a classification, in-process, timed alternately in one run (ratios, not digits):

- the whole classify request through the ASGI app (``TestClient``, no network) with the shipped statistics (judge on)
  against the same app on a model folder without statistics (no judge, ``digit_like`` null);
- the core path alone (decode and prepare the shipped example PNG, one onnxruntime run, the answer as a dict) with
  and without the judge (dense1 asked for in the same run, the judge's score);
- the judge's score alone.

``python -m bench.judge`` prints the figures; ``python -m bench`` adds them as rows."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.load import MODELS, ROOT
from bench.measure import Row, latencies_ms, p50, ratio
from service.images import decoding
from service.runtime.registry import load_registry
from service.studies.digit_judge import OUTPUTS
from service.studies.statistics import load_statistics


def judge_figures(seconds: float) -> dict[str, float]:
    """p50 in ms of the classify path without and with the judge, and of the judge's score alone."""
    registry = load_registry(MODELS, variants=False)
    judge = load_statistics(MODELS, registry).judge
    if judge is None:
        raise RuntimeError("the shipped statistics have no digit judge: run `python -m training analyze`")
    model = registry.models["classifier"]
    data = (ROOT / "examples" / "digit-7.png").read_bytes()

    def classify(judged: bool) -> str:
        digit = decoding.prepare(decoding.decode(data, max_pixels=16_000_000), "auto")
        outputs = model.run(digit, list(OUTPUTS) if judged else ["output"])
        answer = {"digit": int(outputs["output"][0].argmax()), "probabilities": outputs["output"][0].tolist()}
        if judged:
            score = float(judge.scores(digit.reshape(1, 28, 28), outputs)[0])
            answer |= {"digit_like": score <= judge.threshold, "digit_like_score": score}
        return repr(answer)

    digit = decoding.prepare(decoding.decode(data, max_pixels=16_000_000), "auto").reshape(1, 28, 28)
    outputs = model.run(digit, list(OUTPUTS))
    plain, judged = [], []
    for _ in range(10):  # alternate, so that both see the same load on a shared machine
        plain.append(latencies_ms(lambda: classify(False), seconds / 20, warmup=50))
        judged.append(latencies_ms(lambda: classify(True), seconds / 20, warmup=50))
    http_plain, http_judged = _asgi_latencies(data, seconds)
    return {
        "http_classify_p50_ms": p50(http_plain),
        "http_classify_judged_p50_ms": p50(http_judged),
        "classify_p50_ms": p50(np.concatenate(plain)),
        "classify_judged_p50_ms": p50(np.concatenate(judged)),
        "score_p50_ms": p50(latencies_ms(lambda: judge.scores(digit, outputs), seconds / 4)),
    }


def _asgi_latencies(data: bytes, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-request ms of POST /v1/classify in-process, without and with the judge, alternating."""
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.api.settings import Settings

    with tempfile.TemporaryDirectory() as bare:
        for name in ("manifest.json", "classifier.onnx", "autoencoder.onnx"):
            (Path(bare) / name).symlink_to(MODELS / name)
        with (
            TestClient(create_app(Settings(model_dir=Path(bare)))) as plain,
            TestClient(create_app(Settings(model_dir=MODELS))) as judged,
        ):
            post = {"content": data, "headers": {"content-type": "image/png"}}
            assert plain.post("/v1/classify", **post).json()["digit_like"] is None
            assert judged.post("/v1/classify", **post).json()["digit_like"] is not None
            without, with_judge = [], []
            for _ in range(10):
                without.append(latencies_ms(lambda: plain.post("/v1/classify", **post), seconds / 20, warmup=50))
                with_judge.append(latencies_ms(lambda: judged.post("/v1/classify", **post), seconds / 20, warmup=50))
    return np.concatenate(without), np.concatenate(with_judge)


def rows(figures: dict[str, float]) -> list[Row]:
    """The judge's extra time against the in-process classify request and the core path, and its score alone."""
    base = figures["classify_p50_ms"]
    extra = figures["classify_judged_p50_ms"] - base
    http = figures["http_classify_p50_ms"]
    http_extra = figures["http_classify_judged_p50_ms"] - http
    return [
        Row(
            "digit judge: extra time per classify request (in-process ASGI p50 difference)",
            http_extra,
            "ms",
            "classify request in-process p50 without the judge",
            http,
            ratio(http_extra, http),
            "of classify",
        ),
        Row(
            "digit judge: extra time per classification (in-process p50 difference)",
            extra,
            "ms",
            "classify path in-process p50 (decode, prepare, run, answer)",
            base,
            ratio(extra, base),
            "of classify",
        ),
        Row(
            "digit judge: its score alone (in-process p50)",
            figures["score_p50_ms"],
            "ms",
            "classify path in-process p50 (decode, prepare, run, answer)",
            base,
            ratio(figures["score_p50_ms"], base),
            "of classify",
        ),
    ]


if __name__ == "__main__":
    found = judge_figures(float(sys.argv[1]) if len(sys.argv) > 1 else 20.0)
    for row in rows(found):
        print(
            f"{row.measure}: {row.value:.4f} {row.unit}, {row.ratio}x {row.ratio_meaning} "
            f"({row.reference_value:.4f} ms)"
        )
