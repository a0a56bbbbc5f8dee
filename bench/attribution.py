"""``python -m bench.attribution``: in-process time of each attribution method against Captum, saliency
throughput, and (``--http``) the HTTP attribution rows beside classify's p50 on one service, all in one run.
Prints Markdown tables; nothing here is a pass/fail test (needs the dev extra: torch, captum).

Ours: service.attribution over the service's own LoadedModel (onnxruntime forward and backward graph). Captum:
the same weights in a PyTorch copy (references.torch_classifier), the same image, target and parameters
(Captum's occlusion with perturbations_per_eval=64; SmoothGrad's noise is each library's own). Both batch 1, and
in-process both on ``--threads`` threads (ours: its large runs too).
HTTP: ``python -m service`` on loopback (the default settings: large runs on every core), wrk with one
connection, the example digit; each endpoint alternates with classify over ``--rounds`` rounds, and the ratio is
the median of the rounds' ratios (classify's p50 at c=1 moves by up to 2x between runs here). The "faster than
Captum" rows set Captum on every core as well.
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

from bench.load import ROOT, serving, wrk
from bench.measure import latencies_ms, p50
from references.captum_maps import captum_maps
from service.attribution import METHODS, classifier_weights
from service.graphs.backward_graph import RunPolicy, run_policy
from service.runtime.registry import load_registry
from training.data import load_split

THROUGHPUT_IMAGES = 1000
HTTP_ROWS = {
    "saliency (PNG)": ("/v1/attribution/saliency", "≤ 3×"),
    "grad-cam conv2 (PNG)": ("/v1/attribution/grad-cam", "≤ 3×"),
    "occlusion, 169 squares (PNG)": ("/v1/attribution/occlusion", "≤ 5×"),
    "integrated-gradients, 50 steps (PNG)": ("/v1/attribution/integrated-gradients", "≤ 5×"),
}


def http_rows(seconds: float, rounds: int, batch: np.ndarray, captum_all_cores: dict[str, float]) -> None:
    """classify's p50 and each attribution endpoint's on one service (``rounds`` alternating pairs each), against
    Captum on every core for integrated gradients and occlusion, then 1,000 saliency maps per /batch request
    (.npy in and out)."""
    digit = ROOT / "examples" / "digit-7.png"
    with tempfile.TemporaryDirectory() as folder, serving([sys.executable, "-m", "service"]) as service:
        body = Path(folder) / "batch.npy"
        buffer = io.BytesIO()
        np.save(buffer, (batch * 255).astype(np.uint8))
        body.write_bytes(buffer.getvalue())
        classify, endpoint_p50 = [], {}
        print(
            f"\nHTTP, one connection (wrk), {rounds} alternating rounds, load average before: "
            f"{os.getloadavg()[0]:.2f}\n"
        )
        print("| endpoint | p50 (ms, median) | classify p50 (ms, median) | ratio (median; per round) | target |")
        print("|---|---:|---:|---|---|")
        for name, (path, target) in HTTP_ROWS.items():
            pairs = []
            for _ in range(rounds):
                reference = wrk(f"{service.url}/v1/classify", digit, "image/png", 1, seconds).p50_ms
                pairs.append((wrk(f"{service.url}{path}", digit, "image/png", 1, seconds).p50_ms, reference))
            ours, theirs = (float(np.median(column)) for column in zip(*pairs, strict=True))
            classify.extend(reference for _, reference in pairs)
            endpoint_p50[path.rsplit("/", 1)[1]] = ours
            ratios = [a / b for a, b in pairs]
            print(
                f"| {name} | {ours:.1f} | {theirs:.1f} | **{np.median(ratios):.1f}×** "
                f"({', '.join(f'{r:.1f}' for r in ratios)}) | {target} |"
            )
        print("\n| over HTTP p50 ÷ Captum in-process on every core | ours (ms) | Captum (ms) | ratio | target |")
        print("|---|---:|---:|---:|---|")
        for name, theirs in captum_all_cores.items():
            print(f"| {name} | {endpoint_p50[name]:.1f} | {theirs:.1f} | {endpoint_p50[name] / theirs:.2f} | < 1 |")
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


def inprocess_rows(threads: int, seconds: float, model, weights, images: np.ndarray, labels: np.ndarray) -> None:
    """Each method at batch 1, ours against Captum, then 1,000 saliency maps in one call; both on ``threads``."""
    one, target = images[:1], labels[:1]
    print(f"threads: {threads} (onnxruntime intra-op, large runs too; torch); batch 1, p50 of repeated calls")
    print(f"load average: {os.getloadavg()[0]:.2f}\n")
    print("| method | ours (ms) | Captum (ms) | ours / Captum |")
    print("|---|---:|---:|---:|")
    for name, method in METHODS.items():
        params = {key: spec.default for key, spec in method.parameters.items()}
        ours = p50(latencies_ms(partial(method.compute, model.run, weights, one, target, **params), seconds, warmup=3))
        theirs = p50(latencies_ms(partial(captum_maps, name, weights, one, target, **params), seconds, warmup=3))
        print(f"| {name} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |")

    batch, targets = images[:THROUGHPUT_IMAGES], labels[:THROUGHPUT_IMAGES]
    saliency = METHODS["saliency"].compute
    ours = p50(latencies_ms(lambda: saliency(model.run, weights, batch, targets), seconds * 3, warmup=1))
    theirs = p50(latencies_ms(lambda: captum_maps("saliency", weights, batch, targets), seconds * 3, warmup=1))
    print(
        f"\nsaliency, {THROUGHPUT_IMAGES:,} images in one call: ours {THROUGHPUT_IMAGES / ours * 1000:,.0f} maps/s, "
        f"Captum {THROUGHPUT_IMAGES / theirs * 1000:,.0f} maps/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime and torch threads (service default: 1)")
    parser.add_argument("--seconds", type=float, default=2.0, help="timing budget per method and library")
    parser.add_argument("--mnist-dir", default=str(ROOT.parent / "shared" / "mnist"))
    parser.add_argument("--http", action="store_true", help="also the HTTP rows, on a service started here")
    parser.add_argument("--rounds", type=int, default=3, help="HTTP: alternating classify/endpoint pairs per row")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_registry(ROOT / "models", intra_op_threads=args.threads, variants=False).models["classifier"]
    weights = classifier_weights(onnx.load(str(ROOT / "models" / "classifier.onnx")))
    images, labels = load_split(args.mnist_dir, "test")
    images, labels = images[:THROUGHPUT_IMAGES].astype(np.float32) / 255, labels[:THROUGHPUT_IMAGES].astype(np.intp)
    with run_policy(RunPolicy(batch_threads=args.threads)):
        inprocess_rows(args.threads, args.seconds, model, weights, images, labels)
    if args.http:
        torch.set_num_threads(len(os.sched_getaffinity(0)))
        captum_all_cores = {}
        for name in ("integrated-gradients", "occlusion"):
            params = {key: spec.default for key, spec in METHODS[name].parameters.items()}
            run = partial(captum_maps, name, weights, images[:1], labels[:1], **params)
            captum_all_cores[name] = p50(latencies_ms(run, args.seconds, warmup=3))
        http_rows(args.seconds, args.rounds, images, captum_all_cores)


if __name__ == "__main__":
    main()
