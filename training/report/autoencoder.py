"""The autoencoder: one test digit of each class, its code and its reconstruction, and one digit layer by layer."""

from __future__ import annotations

from service.pictures.grids import tile
from training import plots
from training.report.folder import FigureFolder
from training.report.sources import Sources, model_input


def autoencoder_figures(sources: Sources, folder: FigureFolder) -> None:
    """The autoencoder's code and reconstruction of ten digits, and every layer of one "7" (paper,
    figures 15-17); nothing when the model folder has no autoencoder."""
    if sources.autoencoder is None:
        return
    indices = [sources.first[d] for d in range(10)]
    outputs = sources.autoencoder.run(model_input(sources.images[indices]), ["encoded", "decoded"])
    codes = [tile(code, columns=4, channels_last=True) for code in outputs["encoded"]]
    grid = [*sources.images[indices], *codes, *outputs["decoded"][..., 0]]
    fig = plots.image_grid(
        grid,
        columns=10,
        row_labels=["input", "code 4x4x8", "decoded"],
        size=1.05,
        title="Autoencoder: one test digit of each class, its code and its reconstruction",
    )
    folder.add(
        fig,
        "autoencoder.png",
        "Autoencoder: encoder and decoder outputs (paper, figures 15-17)",
        "Top: the first test image of each digit. Middle: the encoder's output, the 4x4x8 code, its 8 "
        "channels side by side (2 rows of 4, each min-max scaled). Bottom: the decoder's reconstruction "
        "(`POST /v1/autoencoder/encode`, `/reconstruct`).",
    )

    layers = [name for name in sources.autoencoder.layer_shapes if "pool" not in name and "up" not in name]
    index = sources.first[7]
    maps = sources.autoencoder.run(model_input(sources.images[index]), layers)
    fig = plots.Figure(figsize=(2.0 * (len(layers) + 1), 2.7), layout="constrained")
    axes = fig.subplots(1, len(layers) + 1)
    axes[0].imshow(sources.images[index], cmap="gray")
    axes[0].set_title("input", fontsize=9)
    for ax, name in zip(axes[1:], layers):
        values = maps[name][0]
        ax.imshow(tile(values, channels_last=True, pad_value=128), cmap="gray", interpolation="nearest")
        ax.set_title(f"{name}\n{'x'.join(map(str, values.shape))}", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Autoencoder feature maps of test image #{index} (a 7), encoder left, decoder right", fontsize=10)
    folder.add(
        fig,
        "autoencoder-layers.png",
        "Autoencoder layer by layer (paper, figures 15-17)",
        'Every convolution of the autoencoder for one "7": each panel tiles all the layer\'s feature maps '
        "(each min-max scaled), from the encoder's 28x28x16 down to the 4x4x8 code and back up to the "
        "28x28 reconstruction.",
    )
