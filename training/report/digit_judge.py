"""The "is this a digit?" judge on font-rendered letters, with the ROC AUC of every score it tried."""

from __future__ import annotations

import numpy as np

from service.studies.digit_judge import OUTPUTS
from training import nondigits, plots
from training.report.folder import FigureFolder
from training.report.sources import Sources


def judge_figure(sources: Sources, folder: FigureFolder) -> None:
    """40 letters drawn at random through the judge, the flagged ones framed; nothing without a judge."""
    judge, section = sources.stats.judge, sources.stats.data.digit_judge
    if judge is None or section is None:
        return
    letters, names = nondigits.letters()
    pick = np.sort(np.random.default_rng(0).choice(len(letters), min(40, len(letters)), replace=False))
    pick = pick[np.argsort([names[i] for i in pick], kind="stable")]
    shown, shown_names = letters[pick], [names[i] for i in pick]
    flagged = judge.scores(shown, sources.classifier.run(shown, list(OUTPUTS))) > judge.threshold
    rows = "\n".join(f"| {name} | {auc:.4f} |" for name, auc in sorted(section.auc.items(), key=lambda kv: -kv[1]))
    folder.add(
        plots.image_grid(
            list(shown),
            [f"{name}: {'flagged' if f else 'passed'}" for name, f in zip(shown_names, flagged)],
            columns=10,
            highlight=list(flagged),
            title="40 font-rendered letters (at random) through preprocess=mnist; red: judged not digit-like",
        ),
        "digit-judge-letters.png",
        "Is this a digit? (beyond the paper)",
        f"The judge ({section.method}) flags {100 * section.flagged_digits:.1f} % of the "
        f"{sources.stats.data.images:,} test digits (threshold calibrated at {100 * section.target_rate:g} %), "
        f"{100 * section.flagged_letters:.1f} % of {section.letters} capital letters that resemble no digit "
        f"(rendered from fonts at several sizes and angles) and {100 * section.flagged_noise:.1f} % of "
        f"{section.noise} uniform-noise images. ROC AUC of every score tried, letters and noise against the "
        "test digits:\n\n| score | ROC AUC |\n|---|---:|\n" + rows,
    )
