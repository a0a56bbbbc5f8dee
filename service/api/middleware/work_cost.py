"""What a request will cost, known before it runs: images x evaluations per image (image-evaluations).

Read from the path, the query and the received body only, so that admission control can place the request before
any route code runs: attribution methods cost their steps (integrated gradients), samples (SmoothGrad) or squares
+ 1 (occlusion, bounded by its limit) per image, every other request one evaluation per image; a batch's images
are counted from its .npy header or its multipart file parts, a /v2 inference's from its body's size.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from service.images.npy import npy_image_count

ATTRIBUTION = "/v1/attribution/"
DEFAULT_EVALUATIONS = {"integrated-gradients": ("steps", 50), "smoothgrad": ("samples", 25)}
BYTES_PER_BINARY_IMAGE = 28 * 28 * 4


def _images(path: str, content_type: bytes, body: bytes, max_images: int) -> int:
    if path.startswith("/v2/"):
        return max(1, min(max_images, len(body) // BYTES_PER_BINARY_IMAGE))
    if not path.endswith("/batch"):
        return 1
    if content_type.startswith(b"multipart/"):
        count = body.count(b"filename=")
    else:
        count = npy_image_count(body) or 1
    return max(1, min(max_images, count))


def _evaluations(path: str, query: bytes, max_occlusion_squares: int, max_steps: int) -> int:
    if not path.startswith(ATTRIBUTION):
        return 1
    method = path[len(ATTRIBUTION) :].split("/", 1)[0]
    if method == "occlusion":
        return max_occlusion_squares + 1
    if method not in DEFAULT_EVALUATIONS:
        return 1
    name, default = DEFAULT_EVALUATIONS[method]
    values = parse_qs(query.decode("latin-1")).get(name, [])
    given = values[-1] if values else ""
    return min(int(given), max_steps) if given.isdigit() and len(given) <= 9 else default


def request_cost(scope: dict, body: bytes, max_images: int, max_occlusion_squares: int, max_evaluations: int) -> int:
    """The request's image-evaluations: images x evaluations per image (at least 1)."""
    path = scope["path"]
    content_type = dict(scope["headers"]).get(b"content-type", b"").lower()
    images = _images(path, content_type, body, max_images)
    return images * max(1, _evaluations(path, scope.get("query_string", b""), max_occlusion_squares, max_evaluations))
