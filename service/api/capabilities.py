"""What an imported model can be asked over HTTP: the routes that serve it, and the refusal (422) of a
shipped-model-only route that names them.

Attribution methods are told apart by their own traits: the gradient ones (``Method.any_model``) serve a model
whose every op between input and logits has a backward rule (``service.studies.any_model_explain``), the ones
served from forward runs alone (``Method.forward_runs``: occlusion and the black-box methods) every imported model.
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
# The attribution routes, each for the methods the model has (``capabilities`` lists them one by one).
ATTRIBUTION_ROUTES = ("POST /v1/attribution/{method}", "POST /v1/attribution/{method}/batch")
# What the shipped-model-only route families are called in a refusal, by their path's first segment under /v1.
SHIPPED_ONLY = {
    "compare": "comparing serves only the shipped classifiers",
    "autoencoder": "the autoencoder is a shipped model",
    "statistics": "the confusion matrix and training history were recorded when the shipped models were trained",
    "filters": "conv1's kernels and the training evolution are the shipped classifiers'",
    "evolution": "the training evolution was recorded when the shipped models were trained",
}


class ImportedNotApplicable(NotApplicableError, ValueError):
    """A route that serves only the shipped models was asked for an imported one."""


def refusal(name: str, path: str) -> ImportedNotApplicable:
    """The 422 for imported model ``name`` on ``path`` (a shipped-model-only route), naming what it can do."""
    family = path.removeprefix("/v1/").split("/", 1)[0]
    what = SHIPPED_ONLY.get(family, "this route serves only the shipped models")
    routes = ", ".join((*IMPORTED_ROUTES, *ATTRIBUTION_ROUTES))
    return ImportedNotApplicable(f"model {name!r} is an imported model: {what}. For {name!r} use {routes}")


def capabilities(gradient_methods: list[str], no_gradients: str | None) -> dict[str, object]:
    """What ``GET /v1/models/{name}`` reports of an imported model: the routes it answers (the gradient methods'
    among them when it has gradients), the ones that answer 422, the attribution methods it serves and, when the
    gradient ones are not among them, why (the op and node without a backward rule)."""
    forward_methods = [name for name, method in METHODS.items() if method.forward_runs is not None]
    attribution_routes = [
        f"POST /v1/attribution/{method}{tail}"
        for method in [*forward_methods, *gradient_methods]
        for tail in ("", "/batch")
    ]
    not_served = [name for name, method in METHODS.items() if method.needs_gradients and name not in gradient_methods]
    return {
        "endpoints": [*IMPORTED_ROUTES, *attribution_routes],
        "not_applicable": sorted(SHIPPED_ONLY),
        "attribution_methods": [
            name for name, method in METHODS.items() if name in gradient_methods or method.forward_runs is not None
        ],
        "attribution_needs_gradients": not_served,
        "no_gradients": no_gradients,
    }
