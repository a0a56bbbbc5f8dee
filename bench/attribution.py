"""``python -m bench.attribution``: in-process time of each attribution method against Captum, and saliency
throughput. Prints a Markdown table; nothing here is a pass/fail test (needs the dev extra: torch, captum).

Ours: service.attribution over the service's own LoadedModel (onnxruntime forward + numpy backward). Captum: the
same weights in a PyTorch copy (tests.attribution.torch_reference), the same image, target and parameters
(Captum's occlusion with perturbations_per_eval=64; SmoothGrad's noise is each library's own). Both batch 1.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import torch

from bench.measure import latencies_ms, p50
from service.attribution import METHODS, classifier_weights
from service.registry import load_registry
from tests.attribution.captum_reference import captum_maps
from training.data import load_split

ROOT = Path(__file__).resolve().parents[1]
THROUGHPUT_IMAGES = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime and torch threads (service default: 1)")
    parser.add_argument("--seconds", type=float, default=2.0, help="timing budget per method and library")
    parser.add_argument("--mnist-dir", default=str(ROOT.parent / "shared" / "mnist"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_registry(ROOT / "models", intra_op_threads=args.threads, variants=False).models["classifier"]
    weights = classifier_weights(onnx.load(str(ROOT / "models" / "classifier.onnx")))
    images, labels = load_split(args.mnist_dir, "test")
    one, target = images[:1].astype(np.float32) / 255, labels[:1].astype(np.intp)

    print(f"threads: {args.threads} (onnxruntime intra-op, torch); batch 1, p50 of repeated calls\n")
    print("| method | ours (ms) | Captum (ms) | Captum / ours |")
    print("|---|---:|---:|---:|")
    for name, method in METHODS.items():
        params = {key: spec.default for key, spec in method.parameters.items()}
        ours = p50(
            latencies_ms(partial(method.compute, model.run, weights, one, target, **params), args.seconds, warmup=3)
        )
        theirs = p50(latencies_ms(partial(captum_maps, name, weights, one, target, **params), args.seconds, warmup=3))
        print(f"| {name} | {ours:.1f} | {theirs:.1f} | {theirs / ours:.1f} |")

    batch = images[:THROUGHPUT_IMAGES].astype(np.float32) / 255
    targets = labels[:THROUGHPUT_IMAGES].astype(np.intp)
    saliency = METHODS["saliency"].compute
    ours = p50(latencies_ms(lambda: saliency(model.run, weights, batch, targets), args.seconds * 3, warmup=1))
    theirs = p50(latencies_ms(lambda: captum_maps("saliency", weights, batch, targets), args.seconds * 3, warmup=1))
    print(
        f"\nsaliency, {THROUGHPUT_IMAGES:,} images in one call: ours {THROUGHPUT_IMAGES / ours * 1000:,.0f} maps/s, "
        f"Captum {THROUGHPUT_IMAGES / theirs * 1000:,.0f} maps/s"
    )


if __name__ == "__main__":
    main()
