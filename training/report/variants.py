"""The activation x optimizer comparison of ``python -m training sweep``: its table, the variants' test-accuracy
curves and their conv1 deconvolutions of one digit."""

from __future__ import annotations

import json
from pathlib import Path

from service.contract import CLASSIFIER, COMPARISON_JSON, COMPARISON_MD, MANIFEST_FILE, VARIANTS_DIR
from service.pictures.grids import tile
from service.studies.layers import projection_of_digit
from training import plots
from training.report.folder import FigureFolder
from training.report.sources import Sources, model_input


def variant_history(folder: Path, row: dict) -> list[float]:
    """A variant's validation accuracy per epoch from its manifest (the comparison's copy if it is absent)."""
    path = folder / row["model"] / MANIFEST_FILE
    if path.is_file():
        return json.loads(path.read_text())["models"][CLASSIFIER]["history"]["val_accuracy"]
    return row["val_accuracy"]


def variants(sources: Sources, folder: FigureFolder, digit: int = 7) -> str:
    """The activation x optimizer comparison of ``python -m training sweep``, when its results are there: the
    table, the test-accuracy curves overlaid and, for the variants whose ONNX files are present, the conv1
    deconvolutions of one digit: the section's text ("" without a comparison), its figures saved into ``folder``."""
    variants_dir = sources.model_dir / VARIANTS_DIR
    if not (variants_dir / COMPARISON_JSON).is_file():
        return ""
    comparison = json.loads((variants_dir / COMPARISON_JSON).read_text())
    rows, recipe = comparison["variants"], comparison["recipe"]
    text = (
        f"`python -m training sweep` trained the classifier under {len(rows)} activation x optimizer "
        f"combinations alike: {recipe['epochs']} epoch(s) on {recipe['train_images']:,} training images, batch "
        f"{recipe['batch_size']}, seed {recipe['seed']}, each optimizer at its customary learning rate with a "
        "constant schedule, no shift augmentation. Test metrics on "
        f'{recipe["test_images"]:,} test images from the exported ONNX files; per layer, "active" is the mean '
        'share of filters active per test image by the paper\'s rule, "never active" the filters active in '
        'no test image, "mean norm" the mean L2 norm of its feature maps (`models/variants/comparison.md`).\n\n'
        + (variants_dir / COMPARISON_MD).read_text().strip()
    )
    curves = {row["model"]: variant_history(variants_dir, row) for row in rows}
    folder.add(
        plots.variant_curves(curves, recipe["epochs"]),
        "variants-curves.png",
        "Test accuracy per epoch",
        f"The test (validation) accuracy after every epoch of each of the {len(curves)} variants, from its "
        "manifest's history: one panel per activation, one line per optimizer, each panel on its own scale.",
        VARIANTS_DIR,
    )
    served = [row["model"] for row in rows if row["model"] in sources.registry.models]
    if not served:
        text += (
            "\n\nThe variants' ONNX files are not here (they are not shipped), so their "
            "deconvolutions are not drawn; `python -m training sweep` rebuilds them."
        )
        return text
    index = sources.first[digit]
    names = [CLASSIFIER, *served]
    mosaics = []
    for name in names:
        model = sources.registry.models[name]
        mosaics.append(
            tile(projection_of_digit(model, model_input(sources.images[index]), "conv1"), columns=6, pad_value=128)
        )
    fig = plots.image_grid(
        mosaics,
        names,
        columns=6,
        size=1.8,
        title=f"conv1 deconvolutions of test image #{index} (a {digit}) under each variant",
    )
    folder.add(
        fig,
        "variants-deconv-conv1.png",
        "First-layer deconvolutions of one digit",
        f"The 32 conv1 projections of test image #{index} (`POST /v1/deconvolution/conv1?model=<variant>`; "
        "`POST /v1/compare/deconvolution/conv1/{k}` puts one filter of every variant side by side); "
        '"classifier" is the shipped model. Every tile is min-max scaled on its own.',
        VARIANTS_DIR,
    )
    return text
