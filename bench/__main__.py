"""``python -m bench``: every measure of the performance table in one run, printed as Markdown and saved as JSON."""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench import inprocess
from bench.load import ROOT, Load, keras_serve, make_serve, serving, wrk
from bench.measure import Row, markdown, ratio
from bench.results import RESULTS, machine, say, write_results

PAPER_SECONDS_PER_EPOCH = 94.0
VARIANTS = {
    "WEB_CONCURRENCY=2": {"WEB_CONCURRENCY": "2"},
    "micro-batching on (2 ms window, up to 32)": {"CONVLENS_MICRO_BATCHING": "true"},
}
MAPS_BATCH = 100
ENDPOINTS = {
    "deconvolution conv1 (one filter, PNG)": "/v1/deconvolution/conv1/3",
    "deconvolution conv2 (one filter, PNG)": "/v1/deconvolution/conv2/3",
    "deconvolution pool (one filter, PNG)": "/v1/deconvolution/pool/3",
    "deconvolution pool (grid of all 64, PNG)": "/v1/deconvolution/pool",
    "activation grid conv2 (PNG)": "/v1/activations/conv2?format=png",
    "activations conv1 (JSON)": "/v1/activations/conv1",
    "active filters conv2": "/v1/active-filters/conv2",
    "invariance, rotate in 33 steps (JSON, one onnxruntime batch)": "/v1/invariance?transform=rotate&steps=33",
    "invariance, rotate in 33 steps (PNG)": "/v1/invariance?transform=rotate&steps=33&format=png",
    "attribution saliency (PNG)": "/v1/attribution/saliency",
    "attribution grad-cam conv2 (PNG)": "/v1/attribution/grad-cam",
    "attribution occlusion, 169 squares (PNG)": "/v1/attribution/occlusion",
    "attribution integrated-gradients, 50 steps (PNG)": "/v1/attribution/integrated-gradients",
}


def npy_body(count: int) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, (inprocess.images(count)[..., 0] * 255).astype(np.uint8))
    return buffer.getvalue()


def v2_binary_body(images: np.ndarray) -> tuple[bytes, int]:
    """An Open Inference Protocol request for ``images`` (N, 28, 28) in [0, 1] asking for ``output``, both tensors
    binary (tritonclient's default): the body and its JSON length (``Inference-Header-Content-Length``)."""
    document = {
        "inputs": [
            {
                "name": "input",
                "shape": [len(images), 28, 28, 1],
                "datatype": "FP32",
                "parameters": {"binary_data_size": images.size * 4},
            }
        ],
        "outputs": [{"name": "output", "parameters": {"binary_data": True}}],
    }
    header = json.dumps(document).encode()
    return header + images.astype("<f4").tobytes(), len(header)


def v2_json_body(image: np.ndarray) -> bytes:
    """An Open Inference Protocol JSON request for one image (28, 28) in [0, 1] asking for ``output``."""
    tensor = {"name": "input", "shape": [1, 28, 28, 1], "datatype": "FP32", "data": image.ravel().tolist()}
    return json.dumps({"inputs": [tensor], "outputs": [{"name": "output"}]}).encode()


def protocol_rows(url: str, seconds: float, files: Path) -> tuple[list[Row], list[Load]]:
    """The Open Inference Protocol (/v2) beside /v1 on the same images, each pair measured back to back (for at
    least 2 s each, so that even a quick run completes several 256-image requests); the rows and the wrk runs."""
    seconds = max(seconds, 2.0)
    digit = ROOT / "examples" / "digit-7.png"
    pixels = np.asarray(Image.open(digit).convert("L"), dtype=np.float32) / 255.0
    (files / "v2-one.json").write_bytes(v2_json_body(pixels))
    batch = (inprocess.images(256)[..., 0] * 255).astype(np.uint8)
    npy = io.BytesIO()
    np.save(npy, batch)
    (files / "batch-256.npy").write_bytes(npy.getvalue())
    body, header_length = v2_binary_body(batch.astype(np.float32) / 255.0)
    (files / "v2-256.bin").write_bytes(body)
    v1_batch = wrk(f"{url}/v1/classify/batch", files / "batch-256.npy", "application/x-npy", 1, seconds)
    v2_batch = wrk(
        f"{url}/v2/models/classifier/infer",
        files / "v2-256.bin",
        "application/octet-stream",
        1,
        seconds,
        headers={"Inference-Header-Content-Length": str(header_length)},
    )
    v1_one = wrk(f"{url}/v1/classify", digit, "image/png", 1, seconds)
    v2_one = wrk(f"{url}/v2/models/classifier/infer", files / "v2-one.json", "application/json", 1, seconds)
    return [
        Row(
            "v2 binary infer of 256 images (`output`, tritonclient's encoding)",
            v2_batch.rps * 256,
            "img/s",
            "/v1/classify/batch on the same 256 images (.npy), measured alongside",
            v1_batch.rps * 256,
            ratio(v2_batch.rps, v1_batch.rps),
            "times /v1's throughput; target >= 0.8",
        ),
        Row(
            "v2 JSON infer of one image p50 (`output`)",
            v2_one.p50_ms,
            "ms",
            "/v1/classify p50 on the same image (PNG), measured alongside",
            v1_one.p50_ms,
            ratio(v2_one.p50_ms, v1_one.p50_ms),
            "times /v1's latency; target <= 1.5",
        ),
    ], [v1_batch, v2_batch, v1_one, v2_one]


