"""What decides a training run, as plain data: importable without TensorFlow (the command line needs it first)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import product

ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu")
OPTIMIZERS = ("adam", "adadelta", "sgd", "rmsprop")
PRECISIONS = ("float32", "mixed_bfloat16")  # Keras dtype policies of the classifier's hidden layers
DEFAULT_LEARNING_RATES = {"adam": 1e-3, "adadelta": 1.0, "sgd": 0.01, "rmsprop": 1e-3}
SWEEP_OPTIMIZERS = ("adadelta", "adam", "sgd", "rmsprop")
SWEEP_EPOCHS = 5  # the default budget of every variant (the paper trained 12)
# Every variant of the sweep, by index: activations outer, optimizers inner (``python -m training variants``; the
# Kubernetes Indexed Job trains index JOB_COMPLETION_INDEX).
VARIANTS = tuple(product(ACTIVATIONS, SWEEP_OPTIMIZERS))


class VariantError(ValueError):
    """An unknown variant name or an index out of range; the one-line message lists the valid ones."""


def variant_name(activation: str, optimizer: str) -> str:
    """The variant's folder and served model name, e.g. ``tanh-sgd``."""
    return f"{activation}-{optimizer}"


VARIANT_NAMES = tuple(variant_name(*variant) for variant in VARIANTS)


def resolve_variant(spec: str | int) -> tuple[str, str]:
    """(activation, optimizer) of a variant given by index (``0``-``15``) or name (``relu-adam``)."""
    text = str(spec).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if 0 <= index < len(VARIANTS):
            return VARIANTS[index]
        raise VariantError(f"variant index {index} out of range: choose 0-{len(VARIANTS) - 1} ({_valid()})")
    if text in VARIANT_NAMES:
        return VARIANTS[VARIANT_NAMES.index(text)]
    raise VariantError(f"unknown variant {text!r}: choose an index or a name ({_valid()})")


def _valid() -> str:
    return ", ".join(f"{index} {name}" for index, name in enumerate(VARIANT_NAMES))


def variant_table() -> str:
    """Index, name, activation, optimizer and learning rate of every variant, one line each, with a header."""
    lines = [f"{'index':>5}  {'variant':<17} {'activation':<10} {'optimizer':<9} learning rate"]
    for index, (activation, optimizer) in enumerate(VARIANTS):
        name = variant_name(activation, optimizer)
        lines.append(f"{index:>5}  {name:<17} {activation:<10} {optimizer:<9} {DEFAULT_LEARNING_RATES[optimizer]:g}")
    return "\n".join(lines)


@dataclass
class TrainConfig:
    """Everything that decides a training run; recorded verbatim in the manifest."""

    epochs: int = 15
    batch_size: int = 128
    activation: str = "relu"
    optimizer: str = "adam"
    learning_rate: float | None = None
    schedule: str = "cosine"
    shift: int = 2
    precision: str = "float32"
    jit_compile: bool = False
    autoencoder_epochs: int = 10
    seed: int = 42
    train_limit: int | None = None
    test_limit: int | None = None
    extra: dict = field(default_factory=dict)

    def resolved_learning_rate(self) -> float:
        """The configured rate, else the optimizer's customary one (Adadelta's is 1.0, as in the paper's Keras)."""
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATES[self.optimizer]

    def as_dict(self) -> dict:
        """Plain-JSON form, with the learning rate resolved."""
        return {**asdict(self), "learning_rate": self.resolved_learning_rate()}
