"""The network itself: its training curves, confusion matrix, first-layer weights, and the table of its layers."""

from __future__ import annotations

import numpy as np

from service.runtime.registry import LoadedModel
from training import plots
from training.report.folder import FigureFolder
from training.report.sources import Sources


def training_curves(sources: Sources, folder: FigureFolder) -> None:
    """The classifier's loss and accuracy per epoch, from its manifest (paper, figure 6)."""
    entry = sources.classifier.entry
    folder.add(
        plots.training_history(entry.history, "classifier", entry.training),
        "training-curves.png",
        "Training curves (paper, figure 6)",
        "Loss and accuracy of the classifier after every epoch, on the training batches (with dropout "
        "and shift augmentation) and on the 10,000 test images; recorded by `python -m training train` "
        "in `models/manifest.json`.",
    )


def confusion(sources: Sources, folder: FigureFolder) -> None:
    """The test set's confusion matrix from the manifest's metrics (paper, figure 7)."""
    metrics = sources.classifier.entry.metrics
    folder.add(
        plots.confusion_matrix(metrics["confusion_matrix"], metrics["test_accuracy"]),
        "confusion-matrix.png",
        "Confusion matrix (paper, figure 7)",
        "Rows: true digit, columns: the digit the exported ONNX classifier predicts (arg-max of its "
        "softmax) for the 10,000 test images; colour on a log scale so that single mistakes show.",
    )


def conv1_weights(sources: Sources, folder: FigureFolder) -> None:
    """The 32 conv1 kernels on one symmetric colour scale."""
    kernels = np.moveaxis(sources.classifier.kernels["conv1"][:, :, 0, :], -1, 0)
    bound = float(np.abs(kernels).max())
    fig = plots.Figure(figsize=(7.4, 4.0), layout="constrained")
    axes = fig.subplots(4, 8)
    for k, ax in enumerate(axes.ravel()):
        shown = ax.imshow(kernels[k], cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(str(k), fontsize=8, pad=2)
    fig.colorbar(shown, ax=axes, label="weight", shrink=0.8)
    fig.suptitle("conv1: the 32 learned 3x3 kernels (one colour scale)", fontsize=10)
    folder.add(
        fig,
        "conv1-weights.png",
        "conv1 weights (beyond the paper)",
        "The 32 3x3 kernels of conv1 as read from the ONNX file (`GET /v1/filters/conv1/weights`), on one "
        "symmetric colour scale: red weights add the pixel, blue ones subtract it.",
    )


def summary_tables(classifier: LoadedModel) -> str:
    """The classifier's layers with their output shapes and parameters, its training recipe and test accuracy."""
    entry = classifier.entry
    lines = ["| layer | type | output shape | parameters |", "|---|---|---|---:|"]
    for layer in entry.layers:
        lines.append(f"| {layer.name} | {layer.type} | {'x'.join(map(str, layer.output_shape))} | {layer.params:,} |")
    lines.append(f"| **total** | | | **{entry.total_params:,}** |")
    training, metrics = entry.training, entry.metrics
    recipe = (
        f"{training['epochs']} epochs, {training['optimizer']} (learning rate {training['learning_rate']}, "
        f"{training['schedule']} schedule), batch {training['batch_size']}, random shifts of up to "
        f"{training['shift']} px, {training['train_images']:,} training images"
    )
    lines += [
        "",
        f"Trained with {recipe}. Test accuracy **{100 * metrics['test_accuracy']:.2f} %** "
        f"(loss {metrics['test_loss']:.4f}) on {metrics['test_images']:,} test images.",
    ]
    return "\n".join(lines)
