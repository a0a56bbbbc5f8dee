"""Feature evolution during training (Zeiler and Fergus, figure 4), when the classifier's training recorded it."""

from __future__ import annotations

import numpy as np

from service.contract import SPATIAL_LAYERS
from service.studies.evolution import EvolutionUnavailable, NotRecorded, load_evolution
from training import plots
from training.analyze import AnalysisError
from training.report.folder import FigureFolder
from training.report.sources import Sources

EVOLUTION_FILTERS = 4  # per spatial layer: a dozen in all


def evolution(sources: Sources, folder: FigureFolder, per_layer: int = EVOLUTION_FILTERS) -> None:
    """Zeiler and Fergus' figure 4 for ``per_layer`` filters of each spatial layer (those with the largest mean
    norm), when the classifier's training was recorded."""
    try:
        recorded = load_evolution(sources.model_dir, sources.classifier)
    except NotRecorded:
        return
    except EvolutionUnavailable as exc:
        raise AnalysisError(str(exc)) from exc
    epochs = [int(e) for e in recorded.epochs]
    tiles, titles, rows = [], [], []
    for layer in SPATIAL_LAYERS:
        means = np.asarray(sources.stats.layer(layer).norms["all"]["mean"])
        for k in np.argsort(-means, kind="stable")[:per_layer]:
            history = recorded.of_filter(layer, int(k))
            tiles += list(history.projections)
            titles += [f"#{index}" for index in history.indices]
            rows.append(f"{layer} {k}")
    fig = plots.image_grid(
        tiles,
        titles,
        columns=len(epochs),
        size=1.25,
        row_labels=rows,
        title="Feature evolution during training: each filter's strongest projection after epoch "
        + ", ".join(map(str, epochs)),
    )
    folder.add(
        fig,
        "feature-evolution.png",
        "Feature evolution during training (Zeiler and Fergus, figure 4)",
        f"For the {per_layer} filters of each layer with the largest mean norm (rows), after epochs "
        f"{', '.join(map(str, epochs))} (columns): the first {recorded.subset:,} test images' strongest "
        "activation of the filter (its index above each tile, by the L2 norm of the feature map), projected "
        "to pixels with that epoch's weights. `python -m training train` records them while the classifier "
        "trains (`models/evolution.npz`); any filter: `GET /v1/filters/{layer}/{k}/evolution?format=png`.",
    )
