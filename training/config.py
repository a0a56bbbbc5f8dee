"""What decides a training run, as plain data: importable without TensorFlow (the command line needs it first)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu")
OPTIMIZERS = ("adam", "adadelta", "sgd", "rmsprop")
PRECISIONS = ("float32", "mixed_bfloat16")  # Keras dtype policies of the classifier's hidden layers
DEFAULT_LEARNING_RATES = {"adam": 1e-3, "adadelta": 1.0, "sgd": 0.01, "rmsprop": 1e-3}
SWEEP_OPTIMIZERS = ("adadelta", "adam", "sgd", "rmsprop")
SWEEP_EPOCHS = 3  # 16 variants x 3 full-data epochs: about 35 minutes on 2 cores


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
