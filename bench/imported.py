"""``python -m bench.imported``: what ``POST /v1/classify`` adds to bare onnxruntime, for the imported MNIST example
(``examples/models/mnist-cnn.onnx``) beside the shipped classifier, on one app in this process.

Each round measures, one after the other: bare onnxruntime on the model's input (batch 1, the session the service
opens), then the whole request through the real app (ASGI, the test client) with the same PNG digit, for the
shipped classifier named in the query (``?model=classifier``: the same routing as an imported model; a request
without a query string takes the classify shortcut) and for the imported example (``?model=mnist-cnn``). What the
service adds is the request's p50 less bare onnxruntime's p50; the ratio compares the imported model's addition with
the shipped one's. The rounds alternate because the machine is shared; the median of the rounds is reported."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from bench.load import ROOT
from bench.measure import Row, latencies_ms, markdown, p50, ratio
from bench.results import RESULTS, machine, say, write_results
from service.api.app import create_app
from service.api.settings import Settings
from service.contract import INPUT_NAME, PROBABILITIES, VARIANTS_DIR
from service.images.decoding import decode, prepare
from service.images.preprocessing import digit_input
from service.importer import main as import_model

EXAMPLE = ROOT / "examples" / "models" / "mnist-cnn.onnx"
DIGIT = ROOT / "examples" / "digit-7.png"
NAME = "mnist-cnn"


def models_with_the_example(folder: Path) -> Path:
    """``folder/models``: the shipped models (links, without variants) and the example imported."""
    models = folder / "models"
    models.mkdir()
    for path in (ROOT / "models").iterdir():
        if path.name != VARIANTS_DIR:
            (models / path.name).symlink_to(path)
    if import_model([str(EXAMPLE), "--name", NAME, "--preprocess", "mnist", "--models-dir", str(models)]) != 0:
        raise RuntimeError(f"{EXAMPLE} did not import")
    return models


def rounds_of(models: Path, rounds: int, seconds: float) -> dict[str, list[float]]:
    """Per measure, the p50 in ms of each round."""
    data = DIGIT.read_bytes()
    found: dict[str, list[float]] = {}
    with TestClient(create_app(Settings(model_dir=models))) as client:
        registry = client.app.state.registry
        shipped, imported = registry.models["classifier"], registry.imported[NAME]
        digit = prepare(decode(data, max_pixels=1 << 20), "auto").reshape(1, 28, 28, 1).astype(np.float32)
        spec = imported.manifest
        example_input = digit_input(decode(data, max_pixels=1 << 20), spec.input, spec.preprocessing)
        calls = {
            "bare onnxruntime, shipped classifier": lambda: shipped.session.run([PROBABILITIES], {INPUT_NAME: digit}),
            "POST /v1/classify?model=classifier": lambda: client.post(
                "/v1/classify?model=classifier", content=data, headers={"content-type": "image/png"}
            ),
            "bare onnxruntime, imported example": lambda: imported.session.run(
                [spec.probabilities], {spec.input.name: example_input}
            ),
            f"POST /v1/classify?model={NAME}": lambda: client.post(
                f"/v1/classify?model={NAME}", content=data, headers={"content-type": "image/png"}
            ),
        }
        for number in range(rounds):
            say(f"round {number + 1} of {rounds}")
            for name, call in calls.items():
                found.setdefault(name, []).append(p50(latencies_ms(call, seconds, warmup=50)))
    return found


def table(found: dict[str, list[float]]) -> tuple[list[Row], float | None]:
    """The rows (median of the rounds) and the ratio of the imported model's addition to the shipped one's."""
    median = {name: float(np.median(values)) for name, values in found.items()}
    shipped_added = median["POST /v1/classify?model=classifier"] - median["bare onnxruntime, shipped classifier"]
    imported_added = median[f"POST /v1/classify?model={NAME}"] - median["bare onnxruntime, imported example"]
    added = ratio(imported_added, shipped_added)
    rows = [Row(name, value, "ms", "p50 over the rounds' medians", None) for name, value in median.items()] + [
        Row(
            f"added by the service, imported {NAME}",
            imported_added,
            "ms",
            "added by the service, shipped classifier",
            shipped_added,
            added,
            "times what the service adds to the shipped classifier",
        )
    ]
    return rows, added


def main(argv: list[str] | None = None) -> int:
    parse = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parse.add_argument("--rounds", type=int, default=5)
    parse.add_argument("--seconds", type=float, default=2.0, help="per measure and round")
    parse.add_argument("--out", type=Path, default=RESULTS / "imported.json")
    args = parse.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="convlens-bench-imported-"))
    try:
        found = rounds_of(models_with_the_example(folder), args.rounds, args.seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rows, added = table(found)
    print(markdown(rows))
    write_results(
        args.out,
        {"machine": machine(), "rounds": found, "rows": [row.as_dict() for row in rows], "added_ratio": added},
    )
    say(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
