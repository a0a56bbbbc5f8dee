"""``python -m bench.soak``: a bounded soak of the service started by `make serve`, mixing every endpoint from
32 concurrent connections (wrk, loopback only). Passes when no answer is a 5xx, no connection is dropped,
every deliberate bad request gets its 4xx, and RSS grows less than 10 % after warm-up."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.load import ROOT, make_serve, require_wrk, serving
from bench.results import RESULTS, write_results

LUA = Path(__file__).with_name("wrk") / "mix.lua"
MAX_RSS_GROWTH = 0.10
IMAGE_POSTS = [
    "/v1/classify",
    "/v1/activations/conv1",
    "/v1/activations/pool?format=png",
    "/v1/activations/conv2/5?format=png",
    "/v1/active-filters/conv2",
    "/v1/active-filters/pool?threshold=dataset",
    "/v1/deconvolution/conv2/7",
    "/v1/deconvolution/pool/3?format=json",
    "/v1/deconvolution/pool",
    "/v1/autoencoder/reconstruct",
    "/v1/autoencoder/encode",
    "/v1/inspect",
]
GETS = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/",
    "/v1/models",
    "/v1/models/classifier",
    "/v1/statistics",
    "/v1/statistics/norms/conv2?format=png",
    "/v1/statistics/active-filters/conv1",
    "/v1/filters/pool/12/top-images?format=png",
    "/v1/filters/conv1/weights?format=png",
]
BAD = 2


def mix_file(folder: Path) -> Path:
    """The request mix: every endpoint with good input, plus BAD deliberately bad requests (4xx expected)."""
    digit, photo = ROOT / "examples" / "digit-7.png", ROOT / "examples" / "photo-3.jpg"
    batch, junk = folder / "batch.npy", folder / "junk.bin"
    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(0).integers(0, 256, (16, 28, 28), dtype=np.uint8))
    batch.write_bytes(buffer.getvalue())
    junk.write_bytes(np.random.default_rng(1).bytes(4096))
    lines = [f"POST {path} image/png {digit}" for path in IMAGE_POSTS]
    lines += [f"POST /v1/classify image/jpeg {photo}", f"POST /v1/classify/batch application/x-npy {batch}"]
    lines += [f"GET {path} - -" for path in GETS]
    lines += [f"POST /v1/classify image/png {junk}", f"POST /v1/deconvolution/conv1/99 image/png {digit}"]
    path = folder / "mix.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def mixed_load(url: str, mix: Path, connections: int, seconds: int) -> dict:
    env = {**os.environ, "BENCH_MIX": str(mix)}
    result = subprocess.run(
        [require_wrk(), "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA), url],
        capture_output=True,
        text=True,
        env=env,
        timeout=seconds + 60,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("BENCH "))
    return json.loads(line[len("BENCH ") :])


def soak(seconds: int, warmup: int, connections: int) -> dict:
    """Warm up, read RSS, soak, read RSS again; the figures and the verdict."""
    with tempfile.TemporaryDirectory() as folder, serving(make_serve()) as service:
        mix = mix_file(Path(folder))
        lines = len(mix.read_text().splitlines())
        mixed_load(service.url, mix, connections, warmup)
        warm_rss = service.rss_mb()
        load = mixed_load(service.url, mix, connections, seconds)
        end_rss = service.rss_mb()
    growth = end_rss / warm_rss - 1
    expected_bad = load["requests"] * BAD / lines
    verdict = {
        "no_5xx": load["server_errors"] == 0,
        "no_dropped_connections": load["socket_errors"] == 0,
        "bad_requests_got_4xx": abs(load["client_errors"] - expected_bad) <= max(4, 0.02 * expected_bad),
        "rss_growth_under_10_percent": growth < MAX_RSS_GROWTH,
    }
    return {
        "seconds": seconds,
        "connections": connections,
        "endpoints_in_mix": lines,
        **load,
        "requests_per_second": load["requests"] / (load["duration_us"] / 1e6),
        "rss_after_warmup_mb": round(warm_rss, 1),
        "rss_after_soak_mb": round(end_rss, 1),
        "rss_growth": round(growth, 4),
        "verdict": verdict,
        "passed": all(verdict.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    args = parser.parse_args(argv)
    result = soak(args.seconds, args.warmup, args.connections)
    write_results(args.out, result)
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
