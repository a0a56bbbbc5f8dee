"""Classification: a classifier's run over digits, read as each digit's class, probabilities and digit judgement.

Every path that classifies calls ``classify``: ``POST /v1/classify`` (on the event loop, in a thread, in a
micro-batcher's shared run through ``layers_of``, or answered by the ``ClassifyShortcut`` middleware),
``/v1/classify/batch``, ``/v1/inspect`` (with its layers) and ``/v2`` inference on a classifier (``layers_of``).
What the run asks for is chosen in ``outputs_for``; each digit's answer is built in ``Classification.answers``.

An imported model (``service.runtime.imported``) runs the same way over its own inputs (already through its
preprocessing): its probabilities output, no digit judge, and each answer also carries the class's ``label`` and
the ``top`` classes (``top_k``: the ``top`` most probable with their labels, by default all up to TOP_DEFAULT).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np

from service.contract import PROBABILITIES
from service.runtime.imported import ImportedLoadedModel
from service.runtime.registry import LoadedModel
from service.studies.digit_judge import OUTPUTS, SCORE, DigitJudgeModel
from service.studies.layers import NotApplicable, classifies, require_classifier

NO_JUDGEMENT = {"digit_like": None, "digit_like_score": None, "digit_like_threshold": None}
# The classes an imported model's answer lists under ``top`` when the request does not say: all, up to this many.
TOP_DEFAULT = 10

Model = LoadedModel | ImportedLoadedModel


class TopOutOfRange(NotApplicable):
    """``top`` asks for fewer than one class or more than the model has."""


def probabilities_of(model: Model) -> str:
    """The output that holds ``model``'s class probabilities."""
    return model.manifest.probabilities if isinstance(model, ImportedLoadedModel) else PROBABILITIES


def outputs_for(model: Model, judge: DigitJudgeModel | None, layers: Sequence[str] = ()) -> list[str]:
    """What a classification asks of ``model``'s run: the probabilities, the judge's score when the run computes it
    (else dense1, for the judge's numpy path), then each of ``layers`` not already asked for."""
    if judge is None:
        judged = [probabilities_of(model)]
    else:
        judged = [PROBABILITIES, SCORE] if SCORE in model.output_names else list(OUTPUTS)
    if not layers:
        return judged
    return [*judged, *(layer for layer in layers if layer not in judged)]


@dataclass(frozen=True)
class Classification:
    """One classifier run over N digits: what it answered (the ``outputs_for`` it asked) and the judge it is read
    with (None: the model has no calibrated judge)."""

    images: np.ndarray
    outputs: dict[str, np.ndarray]
    judge: DigitJudgeModel | None
    probabilities: str = PROBABILITIES
    labels: Sequence[str] | None = None
    top: int | None = None

    def answers(self) -> list[dict]:
        """Per digit, in input order: ``digit`` (the class index), ``probabilities``, ``digit_like``,
        ``digit_like_score`` and ``digit_like_threshold`` (the judge's three null without a judge), and with
        ``labels`` the class's ``label`` and with ``top`` the ``top`` classes, as plain values ready for JSON."""
        rows = self.outputs[self.probabilities].tolist()
        judged = self._judged()
        answers = [{"digit": row.index(max(row)), "probabilities": row, **fields} for row, fields in zip(rows, judged)]
        for answer in answers:
            if self.labels is not None:
                answer["label"] = self.labels[answer["digit"]]
            if self.top is not None:
                answer["top"] = top_k(answer["probabilities"], self.top, self.labels)
        return answers

    def _judged(self) -> list[dict]:
        """The judge's fields per digit; the score from the run's SCORE output when it has one."""
        if self.judge is None:
            return [NO_JUDGEMENT] * len(self.outputs[self.probabilities])
        threshold = self.judge.threshold
        scores = self.outputs.get(SCORE)
        if scores is None:
            scores = self.judge.scores(self.images.reshape(-1, 28, 28), self.outputs)
        return [
            {
                "digit_like": bool(score <= threshold),
                "digit_like_score": float(score),
                "digit_like_threshold": threshold,
            }
            for score in scores
        ]