def http_rows(ort: dict[str, float], seconds: float, quick: bool, files: Path) -> tuple[list[Row], dict]:
    """Every HTTP measure against the service started by `make serve`, then the naive Keras server."""
    digit = ROOT / "examples" / "digit-7.png"
    batch = files / "batch.npy"
    batch.write_bytes(npy_body(1000))
    maps_batch = files / "maps.npy"  # 100 images: a request of 1,000 maps outlasts the quick run's few seconds
    maps_batch.write_bytes(npy_body(MAPS_BATCH))
    rows, extra = [], {}
    with serving(make_serve()) as service:
        warm = wrk(f"{service.url}/v1/classify", digit, "image/png", 4, min(seconds, 2))
        warm_rss = service.rss_mb()
        count = 300 if quick else 10_000
        soak = wrk(f"{service.url}/v1/classify", digit, "image/png", 16, 2 + 1.5 * count / warm.rps, max_requests=count)
        rows.append(
            Row(
                f"service RSS after {soak.requests:,} classify requests (after warm-up)",
                service.rss_mb(),
                "MB",
                "RSS after warm-up",
                warm_rss,
                ratio(service.rss_mb(), warm_rss),
                "times the warm-up RSS",
            )
        )
        one = wrk(f"{service.url}/v1/classify", digit, "image/png", 1, seconds)
        extra["ours"] = {1: one}
        b1 = ort["b1_p50_ms_1t"]
        for name, value in (("p50", one.p50_ms), ("p90", one.p90_ms), ("p99", one.p99_ms)):
            rows.append(
                Row(
                    f"HTTP classify {name}, concurrency 1",
                    value,
                    "ms",
                    "onnxruntime batch-1 p50 in-process",
                    b1,
                    ratio(value, b1),
                    "times the bare model's latency",
                )
            )
        for connections in (16, 64):
            load = extra["ours"][connections] = wrk(
                f"{service.url}/v1/classify", digit, "image/png", connections, seconds
            )
            rows.append(
                Row(
                    f"HTTP classify throughput, concurrency {connections}",
                    load.rps,
                    "req/s",
                    "onnxruntime single-thread batch-1 throughput",
                    ort["b1_img_s_1t"],
                    ratio(load.rps, ort["b1_img_s_1t"]),
                    "of the bare model's throughput",
                )
            )
            rows.append(
                Row(
                    f"HTTP classify p99, concurrency {connections}",
                    load.p99_ms,
                    "ms",
                    "HTTP classify p50, concurrency 1",
                    one.p50_ms,
                    ratio(load.p99_ms, one.p50_ms),
                    "times the unloaded p50",
                )
            )
        extra["ours_rss_mb"] = service.rss_mb()
        # at least 5 s: under load a 1,000-image request can outlast a quick run's second and count zero
        batch_load = wrk(f"{service.url}/v1/classify/batch", batch, "application/x-npy", 1, max(seconds, 5.0))
        rows.append(
            Row(
                "batch endpoint, 1,000 images per request (.npy)",
                batch_load.rps * 1000,
                "img/s",
                "onnxruntime batch-256 throughput (1 thread)",
                ort["b256_img_s_1t"],
                ratio(batch_load.rps * 1000, ort["b256_img_s_1t"]),
                "of the bare model's throughput",
            )
        )
        # the same floor: 100 maps in one request can outlast a quick run's second on a busy machine
        maps_load = wrk(
            f"{service.url}/v1/attribution/saliency/batch", maps_batch, "application/x-npy", 1, max(seconds, 5.0)
        )
        rows.append(
            Row(
                f"attribution batch, {MAPS_BATCH} saliency maps per request (.npy in, JSON out)",
                maps_load.rps * MAPS_BATCH,
                "maps/s",
                "batch endpoint, 1,000 images per request (.npy)",
                batch_load.rps * 1000,
                ratio(maps_load.rps * MAPS_BATCH, batch_load.rps * 1000),
                "of the classify batch's throughput",
            )
        )
        protocol, protocol_loads = protocol_rows(service.url, seconds, files)
        rows += protocol
        for name, path in ENDPOINTS.items():
            load = wrk(f"{service.url}{path}", digit, "image/png", 1, seconds / 2)
            rows.append(
                Row(
                    f"HTTP {name} p50",
                    load.p50_ms,
                    "ms",
                    "HTTP classify p50",
                    one.p50_ms,
                    ratio(load.p50_ms, one.p50_ms),
                    "times classify",
                )
            )
        rows.append(
            Row(
                "service RSS after every measure above (batches of 1,000 included)",
                service.rss_mb(),
                "MB",
                "RSS after warm-up",
                warm_rss,
                ratio(service.rss_mb(), warm_rss),
                "times the warm-up RSS",
            )
        )
        rows.append(Row("time from start to /readyz = 200 (`make serve`)", service.ready_seconds, "s", "—", None))
        extra["errors"] = sum(load.non2xx + load.socket_errors for load in (one, batch_load, soak, *protocol_loads))
    for variant, env in VARIANTS.items():
        with serving(make_serve(), env=env) as other:
            wrk(f"{other.url}/v1/classify", digit, "image/png", 4, min(seconds, 2))
            for connections in (16, 64):
                load = wrk(f"{other.url}/v1/classify", digit, "image/png", connections, seconds)
                default = extra["ours"][connections]
                rows.append(
                    Row(
                        f"HTTP classify throughput, concurrency {connections}, {variant}",
                        load.rps,
                        "req/s",
                        "the defaults (one worker, no micro-batching)",
                        default.rps,
                        ratio(load.rps, default.rps),
                        "times the default's throughput",
                    )
                )
                rows.append(
                    Row(
                        f"HTTP classify p99, concurrency {connections}, {variant}",
                        load.p99_ms,
                        "ms",
                        "the defaults (one worker, no micro-batching)",
                        default.p99_ms,
                        ratio(load.p99_ms, default.p99_ms),
                        "times the default's p99",
                    )
                )
            extra[variant] = other.rss_mb()
    for variant in VARIANTS:
        memory = extra[variant]
        rows.append(
            Row(
                f"service RSS under load, {variant} (all its processes)",
                memory,
                "MB",
                "the defaults",
                extra["ours_rss_mb"],
                ratio(memory, extra["ours_rss_mb"]),
                "times the default's memory",
            )
        )
    return rows, extra


