"""What a request will cost, known before it runs: images x evaluations per image x the model's cost per image.

Read from the path, the query, the received body and the served models only, so that admission control can place
the request before any route code runs: attribution methods cost their steps (integrated gradients), samples
(SmoothGrad) or squares + 1 (occlusion, bounded by its limit) per image, invariance its steps + 1 (the original
with every amount), an imported model's optimized inputs (``.../optimized``) BACKWARD_EVALUATIONS per step
(``?steps=``, default its DEFAULT_STEPS) and input (every filter of the layer for a grid); every other request one
evaluation per image; a batch's images are counted from its .npy header or its multipart file parts, a /v2
inference's from its body's size over one image of the model's input. Each evaluation counts the named model's
``cost`` (``?model=`` or the ``/v2/models/{name}/`` path): an imported model's forward pass in units of the shipped
classifier's, measured at import, so a ResNet's evaluation weighs as much as the hundreds of MNIST ones it takes
as long as; every shipped model counts 1.
An attribution method that differentiates an imported model counts its ``gradient_cost`` (one image's forward
and backward run, measured when its backward graph was first built) per evaluation instead; one that runs an
imported model forward about a layer (``AnyModel.forward``: Score-CAM, Ablation-CAM) counts its runs for the
layer's channels (``?layer=``, default the last spatial one) per image, each a forward pass.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qs

from service.attribution import METHODS
from service.images.npy import npy_image_count
from service.studies import invariance, optimized_any_model
from service.studies.any_model_explain import spatial_layers

ATTRIBUTION = "/v1/attribution/"
V2_MODELS = "/v2/models/"
INVARIANCE = "/v1/invariance"
DEFAULT_EVALUATIONS = {"integrated-gradients": ("steps", 50), "smoothgrad": ("samples", 25)}
OPTIMIZED = "/optimized"
FILTERS = "/v1/filters/"
# One image's forward-and-backward run took 2.7-4.0 forward runs (the example, resnet18 at 64 and at 224).
BACKWARD_EVALUATIONS = 4
BYTES_PER_BINARY_IMAGE = 28 * 28 * 4
FLOAT_BYTES = 4


def model_name(path: str, query: dict[str, list[str]]) -> str:
    """The model a request names: the ``/v2/models/{name}/`` path segment, else the last ``?model=``, else ''."""
    if path.startswith(V2_MODELS):
        return path[len(V2_MODELS) :].split("/", 1)[0]
    values = query.get("model", [])
    return values[-1] if values else ""


def served_model(scope: dict, name: str) -> Any | None:
    """The served model called ``name`` in the app's registry; None when there is none (or no registry yet)."""
    registry = getattr(getattr(scope.get("app"), "state", None), "registry", None)
    return registry.find(name) if registry is not None and name else None


def binary_image_bytes(model: Any | None) -> int:
    """Bytes of one float32 image in ``model``'s input: an imported model's from its manifest, else MNIST's."""
    manifest = getattr(model, "manifest", None)
    if manifest is None:
        return BYTES_PER_BINARY_IMAGE
    spec = manifest.input
    return max(1, math.prod(size or 1 for size in (spec.channels, spec.height, spec.width)) * FLOAT_BYTES)


def _images(path: str, content_type: bytes, body: bytes, max_images: int, image_bytes: int) -> int:
    if path.startswith("/v2/"):
        return max(1, min(max_images, len(body) // image_bytes))
    if not path.endswith("/batch"):
        return 1
    if content_type.startswith(b"multipart/"):
        count = body.count(b"filename=")
    else:
        count = npy_image_count(body) or 1
    return max(1, min(max_images, count))


def _given(query: dict[str, list[str]], name: str, default: int, most: int) -> int:
    """The query's last whole ``name`` up to ``most``; ``default`` when it has none (the route answers a bad one)."""
    values = query.get(name, [])
    given = values[-1] if values else ""
    return min(int(given), most) if given.isdigit() and len(given) <= 9 else default


def _evaluations(path: str, query: dict[str, list[str]], max_occlusion_squares: int, max_steps: int) -> int:
    if path == INVARIANCE:
        return _given(query, "steps", invariance.DEFAULT_STEPS, invariance.MAX_STEPS) + 1
    if not path.startswith(ATTRIBUTION):
        return 1
    method = path[len(ATTRIBUTION) :].split("/", 1)[0]
    if method == "occlusion":
        return max_occlusion_squares + 1
    if method not in DEFAULT_EVALUATIONS:
        return 1
    name, default = DEFAULT_EVALUATIONS[method]
    return _given(query, name, default, max_steps)


def _optimized_evaluations(path: str, query: dict[str, list[str]], model: Any) -> int:
    """An imported model's ascent: BACKWARD_EVALUATIONS per step and input (a grid: every filter of its layer)."""
    values = query.get("steps", [])
    given = values[-1] if values else ""
    steps = int(given) if given.isdigit() and len(given) <= 6 else optimized_any_model.DEFAULT_STEPS
    segments = path[len(FILTERS) :].split("/") if path.startswith(FILTERS) else []
    shape = model.layer_shapes.get(segments[0]) if len(segments) == 2 else None
    inputs = int(shape[0] or 1) if shape else 1
    return BACKWARD_EVALUATIONS * steps * inputs


def _layer_runs(path: str, query: dict[str, list[str]], model: Any) -> int | None:
    """An imported model's runs per image of a method that runs it forward about a layer, from the layer's channels
    (None: not such a request, or an unknown layer, which the route refuses)."""
    method = METHODS.get(path[len(ATTRIBUTION) :].split("/", 1)[0]) if path.startswith(ATTRIBUTION) else None
    if method is None or method.any_model is None or not method.any_model.forward:
        return None
    if getattr(model, "manifest", None) is None:
        return None
    layers = spatial_layers(model)
    given = query.get("layer", [])
    layer = given[-1] if given else (layers[-1] if layers else None)
    if layer not in layers:
        return None
    runs = method.any_model.evaluations
    return runs(int(model.layer_shapes[layer][0] or 1)) if runs else 1


def request_cost(scope: dict, body: bytes, max_images: int, max_occlusion_squares: int, max_evaluations: int) -> int:
    """The request's work in units of one shipped-classifier evaluation: images x evaluations per image x the named
    model's ``cost`` (at least 1)."""
    path = scope["path"]
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    model = served_model(scope, model_name(path, query))
    per_evaluation = max(1, int(getattr(model, "cost", 1)))
    if path.startswith(ATTRIBUTION) and not path.startswith(f"{ATTRIBUTION}occlusion"):
        per_evaluation = max(1, int(getattr(model, "gradient_cost", per_evaluation)))
    content_type = dict(scope["headers"]).get(b"content-type", b"").lower()
    images = _images(path, content_type, body, max_images, binary_image_bytes(model))
    layer_runs = _layer_runs(path, query, model)
    if layer_runs is not None:
        per_evaluation, evaluations = max(1, int(model.cost)), layer_runs
    elif path.endswith(OPTIMIZED) and getattr(model, "manifest", None) is not None:
        evaluations = _optimized_evaluations(path, query, model)
    else:
        evaluations = max(1, _evaluations(path, query, max_occlusion_squares, max_evaluations))
    return images * evaluations * per_evaluation
