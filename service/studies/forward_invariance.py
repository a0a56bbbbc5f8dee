"""Feature invariance (Zeiler and Fergus 2014, section 4.1) of an imported model: the shipped study's transforms
(``service.studies.invariance``) applied to the model's own input and read from its own layers.

The transforms act on the preprocessed input the model sees, in its own size and about its own centre: shifts in
whole pixels of that input, rotation and scaling bilinear; a colour model's input is transformed per channel. Where
a transformed input reads outside the image it takes the model's normalised black, ``(0 - mean) / std`` per channel
(the shipped study's 0, and on an MNIST-style model the background), as occlusion fills its squares. The distances
are those of every exposed layer but the probabilities, in graph order; the probabilities are the model's own.
"""

from __future__ import annotations

import numpy as np

from service.runtime.imported import ImportedLoadedModel
from service.studies.forward_explain import channels_first, normalised_black, pictures
from service.studies.invariance import DEFAULT_STEPS, Invariance, amounts, transformed
from service.studies.layers import NotApplicable

RUN_ROWS = 16  # inputs per run: every layer of RUN_ROWS images is held at once, not those of all amounts


def distance_layers(model: ImportedLoadedModel) -> list[str]:
    """The layers whose distance from the original is measured: every exposed layer but the probabilities."""
    return [layer.name for layer in model.manifest.layers if layer.name != model.manifest.probabilities]


def transformed_input(model: ImportedLoadedModel, image: np.ndarray, name: str, values: np.ndarray) -> np.ndarray:
    """One image of ``model``'s input under each amount of transform ``name``, per channel, the outside filled with
    the normalised black: (len(values), C, H, W) float32."""
    planes = channels_first(model, image)
    fill = normalised_black(model)
    return np.stack([transformed(plane, name, values, float(black)) for plane, black in zip(planes, fill)], axis=1)


def imported_invariance(
    model: ImportedLoadedModel,
    image: np.ndarray,
    name: str,
    start: float | None = None,
    stop: float | None = None,
    steps: int = DEFAULT_STEPS,
    target: int | None = None,
) -> Invariance:
    """``image`` (one of ``model``'s inputs) under ``steps`` amounts of transform ``name``: per amount the tracked
    class's probability, the predicted class and each layer's distance from the original, through ``model.run``
    (RUN_ROWS inputs a run, the original first). ``target`` is the class to track (default: the one predicted for
    the original)."""
    classes = len(model.manifest.labels)
    if target is not None and not 0 <= target < classes:
        raise NotApplicable(f"target must be a class 0-{classes - 1} of model {model.name!r}, got {target}")
    values = amounts(name, start, stop, steps)
    inputs = transformed_input(model, image, name, values)
    layers, output = distance_layers(model), model.manifest.probabilities
    batch = np.concatenate([channels_first(model, image)[None], inputs])  # the original first, in the first run
    nhwc = model.manifest.input.layout == "nhwc"
    reference: dict[str, np.ndarray] = {}
    probabilities, distances = [], {layer: [] for layer in layers}
    for first in range(0, len(batch), RUN_ROWS):
        rows = batch[first : first + RUN_ROWS]
        outputs = model.run(rows.transpose(0, 2, 3, 1) if nhwc else rows, [*layers, output])
        reference = reference or {key: array[:1].copy() for key, array in outputs.items()}
        probabilities.append(outputs[output])
        for layer in layers:
            difference = outputs[layer].reshape(len(rows), -1) - reference[layer].reshape(1, -1)
            distances[layer].append(np.sqrt(np.einsum("ij,ij->i", difference, difference)))
    probability = np.concatenate(probabilities)[1:]
    tracked = int(reference[output][0].argmax()) if target is None else target
    return Invariance(
        transform=name,
        target=tracked,
        amounts=values,
        probability=probability[:, tracked],
        predicted=probability.argmax(axis=1),
        distance={layer: np.concatenate(parts)[1:] for layer, parts in distances.items()},
        inputs=pictures(model, inputs),
    )
