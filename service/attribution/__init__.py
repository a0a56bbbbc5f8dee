"""Attribution maps of the classifier's decisions, in plain numpy over onnxruntime's forward activations."""

from service.attribution.weights import ClassifierWeights, classifier_weights

__all__ = ["ClassifierWeights", "classifier_weights"]
