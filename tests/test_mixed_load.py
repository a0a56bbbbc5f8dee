"""200 concurrent requests mixing classify, inspect and deconvolution against the real service with micro-batching
on: every 200 is the answer the same request gets alone, every refusal is admission control's 503 with
Retry-After, and the share of 503s is printed."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np

from tests.helpers import ROOT, server_errors
from tests.server import running_service

DIGITS = [(ROOT / "examples" / f"digit-{label}.png").read_bytes() for label in range(10)]
PATHS = ["/v1/classify", "/v1/inspect", "/v1/deconvolution/conv2/3", "/v1/deconvolution/pool/12?format=json"]
CONCURRENT = 200


def mixed_requests() -> list[tuple[str, bytes]]:
    """200 (path, image) pairs: every path with every digit, in turn."""
    return [(PATHS[i % len(PATHS)], DIGITS[(i // len(PATHS)) % len(DIGITS)]) for i in range(CONCURRENT)]


async def send_all(base: str, requests: list[tuple[str, bytes]]) -> list[httpx.Response]:
    """Every request at once, each on its own connection."""
    limits = httpx.Limits(max_connections=CONCURRENT, max_keepalive_connections=CONCURRENT)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        return await asyncio.gather(
            *(client.post(path, content=image, headers={"content-type": "image/png"}) for path, image in requests)
        )


def same_answer(path: str, alone: httpx.Response, loaded: httpx.Response) -> bool:
    """Byte for byte, except classify's floats, which a shared onnxruntime batch may round differently."""
    if path != "/v1/classify":
        return loaded.content == alone.content
    one, other = alone.json(), loaded.json()
    return (
        one["digit"] == other["digit"]
        and one["digit_like"] == other["digit_like"]
        and np.allclose(one["probabilities"], other["probabilities"], rtol=0, atol=1e-6)
        and np.isclose(one["digit_like_score"], other["digit_like_score"], rtol=1e-5, atol=1e-6)
    )


def test_200_concurrent_mixed_requests_answer_as_alone_or_503_with_retry_after():
    requests = mixed_requests()
    with running_service(CONVLENS_MICRO_BATCHING="true") as (base, _):
        with httpx.Client(base_url=base, timeout=60) as client:
            alone = {
                (path, image): client.post(path, content=image, headers={"content-type": "image/png"})
                for path, image in set(requests)
            }
        assert {answer.status_code for answer in alone.values()} == {200}
        answers = asyncio.run(send_all(base, requests))
        refused = [answer for answer in answers if answer.status_code == 503]
        print(
            f"\n200 concurrent mixed requests, micro-batching on: {len(refused)} of {len(answers)} "
            f"({len(refused) / len(answers):.0%}) refused with 503"
        )
        assert {answer.status_code for answer in answers} <= {200, 503}
        assert all(answer.headers.get("retry-after") for answer in refused)
        for (path, image), answer in zip(requests, answers):
            if answer.status_code == 200:
                assert same_answer(path, alone[(path, image)], answer), path
        assert len(refused) < len(answers)
        assert server_errors(base) == {}
        assert shared_runs(base) > 0


def shared_runs(base: str) -> float:
    """How many runs the micro-batcher made (from /metrics)."""
    line = next(
        line
        for line in httpx.get(f"{base}/metrics").text.splitlines()
        if line.startswith("convlens_microbatch_size_count")
    )
    return float(line.split()[-1])
