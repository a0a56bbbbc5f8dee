"""How good is an explanation: quality metrics of attribution maps and the sanity checks of Adebayo et al. (2018).

One module per metric, each over callables rather than a model's weights, so that any model that can score images
and explain them can be measured: ``ScoresFn`` (images to (N, classes) scores) and ``ExplainFn`` (images and target
classes to maps shaped like the images); the randomisation test also takes the model's ONNX graph and an
``ExplainerFor`` that makes an ExplainFn of a copy of that graph. ``report`` chooses the metrics a request names,
states their cost before any runs and computes them.
"""
