"""``python -m bench.v2_codec``: the Open Inference Protocol's JSON codec in-process, beside the plain codec.

The service reads a JSON inference request with orjson into one array and writes the answer's numbers with orjson
straight from the result arrays (``service/api/v2_tensors.py``). The reference is the plain way in the same run:
pydantic's ``model_validate_json`` of the whole document, ``np.asarray`` of its ``data``, and ``json.dumps`` of the
answer's values as Python floats. Both read the same bodies (one image, 256 images) and answer the same ``output``;
rounds alternate, the median of the rounds' ratios counts. A last row writes a large answer's numbers alone (``conv1``
of 64 images, 1.4 M values), where the plain way makes a Python float of each.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

from bench.load import ROOT
from bench.measure import latencies_ms
from bench.peers.compare import bodies
from bench.results import RESULTS, machine, say, write_results
from service.api.v2_tensors import InferenceRequest, _json_numbers, inference_response, read_inference
from service.contract import CLASSIFIER
from service.runtime.registry import load_registry

MOST_IMAGES = 1000
MOST_ANSWER_BYTES = 100_000_000


def service_codec(body: bytes, model, output: np.ndarray) -> bytes:
    """The service's reading of ``body`` and its answer's bytes for ``output``."""
    call = read_inference(body, None, model, MOST_IMAGES, MOST_ANSWER_BYTES)
    return inference_response(model, call, {"output": output[: len(call.images)]}).body


def plain_codec(body: bytes, model, output: np.ndarray) -> bytes:
    """The reference: pydantic over the whole document, numpy over its data, the answer through Python floats."""
    request = InferenceRequest.model_validate_json(body)
    images = np.asarray(request.inputs[0].data, dtype=np.float32).reshape(-1, 28, 28)
    if not (np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1):
        raise ValueError("values outside [0, 1]")
    values = output[: len(images)]
    tensor = {"name": "output", "shape": list(values.shape), "datatype": "FP32", "data": values.ravel().tolist()}
    return json.dumps({"model_name": model.name, "model_version": "1", "outputs": [tensor]}).encode()


def numbers(answer: bytes) -> np.ndarray:
    """The values of an answer document's first output, or of a bare JSON list."""
    document = json.loads(answer)
    return np.ravel(document if isinstance(document, list) else document["outputs"][0]["data"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.v2_codec", description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per codec and round")
    parser.add_argument("--out", type=Path, default=RESULTS / "v2_codec.json")
    args = parser.parse_args(argv)
    model = load_registry(ROOT / "models", 1, variants=False).models[CLASSIFIER]
    with tempfile.TemporaryDirectory() as folder:
        written = bodies(Path(folder))
        rows = {}
        pairs = {}
        for name in ("one.json", "many.json"):
            body = written[name].path.read_bytes()
            output = model.run(written[name].images, ["output"])["output"]
            pairs[name] = (partial(service_codec, body, model, output), partial(plain_codec, body, model, output))
        conv1 = model.run(written["many.json"].images[:64], ["conv1"])["conv1"]
        pairs["conv1 of 64 images, numbers only"] = (
            lambda: b"".join(_json_numbers(conv1)),
            lambda: json.dumps(conv1.ravel().tolist()).encode(),
        )
        for name, (ours, plain) in pairs.items():
            assert np.array_equal(numbers(ours()).astype(np.float32), numbers(plain()).astype(np.float32)), name
            times = {"service": [], "plain": []}
            for _ in range(args.rounds):
                for label, call in (("service", ours), ("plain", plain)):
                    times[label].append(float(np.median(latencies_ms(call, args.seconds, warmup=3))))
            each = [round(a / b, 3) for a, b in zip(times["service"], times["plain"])]
            rows[name] = {"ms": times, "ratio_median": float(np.median(each)), "ratio_rounds": each}
            say(f"{name}: service {np.median(times['service']):.3g} ms, plain {np.median(times['plain']):.3g} ms")
            print(
                f"{name}: the service's codec takes {np.median(each):.2f}x the plain codec's time "
                f"(rounds {min(each):.2f}-{max(each):.2f}; {np.median(times['service']):.3g} ms against "
                f"{np.median(times['plain']):.3g} ms)"
            )
    write_results(args.out, {"machine": machine(), "rows": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
