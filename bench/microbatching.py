"""``python -m bench.microbatching``: the service with micro-batching on beside the same service with it off.

Both serve at once (``python -m service``, ``CONVLENS_MICRO_BATCHING`` false and true), with the raw-ASGI reference
(``bench/raw_asgi.py``); each round measures every case on each, in an order that alternates from round to round
(wrk). Cases: ``/v1/classify`` of ``examples/digit-7.png`` at 16 connections (req/s, the reference too) and at one
(p50), and ``/v2`` inference of that image as JSON and as binary tensors at 16 connections and as JSON at one. A
ratio is on over off in the same round; the median of the rounds counts, their range is its spread.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from bench.load import ROOT, serving, wrk
from bench.peers.compare import INFER_PATH, bodies
from bench.results import RESULTS, machine, say, write_results

DIGIT = ROOT / "examples" / "digit-7.png"
CLASSIFY = "/v1/classify"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.microbatching", description=__doc__)
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (the median of their ratios counts)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per wrk run")
    parser.add_argument("--out", type=Path, default=RESULTS / "microbatching.json")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    command = [sys.executable, "-m", "service"]
    results: dict[str, dict] = {}
    lines = ["| case | off | on | on ÷ off, median of rounds (low–high) | off ÷ raw reference |"]
    lines.append("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        written = bodies(Path(folder))
        one_json, one_binary = written["one.json"], written["one.bin"]
        served = {
            "off": stack.enter_context(serving(command, env={"CONVLENS_MICRO_BATCHING": "false"})),
            "on": stack.enter_context(serving(command, env={"CONVLENS_MICRO_BATCHING": "true"})),
        }
        raw = stack.enter_context(serving([sys.executable, "-m", "bench.raw_asgi"]))
        cases = [
            ("/v1/classify, 16 connections, req/s", CLASSIFY, DIGIT, "image/png", {}, 16),
            ("/v1/classify, 1 connection, p50 ms", CLASSIFY, DIGIT, "image/png", {}, 1),
            ("/v2 one JSON image, 16 connections, req/s", INFER_PATH, one_json.path, one_json.content_type, {}, 16),
            ("/v2 one JSON image, 1 connection, p50 ms", INFER_PATH, one_json.path, one_json.content_type, {}, 1),
            (
                "/v2 one binary image, 16 connections, req/s",
                INFER_PATH,
                one_binary.path,
                one_binary.content_type,
                one_binary.headers,
                16,
            ),
        ]
        for service in (*served.values(), raw):
            wrk(service.url + CLASSIFY, DIGIT, "image/png", 4, 1)
        for title, path, body, content_type, headers, connections in cases:
            say(title)
            figures: dict[str, list[float]] = {"off": [], "on": [], "raw": []}
            for turn in range(args.rounds):
                order = [("off", served["off"]), ("on", served["on"])][:: 1 if turn % 2 == 0 else -1]
                if path == CLASSIFY and connections > 1:
                    order.append(("raw", raw))
                for label, service in order:
                    load = wrk(service.url + path, body, content_type, connections, args.seconds, headers=headers)
                    figures[label].append(load.rps if connections > 1 else load.p50_ms)
            each = [round(on / off, 3) for on, off in zip(figures["on"], figures["off"])]
            versus_raw = [off / ref for off, ref in zip(figures["off"], figures["raw"])]
            results[title] = {**figures, "on_over_off": each}
            lines.append(
                f"| {title} | {np.median(figures['off']):,.4g} | {np.median(figures['on']):,.4g} | "
                f"{np.median(each):.2f}× ({min(each):.2f}–{max(each):.2f}) | "
                f"{f'{np.median(versus_raw):.2f}×' if versus_raw else '—'} |"
            )
        rss = {label: service.rss_mb() for label, service in served.items()}
    table = "\n".join(lines)
    load_after = os.getloadavg()
    print(table)
    print(
        f"\nRSS off {rss['off']:.0f} MB, on {rss['on']:.0f} MB; load average before {load_before[0]:.2f}, "
        f"after {load_after[0]:.2f}"
    )
    write_results(
        args.out,
        {
            "machine": machine(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "rounds": args.rounds,
            "seconds": args.seconds,
            "load_average": {"before": load_before, "after": load_after},
            "cases": results,
            "rss_mb": rss,
            "markdown": table,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
