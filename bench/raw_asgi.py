"""The reference for the hot path: a minimal raw-ASGI app doing what ``POST /v1/classify`` does for a small PNG.

It reads the body (a multipart form's first part, for a form), decodes the PNG with Pillow, scales it to [0, 1], runs
onnxruntime once on one thread and writes the JSON bytes: no framework, no middleware, no validation. Its answer is
the service's, field for field (``tests/api/test_raw_reference.py``): the run is of the classifier with the digit
judge's score as one more output, as the service builds it at start-up (``service.studies.digit_judge_graph``), so
that the judge's part of the work is in both.
``bench.hotpath`` serves it under the same uvicorn with the same settings as the service, so the ratio of the two is
what the service's own machinery costs.
Run: ``python -m bench.raw_asgi`` (HOST and PORT from the environment, as ``python -m service``).
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image
from python_multipart.multipart import MultipartParser, parse_options_header

from service.contract import CLASSIFIER, INPUT_NAME
from service.runtime.registry import load_registry
from service.studies.digit_judge_graph import SCORE, attach_judges
from service.studies.statistics import load_statistics

MODEL_DIR = Path(os.environ.get("CONVLENS_MODEL_DIR", Path(__file__).resolve().parents[1] / "models"))


def judged_session(model_dir: Path) -> tuple[ort.InferenceSession, float]:
    """The classifier's session as the service serves it (one thread, the digit judge's score as one more output,
    ``attach_judges``) and the judge's threshold; start-up only."""
    registry = load_registry(model_dir, 1, variants=False)
    statistics = load_statistics(model_dir, registry, CLASSIFIER)
    attach_judges(registry, {CLASSIFIER: statistics})
    return registry.models[CLASSIFIER].session, statistics.judge.threshold


SESSION, THRESHOLD = judged_session(MODEL_DIR)


def first_part(body: bytes, content_type: bytes) -> bytes:
    """The data of a multipart form's first part, by python-multipart's parser (the least a framework-free app must
    do to read an upload from a form)."""
    _, options = parse_options_header(content_type)
    data = bytearray()
    parts = [0]

    def on_part_data(chunk: bytes, start: int, end: int) -> None:
        if parts[0] == 1:
            data.extend(chunk[start:end])

    def on_part_begin() -> None:
        parts[0] += 1

    parser = MultipartParser(options[b"boundary"], {"on_part_begin": on_part_begin, "on_part_data": on_part_data})
    parser.write(body)
    parser.finalize()
    return bytes(data)


async def app(scope, receive, send) -> None:
    """Every POST is a classification of the body (a 28x28 light-on-dark PNG, raw or as a multipart form's first
    part); every GET is a readiness probe."""
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    content_type = dict(scope["headers"]).get(b"content-type", b"")
    if content_type.startswith(b"multipart/form-data"):
        body = first_part(body, content_type)
    pixels = np.asarray(Image.open(io.BytesIO(body)).convert("L"), dtype=np.float32) / 255.0
    output, score = SESSION.run(["output", SCORE], {INPUT_NAME: pixels.reshape(1, 28, 28, 1)})
    probabilities, score = output[0].tolist(), float(score[0])
    body = json.dumps(
        {
            "model": CLASSIFIER,
            "digit": probabilities.index(max(probabilities)),
            "probabilities": probabilities,
            "digit_like": score <= THRESHOLD,
            "digit_like_score": score,
            "digit_like_threshold": THRESHOLD,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main() -> int:
    """Serve ``app`` with the service's uvicorn settings: its event loop, HTTP protocol class, keep-alive, no access
    log."""
    import uvicorn

    from service.api.event_loop import EVENT_LOOP
    from service.api.http_protocol import BoundedHttpToolsProtocol
    from service.api.settings import get_settings

    uvicorn.run(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8001")),
        loop=EVENT_LOOP,
        http=BoundedHttpToolsProtocol,
        timeout_keep_alive=get_settings().keep_alive_seconds,
        access_log=False,
        lifespan="off",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
