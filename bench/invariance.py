"""``python -m bench.invariance``: ``POST /v1/invariance`` with 33 rotations beside ``POST /v1/classify`` on the same
service and image, measured side by side (alternating wrk rounds, one connection each), and where the invariance
request's time goes, in-process. The issue's aim is a p50 within 5 times classify's.

Ratios, not digits, carry over from a shared machine: the load average before and after is printed with them."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from bench.load import ROOT, serving, wrk
from bench.measure import Row, latencies_ms, p50, ratio

STEPS = 33
PATHS = {
    "classify": "/v1/classify",
    "invariance JSON": f"/v1/invariance?transform=rotate&steps={STEPS}",
    "invariance PNG": f"/v1/invariance?transform=rotate&steps={STEPS}&format=png",
}


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def http_figures(rounds: int, seconds: float, baseline: Path | None = None) -> dict[str, list[float]]:
    """Per path, the p50 in ms of each round; the paths alternate within every round on one running service. With
    ``baseline`` (another checkout, with its models), its invariance JSON is measured in the same rounds."""
    digit = ROOT / "examples" / "digit-7.png"
    found: dict[str, list[float]] = {name: [] for name in PATHS}
    earlier = None
    with ExitStack() as stack:
        service = stack.enter_context(serving([sys.executable, "-m", "service"]))
        targets = {name: f"{service.url}{path}" for name, path in PATHS.items()}
        if baseline is not None:
            command = ["sh", "-c", f'cd "{baseline}" && exec "{sys.executable}" -m service']
            earlier = stack.enter_context(serving(command, env={"CONVLENS_MODEL_DIR": str(baseline / "models")}))
            targets["invariance JSON, baseline checkout"] = f"{earlier.url}{PATHS['invariance JSON']}"
            found["invariance JSON, baseline checkout"] = []
        for url in targets.values():
            wrk(url, digit, "image/png", 1, 1)
        for _ in range(rounds):
            for name, url in targets.items():
                load = wrk(url, digit, "image/png", 1, seconds)
                if load.non2xx or load.socket_errors:
                    raise RuntimeError(f"{url}: {load.non2xx} non-2xx answers, {load.socket_errors} socket errors")
                found[name].append(load.p50_ms)
    return found


def inprocess_figures(seconds: float) -> dict[str, float]:
    """p50 in ms of each part of the invariance answer (33 rotations of the shipped example), in this process."""
    from service.api.routes.invariance import _data_urls
    from service.contract import PROBABILITIES
    from service.images import decoding
    from service.runtime.registry import load_registry
    from service.studies.invariance import LAYERS, _distances_in_place, amounts, invariance, transformed

    model = load_registry(ROOT / "models", variants=False).models["classifier"]
    data = (ROOT / "examples" / "digit-7.png").read_bytes()
    digit = decoding.prepare(decoding.decode(data, max_pixels=16_000_000), "auto").reshape(28, 28)
    values = amounts("rotate", steps=STEPS)
    inputs = transformed(digit, "rotate", values)
    batch = inputs  # 0 degrees among the 33 amounts: the original itself
    share = seconds / 6
    outputs = model.run(batch, [*LAYERS, PROBABILITIES])
    fresh = iter([{name: maps.copy() for name, maps in outputs.items()} for _ in range(100)])
    return {
        "classify run (1 image, output only)": p50(latencies_ms(lambda: model.run(digit, [PROBABILITIES]), share)),
        "transform (33 rotations)": p50(latencies_ms(lambda: transformed(digit, "rotate", values), share)),
        "onnxruntime run (33 images, 5 outputs)": p50(
            latencies_ms(lambda: model.run(batch, [*LAYERS, PROBABILITIES]), share, warmup=20)
        ),
        "distances (4 layers, in place)": p50(latencies_ms(lambda: _distances_in_place(next(fresh), 0), 60, 0, 100)),
        "33 PNG data URLs": p50(latencies_ms(lambda: _data_urls(inputs), share)),
        "invariance() in all": p50(latencies_ms(lambda: invariance(model, digit, "rotate", steps=STEPS), share)),
    }


def rows(http: dict[str, list[float]]) -> list[Row]:
    classify = float(np.median(http["classify"]))
    found = [Row("HTTP classify p50 (median of the rounds)", classify, "ms", "—", None)]
    for name in [name for name in http if name != "classify"]:
        value = float(np.median(http[name]))
        per_round = ", ".join(f"{ratio(a, b):g}" for a, b in zip(http[name], http["classify"]))
        found.append(
            Row(
                f"HTTP {name}, rotate in {STEPS} steps, p50".replace("JSON, baseline checkout, rotate", "JSON, rotate")
                + (" (baseline checkout)" if "baseline" in name else ""),
                value,
                "ms",
                "HTTP classify p50, alternating rounds",
                classify,
                ratio(value, classify),
                f"times classify (rounds: {per_round}); aim <= 5",
            )
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.invariance", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="per path and round")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. `git archive REV | tar -x -C DIR`, with a models/ folder) whose invariance JSON "
        "is measured in the same rounds, on its own service",
    )
    args = parser.parse_args(argv)
    before = load_average()
    http = http_figures(args.rounds, args.seconds, args.baseline)
    parts = inprocess_figures(args.seconds)
    after = load_average()
    print(f"load average before: {before}; after: {after}; {os.cpu_count()} cores")
    print("| measure | value | reference | reference value | ratio |\n|---|---|---|---|---|")
    for row in rows(http):
        reference = f"{row.reference_value:.3g} ms" if row.reference_value is not None else "—"
        ratio_text = f"{row.ratio:g}× ({row.ratio_meaning})" if row.ratio is not None else "—"
        print(f"| {row.measure} | {row.value:.3g} ms | {row.reference} | {reference} | {ratio_text} |")
    print("\nin-process p50 of the parts:")
    for name, value in parts.items():
        print(f"  {name:42s} {value:6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] if len(sys.argv) > 1 else None))
