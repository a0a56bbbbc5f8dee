"""Classification: a classifier's run over digits, read as each digit's class, probabilities and digit judgement.

Every path that classifies calls ``classify``: ``POST /v1/classify`` (on the event loop, in a thread, through the
micro-batcher's thread, or answered by the ``ClassifyShortcut`` middleware), ``/v1/classify/batch``,
``/v1/inspect`` (with its layers) and ``/v2`` inference on a classifier (``layers_of``). What the run asks for is
chosen in ``outputs_for``; each digit's answer is built in ``Classification.answers``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np

from service.contract import PROBABILITIES
from service.runtime.registry import LoadedModel
from service.studies.digit_judge import OUTPUTS, SCORE, DigitJudgeModel
from service.studies.layers import classifies, require_classifier

NO_JUDGEMENT = {"digit_like": None, "digit_like_score": None, "digit_like_threshold": None}


def outputs_for(model: LoadedModel, judge: DigitJudgeModel | None, layers: Sequence[str] = ()) -> list[str]:
    """What a classification asks of ``model``'s run: the probabilities, the judge's score when the run computes it
    (else dense1, for the judge's numpy path), then each of ``layers`` not already asked for."""
    if judge is None:
        judged = [PROBABILITIES]
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

    def answers(self) -> list[dict]:
        """Per digit, in input order: ``digit``, ``probabilities``, ``digit_like``, ``digit_like_score`` and
        ``digit_like_threshold`` (the judge's three null without a judge), as plain values ready for JSON."""
        rows = self.outputs[PROBABILITIES].tolist()
        judged = self._judged()
        return [{"digit": row.index(max(row)), "probabilities": row, **fields} for row, fields in zip(rows, judged)]

    def _judged(self) -> list[dict]:
        """The judge's fields per digit; the score from the run's SCORE output when it has one."""
        if self.judge is None:
            return [NO_JUDGEMENT] * len(self.outputs[PROBABILITIES])
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


@overload
def classify(
    model: LoadedModel,
    images: np.ndarray,
    judge: DigitJudgeModel | None,
    layers: Sequence[str] = (),
    *,
    now: Literal[False] = False,
) -> Classification: ...


@overload
def classify(
    model: LoadedModel, images: np.ndarray, judge: DigitJudgeModel | None, layers: Sequence[str] = (), *, now: bool
) -> Classification | None: ...


def classify(
    model: LoadedModel,
    images: np.ndarray,
    judge: DigitJudgeModel | None,
    layers: Sequence[str] = (),
    *,
    now: bool = False,
) -> Classification | None:
    """``model``'s run over ``images`` ((N, 28, 28) or (N, 28, 28, 1) in [0, 1]) asking ``outputs_for(model, judge,
    layers)``; NotApplicable unless ``model`` classifies.

    With ``now``, only if the model runs it at once on the calling thread (``LoadedModel.run_now``: one digit and a
    free inference slot), else None and the caller runs it elsewhere."""
    require_classifier(model)
    names = outputs_for(model, judge, layers)
    outputs = model.run_now(images, names) if now else model.run(images, names)
    return None if outputs is None else Classification(images, outputs, judge)


def answering(model: LoadedModel, judge: DigitJudgeModel | None) -> Callable[[np.ndarray], list[dict]]:
    """What the micro-batcher runs for the stacked digits of its callers: ``classify``'s answers, one per digit."""
    return lambda images: classify(model, images, judge).answers()


def layers_of(model: LoadedModel, images: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """``layers`` of ``model``'s run over ``images`` (and perhaps more): a classifier's from its classification
    without the judge (the run ``/v1/classify`` reads), another model's (the autoencoder) from a run of them alone."""
    if classifies(model):
        return classify(model, images, None, layers).outputs
    return model.run(images, list(layers))