def top_k(probabilities: list[float], count: int, labels: Sequence[str] | None) -> list[dict]:
    """The ``count`` most probable classes, most probable first (ties in class order): index, label, probability."""
    order = sorted(range(len(probabilities)), key=lambda index: -probabilities[index])[:count]
    return [
        {"index": index, "label": labels[index] if labels else str(index), "probability": probabilities[index]}
        for index in order
    ]


def top_count(model: Model, top: int | None) -> int | None:
    """How many classes each answer lists under ``top``: as asked (TopOutOfRange outside 1 to the model's classes),
    else for an imported model all of them up to TOP_DEFAULT, for a shipped one none (its answer has no ``top``)."""
    imported = isinstance(model, ImportedLoadedModel)
    classes = len(model.manifest.labels) if imported else model.layer_shapes[PROBABILITIES][-1]
    if top is None:
        return min(classes, TOP_DEFAULT) if imported else None
    if not 1 <= top <= classes:
        raise TopOutOfRange(f"top must be between 1 and {classes} (the model's classes), got {top}")
    return top


@overload
def classify(
    model: Model,
    images: np.ndarray,
    judge: DigitJudgeModel | None,
    layers: Sequence[str] = (),
    *,
    now: Literal[False] = False,
    top: int | None = None,
) -> Classification: ...


@overload
def classify(
    model: Model,
    images: np.ndarray,
    judge: DigitJudgeModel | None,
    layers: Sequence[str] = (),
    *,
    now: bool,
    top: int | None = None,
) -> Classification | None: ...


def classify(
    model: Model,
    images: np.ndarray,
    judge: DigitJudgeModel | None,
    layers: Sequence[str] = (),
    *,
    now: bool = False,
    top: int | None = None,
) -> Classification | None:
    """``model``'s run over ``images`` asking ``outputs_for(model, judge, layers)``; NotApplicable unless ``model``
    classifies. ``images`` are digits ((N, 28, 28) or (N, 28, 28, 1) in [0, 1]) for a shipped model, inputs in
    its own shape for an imported one (whose answers carry labels and the ``top_count(model, top)`` classes).

    With ``now``, only if the model runs it at once on the calling thread (``run_now``: one image and a free
    inference slot), else None and the caller runs it elsewhere."""
    if isinstance(model, ImportedLoadedModel):
        labels, probabilities = model.manifest.labels, model.manifest.probabilities
    else:
        require_classifier(model)
        labels, probabilities = None, PROBABILITIES
    count = top_count(model, top)
    names = outputs_for(model, judge, layers)
    outputs = model.run_now(images, names) if now else model.run(images, names)
    if outputs is None:
        return None
    return Classification(images, outputs, judge, probabilities, labels, count)


@overload
def layers_of(
    model: Model, images: np.ndarray, layers: Sequence[str], *, now: Literal[False] = False
) -> dict[str, np.ndarray]: ...


@overload
def layers_of(
    model: Model, images: np.ndarray, layers: Sequence[str], *, now: bool
) -> dict[str, np.ndarray] | None: ...


def layers_of(
    model: Model, images: np.ndarray, layers: Sequence[str], *, now: bool = False
) -> dict[str, np.ndarray] | None:
    """``layers`` of ``model``'s run over ``images`` (and perhaps more): a classifier's from its classification
    without the judge (the run ``/v1/classify`` reads), another model's (the autoencoder) from a run of them alone.
    With ``now``, only if it runs at once on the calling thread (as ``classify``), else None."""
    if isinstance(model, ImportedLoadedModel) or classifies(model):
        classified = classify(model, images, None, layers, now=now)
        return None if classified is None else classified.outputs
    return model.run_now(images, list(layers)) if now else model.run(images, list(layers))


def shipped_classifier(model: Model) -> bool:
    """Whether ``model`` is a shipped model that classifies (not the autoencoder, not an imported model)."""
    return not isinstance(model, ImportedLoadedModel) and classifies(model)
