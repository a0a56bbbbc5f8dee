"""An attribution method and its traits, declared by the method's own module (as each of Captum's attr/_core
classes knows its own): its entry point, its parameters, what its maps mean, what one image costs and what it
needs of the model. ``service.studies.explain`` and the API read the traits and name no method.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.attribution.inputs import Choice, Parameter, Segments
from service.attribution.placement import to_input_size

INPUT = "input"  # the layer of the methods whose maps are over the 28x28 input
PIXELS = "(N,28,28) float32"


@dataclass(frozen=True)
class Limits:
    """The most work one request may ask for: integrated-gradients steps, smoothgrad samples, occlusion squares,
    perturbed copies (RISE masks, KernelSHAP coalitions) and segments (``grid:N``, ``slic:N``) per image, and in a
    batch images x evaluations (one evaluation: one image through forward and backward).

    A parameter's ``Range.limit`` names the field that bounds it."""

    max_steps: int = 64
    max_samples: int = 50
    max_squares: int = 196
    max_perturbations: int = 2000
    max_segments: int = 196
    max_batch_work: int = 10_000


@dataclass(frozen=True)
class NeedsActivation:
    """A method defined only for networks whose hidden layers use one activation."""

    activation: str  # as ClassifierWeights.activation names it
    label: str  # as people write it


Maps = tuple[np.ndarray, np.ndarray]
# A model's forward run as the black-box methods see it: images (M,C,H,W) in its input range -> (M,K) probabilities.
Scores = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ForwardRuns:
    """How a method explains any model from its forward runs alone (imported models too).

    ``compute(scores, images, targets, baseline, **parameters)`` maps images (N,C,H,W) in the model's input range,
    their target classes (N,) and the per-channel value of "nothing there" (C,) to (raw values, per-pixel maps
    (N,H,W)); ``fit(given, height, width, limits)`` makes the parameters for an input of that size when they
    depend on it (ValueError saying what to change); None: the method's own ranges apply as they are.
    ``evaluations(parameters, height, width)``: the forward runs one image of that size costs, when they depend on
    its size (None: the method's ``evaluations`` trait).
    """

    compute: Callable[..., Maps]
    fit: Callable[[Mapping[str, Any], int, int, Limits], dict[str, Any]] | None = None
    evaluations: Callable[[Mapping[str, Any], int, int], int] | None = None


def as_they_are(result: np.ndarray) -> Maps:
    """The raw maps are (N,28,28) over the input already: they are the per-pixel maps too."""
    return result, result


def resized_to_input(result: np.ndarray) -> Maps:
    """The raw maps at a layer's resolution (N,H,W), and the same resized bilinearly to the 28x28 input."""
    return result, np.stack([to_input_size(m) for m in result])


def one_evaluation(parameters: Mapping[str, Any]) -> int:
    """One forward (and backward) pass per image, whatever the parameters."""
    return 1


@dataclass(frozen=True)
class AnyModel:
    """How a method runs on a model it does not know (an imported one), over ``service.attribution.any_model``:
    ``compute(gradients, images, seeds, **parameters)`` with ``gradients`` the runner of the builder's ``rules``
    variant, images in the model's layout and range. ``layer``: its maps are of one of the model's spatial layers
    (the ``layer`` parameter names it), else of the input. (A method served from forward runs alone says so with
    ``Method.forward_runs``.) ``forward``: it needs no gradient but forward runs about its layer, and
    ``compute(runs, images, targets, layer)`` takes a ``LayerRuns`` (the layer's activations, the model's scores
    and its head from the layer on), images channels-first; ``evaluations(channels)``: the runs one image costs
    for a layer of that many channels (None: one)."""

    compute: Callable[..., np.ndarray]
    rules: str = "gradient"
    layer: bool = False
    forward: bool = False
    evaluations: Callable[[int], int] | None = None


@dataclass(frozen=True)
class Method:
    """One attribution method and its traits.

    ``compute(run, weights, images, targets, **parameters)`` is its entry point (``run`` the served model, which
    the gradient methods do not need: the backward graph computes its own forward pass); ``text`` the note the
    API's list of methods shows after its name; ``title`` what people call it (the page's menu; empty: its name);
    ``parameters`` their defaults, ranges, the limit bounding each
    (``Range.limit``) and their API text; ``signed`` whether a map holds negative values; ``needs_gradients``
    whether it runs the backward graph; ``layers`` the layers its maps can be of (a parameter choosing among them
    names an unknown layer when it names another); ``finds_targets`` whether it takes PREDICTED targets (its own
    runs find each image's predicted class and report their Decisions); ``evaluations`` the passes one image
    costs for its parameters; ``check_limits`` any further check of its parameters against the Limits
    (ValueError saying what to change); ``maps`` its result as (raw values, per-pixel maps over the input);
    ``answers_pixels`` whether an answer carries the per-pixel maps besides the raw values (when they are not the
    raw values resized); ``extra`` the fields an explanation adds for its parameters; ``requires`` what it needs
    of the network; ``any_model`` how it differentiates an imported model (None: it does not); ``forward_runs`` how
    it explains any model from forward runs alone (None: it needs gradients or the shipped classifiers' layers).
    """

    name: str
    compute: Callable[..., Any]
    text: str = ""
    title: str = ""
    parameters: dict[str, Parameter] = field(default_factory=dict)
    returns: str = PIXELS
    signed: bool = True
    needs_gradients: bool = True
    layers: tuple[str, ...] = (INPUT,)
    finds_targets: bool = False
    evaluations: Callable[[Mapping[str, Any]], int] = one_evaluation
    check_limits: Callable[[Mapping[str, Any], Limits], None] | None = None
    maps: Callable[[Any], Maps] = as_they_are
    answers_pixels: bool = False
    extra: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    requires: NeedsActivation | None = None
    any_model: AnyModel | None = None
    forward_runs: ForwardRuns | None = None


def parameter_text(method: str, spec: Parameter) -> str:
    """What the API says of a parameter: its method, its text (a Range's ``{low}`` and ``{high}`` filled in), its
    default and whether a limit bounds it; a Choice lists its options, the default marked."""
    if isinstance(spec, Choice):
        options = [f"`{option}`" + (" (default)" if option == spec.default else "") for option in spec.options]
        return f"{method}: {listed(options)}"
    if isinstance(spec, Segments):
        limit = ", at most the limit" if spec.limit else ""
        return f"{method}: {spec.text} (default `{spec.default}`, at most {spec.high} segments{limit})"
    limit = ", at most the limit" if spec.limit else ""
    return f"{method}: {spec.text.format(low=spec.low, high=spec.high)} (default {spec.default:g}{limit})"


def methods_text(methods: Mapping[str, Method]) -> str:
    """The API's list of the methods: each name, with its note."""
    return listed([f"`{name}` {method.text}".rstrip() for name, method in methods.items()])


def listed(items: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return " or ".join([", ".join(items[:-1]), items[-1]] if len(items) > 1 else items)
