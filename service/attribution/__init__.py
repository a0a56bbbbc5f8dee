"""Attribution maps of the classifier's decisions, in plain numpy over onnxruntime's forward activations."""

from service.attribution.backward import GuidedBackpropNeedsRelu
from service.attribution.weights import ClassifierWeights, classifier_weights

__all__ = ["ClassifierWeights", "GuidedBackpropNeedsRelu", "classifier_weights"]
