"""``python -m bench.imported_gradients``: saliency and Grad-CAM of imported models over HTTP, each over the same
model's ``POST /v1/classify``, for the imported MNIST example (``examples/models/mnist-cnn.onnx``) and a torchvision
resnet18 (random weights, exported at 64x64, ImageNet normalisation).

Each round measures, for each model one after the other: classify, saliency and Grad-CAM (JSON, the default layer)
of the same upload through the real app (ASGI, the test client), each call's p50 over ``--seconds``. The backward
graphs are built (and their backward run measured) before the first round. The rounds alternate because the
machine is shared; the ratio of the rounds' medians is reported; the target is at most 3x classify."""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
import torchvision
from fastapi.testclient import TestClient
from PIL import Image

from bench.imported import models_with_the_example
from bench.load import ROOT
from bench.measure import Row, latencies_ms, markdown, p50, ratio
from bench.results import RESULTS, machine, say, write_results
from service.api.app import create_app
from service.api.settings import Settings
from service.importer import main as import_model

SIDE = 64
IMAGENET = ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--resize", str(SIDE)]
DIGIT = ROOT / "examples" / "digit-7.png"
ROUTES = ("classify", "attribution/saliency", "attribution/grad-cam")


def import_resnet18(folder: Path, models: Path) -> None:
    """torchvision's resnet18 (weights=None, seed 0) exported at 64x64 and imported as ``resnet18``."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    path = folder / "resnet18.onnx"
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, SIDE, SIDE),),
        str(path),
        dynamo=False,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        opset_version=17,
    )
    if import_model([str(path), "--name", "resnet18", *IMAGENET, "--models-dir", str(models)]) != 0:
        raise RuntimeError(f"{path} did not import")


def photo() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def rounds_of(models: Path, rounds: int, seconds: float) -> dict[str, list[float]]:
    """Per model and route, the p50 in ms of each round."""
    uploads = {"mnist-cnn": DIGIT.read_bytes(), "resnet18": photo()}
    found: dict[str, list[float]] = {}
    with TestClient(create_app(Settings(model_dir=models))) as client:

        def call(model: str, route: str):
            def post():
                response = client.post(
                    f"/v1/{route}",
                    params={"model": model, "format": "json"},
                    content=uploads[model],
                    headers={"content-type": "image/png"},
                )
                if response.status_code != 200:
                    raise RuntimeError(f"{route} on {model}: {response.text}")

            return post

        calls = {f"{model} {route}": call(model, route) for model in uploads for route in ROUTES}
        for number in range(rounds):
            say(f"round {number + 1} of {rounds}")
            for name, run in calls.items():
                found.setdefault(name, []).append(p50(latencies_ms(run, seconds, warmup=20)))
    return found


def table(found: dict[str, list[float]]) -> list[Row]:
    """Each gradient route's median p50 beside the same model's classify."""
    median = {name: float(np.median(values)) for name, values in found.items()}
    rows = []
    for model in ("mnist-cnn", "resnet18"):
        classify = median[f"{model} classify"]
        rows.append(Row(f"POST /v1/classify?model={model}", classify, "ms", "p50 over the rounds' medians", None))
        for route in ROUTES[1:]:
            value = median[f"{model} {route}"]
            rows.append(
                Row(
                    f"POST /v1/{route}?model={model}",
                    value,
                    "ms",
                    f"POST /v1/classify?model={model}",
                    classify,
                    ratio(value, classify),
                    "times the same model's classify (target: at most 3)",
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parse = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parse.add_argument("--rounds", type=int, default=5)
    parse.add_argument("--seconds", type=float, default=2.0, help="per measure and round")
    parse.add_argument("--out", type=Path, default=RESULTS / "imported_gradients.json")
    args = parse.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="convlens-bench-gradients-"))
    try:
        models = models_with_the_example(folder)
        import_resnet18(folder, models)
        found = rounds_of(models, args.rounds, args.seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rows = table(found)
    print(markdown(rows))
    write_results(args.out, {"machine": machine(), "rounds": found, "rows": [row.as_dict() for row in rows]})
    say(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
