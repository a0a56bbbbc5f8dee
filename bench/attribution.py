"""``python -m bench.attribution``: in-process time of each attribution method against Captum, saliency
throughput, and (``--http``) the HTTP attribution rows beside classify's p50 on one service, all in one run.
Prints Markdown tables; nothing here is a pass/fail test (needs the dev extra: torch, captum).

Ours: service.attribution over the service's own LoadedModel (onnxruntime forward and backward graph). Captum:
the same weights in a PyTorch copy (tests.attribution.torch_reference), the same image, target and parameters
(Captum's occlusion with perturbations_per_eval=64; SmoothGrad's noise is each library's own). Both batch 1.
HTTP: ``python -m service`` on loopback (the default settings), wrk with one connection, the example digit.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import urllib.request
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import torch

from bench.load import serving, wrk
from bench.measure import latencies_ms, p50
from service.attribution import METHODS, classifier_weights
from service.registry import load_registry
from tests.attribution.captum_reference import captum_maps
from training.data import load_split

ROOT = Path(__file__).resolve().parents[1]
THROUGHPUT_IMAGES = 1000
HTTP_ROWS = {
    "saliency (PNG)": ("/v1/attribution/saliency", "≤ 3×"),
    "grad-cam conv2 (PNG)": ("/v1/attribution/grad-cam", "≤ 3×"),
    "occlusion, 169 squares (PNG)": ("/v1/attribution/occlusion", "≤ 5×"),
    "integrated-gradients, 50 steps (PNG)": ("/v1/attribution/integrated-gradients", "≤ 5×"),
}


def http_rows(seconds: float, batch: np.ndarray) -> None:
    """classify's p50 and each attribution endpoint's on one service (rounds alternate classify with the others),
    then 1,000 saliency maps per /batch request (.npy in and out)."""
    digit = ROOT / "examples" / "digit-7.png"
    with tempfile.TemporaryDirectory() as folder, serving([sys.executable, "-m", "service"]) as service:
        body = Path(folder) / "batch.npy"
        buffer = io.BytesIO()
        np.save(buffer, (batch * 255).astype(np.uint8))
        body.write_bytes(buffer.getvalue())
        classify = []
        print(f"\nHTTP, one connection (wrk), load average before: {os.getloadavg()[0]:.2f}\n")
        print("| endpoint | p50 (ms) | classify p50 in the same round (ms) | ratio | target |")
        print("|---|---:|---:|---:|---|")
        for name, (path, target) in HTTP_ROWS.items():
            reference = wrk(f"{service.url}/v1/classify", digit, "image/png", 1, seconds)
            classify.append(reference.p50_ms)
            load = wrk(f"{service.url}{path}", digit, "image/png", 1, seconds)
            print(
                f"| {name} | {load.p50_ms:.1f} | {reference.p50_ms:.1f} | {load.p50_ms / reference.p50_ms:.1f}× "
                f"| {target} |"
            )
        timings = []
        for _ in range(3):  # timed here, not by wrk: a slow 1,000-map request outlasts wrk's 10 s timeout
            request = urllib.request.Request(
                f"{service.url}/v1/attribution/saliency/batch",
                body.read_bytes(),
                {"Content-Type": "application/x-npy", "Accept": "application/x-npy"},
            )
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=300) as response:
                response.read()
            timings.append(time.perf_counter() - started)
        seconds_per_request = float(np.median(timings))
        print(
            f"\nsaliency/batch, {len(batch):,} images per request (.npy in and out, median of 3 requests): "
            f"{len(batch) / seconds_per_request:,.0f} maps/s ({seconds_per_request * 1000:,.0f} ms per request); "
            f"classify p50 over the rounds {np.median(classify):.1f} ms; load average after: {os.getloadavg()[0]:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime and torch threads (service default: 1)")
    parser.add_argument("--seconds", type=float, default=2.0, help="timing budget per method and library")
    parser.add_argument("--mnist-dir", default=str(ROOT.parent / "shared" / "mnist"))
    parser.add_argument("--http", action="store_true", help="also the HTTP rows, on a service started here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_registry(ROOT / "models", intra_op_threads=args.threads, variants=False).models["classifier"]
    weights = classifier_weights(onnx.load(str(ROOT / "models" / "classifier.onnx")))
    images, labels = load_split(args.mnist_dir, "test")
    one, target = images[:1].astype(np.float32) / 255, labels[:1].astype(np.intp)

    print(f"threads: {args.threads} (onnxruntime intra-op, torch); batch 1, p50 of repeated calls")
    print(f"load average: {os.getloadavg()[0]:.2f}\n")
    print("| method | ours (ms) | Captum (ms) | ours / Captum |")
    print("|---|---:|---:|---:|")
    for name, method in METHODS.items():
        params = {key: spec.default for key, spec in method.parameters.items()}
        ours = p50(
            latencies_ms(partial(method.compute, model.run, weights, one, target, **params), args.seconds, warmup=3)
        )
        theirs = p50(latencies_ms(partial(captum_maps, name, weights, one, target, **params), args.seconds, warmup=3))
        print(f"| {name} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |")

    batch = images[:THROUGHPUT_IMAGES].astype(np.float32) / 255
    targets = labels[:THROUGHPUT_IMAGES].astype(np.intp)
    saliency = METHODS["saliency"].compute
    ours = p50(latencies_ms(lambda: saliency(model.run, weights, batch, targets), args.seconds * 3, warmup=1))
    theirs = p50(latencies_ms(lambda: captum_maps("saliency", weights, batch, targets), args.seconds * 3, warmup=1))
    print(
        f"\nsaliency, {THROUGHPUT_IMAGES:,} images in one call: ours {THROUGHPUT_IMAGES / ours * 1000:,.0f} maps/s, "
        f"Captum {THROUGHPUT_IMAGES / theirs * 1000:,.0f} maps/s"
    )
    if args.http:
        http_rows(args.seconds, batch)


if __name__ == "__main__":
    main()