def keras_rows(ours: dict, ours_rss: float, seconds: float) -> list[Row]:
    """The same endpoint answered by Keras in-process (the naive server users write)."""
    rows = []
    digit = ROOT / "examples" / "digit-7.png"
    with serving(keras_serve(sys.executable)) as naive:
        for connections in (1, 16):
            load = wrk(f"{naive.url}/v1/classify", digit, "image/png", connections, seconds)
            mine = ours[connections]
            rows.append(
                Row(
                    f"HTTP classify req/s, concurrency {connections}",
                    mine.rps,
                    "req/s",
                    "same endpoint calling Keras in-process",
                    load.rps,
                    ratio(mine.rps, load.rps),
                    "times the Keras server's throughput",
                )
            )
            rows.append(
                Row(
                    f"HTTP classify p50, concurrency {connections}",
                    mine.p50_ms,
                    "ms",
                    "same endpoint calling Keras in-process",
                    load.p50_ms,
                    ratio(load.p50_ms, mine.p50_ms),
                    "times faster than the Keras server",
                )
            )
        rows.append(
            Row(
                "service RSS under load",
                ours_rss,
                "MB",
                "Keras server RSS under load",
                naive.rss_mb(),
                ratio(ours_rss, naive.rss_mb()),
                "of the Keras server's memory",
            )
        )
    return rows


def training_row() -> Row:
    manifest = json.loads((ROOT / "models" / "manifest.json").read_text())
    seconds = manifest["models"]["classifier"]["metrics"]["seconds_per_epoch"]
    return Row(
        "training seconds per epoch (60,000 images, from the manifest)",
        seconds,
        "s",
        "the paper's 94 s/epoch",
        PAPER_SECONDS_PER_EPOCH,
        ratio(seconds, PAPER_SECONDS_PER_EPOCH),
        "of the paper's epoch time",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (seconds, not minutes)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras reference columns")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else 5.0
    model = ROOT / "models" / "classifier.onnx"

    say("onnxruntime in-process")
    ort = inprocess.onnxruntime_figures(model, seconds / 2)
    say("Keras in-process" if not args.no_keras else "Keras skipped (--no-keras)")
    keras = None if args.no_keras else inprocess.keras_figures(model, seconds / 2)
    rows = inprocess.rows(ort, keras)
    say("HTTP against `make serve`")
    with tempfile.TemporaryDirectory() as files:
        http, extra = http_rows(ort, seconds, args.quick, Path(files))
    rows += http
    if keras is not None:
        say("HTTP against the naive Keras server")
        rows += keras_rows(extra["ours"], extra["ours_rss_mb"], seconds)
    rows.append(training_row())

    table = markdown(rows)
    print(table)
    write_results(
        args.out,
        {
            "machine": machine(),
            "quick": args.quick,
            "http_errors": extra["errors"],
            "rows": [row.as_dict() for row in rows],
            "markdown": table,
        },
    )
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
