"""What an imported model can be asked over HTTP: the routes that run it forward-only, and the refusal (422) of a
shipped-model-only route that names them.

Attribution methods are told apart by their own traits (``Method.needs_gradients``): the gradient methods need
the backward graph, which exists for the shipped classifiers only, and their refusal says so; the forward-only
one (occlusion) runs through the imported model's own forward run (``service.studies.forward_explain``).
"""

from __future__ import annotations

from service.attribution import METHODS
from service.errors import NotApplicableError

# The routes that serve an imported model (with ``?model=NAME``, or the name in the /v2 path).
IMPORTED_ROUTES = (
    "POST /v1/classify",
    "POST /v1/classify/batch",
    "POST /v1/activations/{layer}",
    "POST /v1/activations/{layer}/{filter}",
    "POST /v1/active-filters/{layer}",
    "POST /v1/inspect",
    "POST /v1/attribution/occlusion",
    "GET /v1/statistics",
    "GET /v1/statistics/active-filters/{layer}",
    "GET /v1/statistics/norms/{layer}",
    "GET /v1/filters/{layer}/{filter}/top-images",
    "POST /v1/invariance",
    "POST /v1/deconvolution/{layer}",
    "POST /v1/deconvolution/{layer}/{filter}",
    "GET /v1/filters/{layer}/optimized",
    "GET /v1/filters/{layer}/{filter}/optimized",
    "GET /v1/classes/{digit}/optimized",
    "GET /v1/models/{name}",
    "GET /v2/models/{name}",
    "POST /v2/models/{name}/infer",
)
# What the shipped-model-only route families are called in a refusal, by their path's first segment under /v1.
SHIPPED_ONLY = {
    "compare": "comparing serves only the shipped classifiers",
    "autoencoder": "the autoencoder is a shipped model",
    "statistics": "the confusion matrix and training history were recorded when the shipped models were trained",
    "filters": "conv1's kernels and the training evolution are the shipped classifiers'",
    "evolution": "the training evolution was recorded when the shipped models were trained",
    "attribution": "the attribution maps of imported models are occlusion's (the others need gradients)",
}


class ImportedNotApplicable(NotApplicableError, ValueError):
    """A route that serves only the shipped models was asked for an imported one."""


def gradient_methods() -> list[str]:
    """The attribution methods that need gradients (``Method.needs_gradients``)."""
    return [name for name, method in METHODS.items() if method.needs_gradients]


def refusal(name: str, path: str, method: str | None = None) -> ImportedNotApplicable:
    """The 422 for imported model ``name`` on ``path`` (a shipped-model-only route), naming what it can do."""
    family = path.removeprefix("/v1/").split("/", 1)[0]
    what = SHIPPED_ONLY.get(family, "this route serves only the shipped models")
    if family == "attribution" and method in METHODS and METHODS[method].needs_gradients:
        what = f"attribution method {method!r} needs gradients, which are not yet for imported models"
    return ImportedNotApplicable(
        f"model {name!r} is an imported model: {what}. For {name!r} use {', '.join(IMPORTED_ROUTES)}"
    )


def capabilities() -> dict[str, list[str]]:
    """What ``GET /v1/models/{name}`` reports of an imported model: the routes it answers, the ones that answer
    422, and the attribution methods (all not yet: the gradient ones need gradients)."""
    return {
        "endpoints": list(IMPORTED_ROUTES),
        "not_applicable": sorted(SHIPPED_ONLY),
        "attribution_needs_gradients": gradient_methods(),
    }
