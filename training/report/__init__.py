"""``python -m training report``: the paper's figures reproduced from the shipped models, as a Markdown report.

Everything comes from the model folder (manifest, ONNX files, ``statistics.json``, ``top_images.npz``) through
the service's own runtime and math (``service.runtime.registry``, ``service.studies.statistics``,
``service.featuremaps``, ``service.studies.explain``); MNIST is read only for the example digits (the first "3", "7"
and "9" of the test set, one of each digit for the autoencoder, and the first 0, 2, 4, 7 and 9 for the attribution
maps). Writes ``README.md`` and its PNG figures into the output folder.

One module per part of the report, each a function of the ``Sources`` (``sources.py``) that saves its figures into
the ``FigureFolder`` (``folder.py``); ``build.py`` calls them in the README's order and writes the README.
"""

from training.report.build import write_report

__all__ = ["write_report"]
