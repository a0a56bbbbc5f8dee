"""The report's output folder and the figures written into it, in the order the README shows them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from training import plots


@dataclass
class ReportFigure:
    """One figure of the report: its file, title and caption, and the section it belongs to ("" for its own)."""

    file: str
    title: str
    caption: str
    section: str = ""


@dataclass
class FigureFolder:
    """``out_dir`` (made when missing) and every figure saved into it so far."""

    out_dir: Path
    figures: list[ReportFigure] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def add(self, fig: plots.Figure, file: str, title: str, caption: str, section: str = "") -> None:
        """Save ``fig`` as ``file``; it is shown under its own heading, within ``section`` when one is given."""
        plots.save(fig, self.out_dir / file)
        self.figures.append(ReportFigure(file, title, caption, section))

    def add_png(self, data: bytes, file: str, title: str, caption: str, section: str = "") -> None:
        """Write an already drawn PNG as ``file``, listed like a saved figure."""
        (self.out_dir / file).write_bytes(data)
        self.figures.append(ReportFigure(file, title, caption, section))

    def remove_unlisted(self) -> None:
        """Delete the PNG files in the folder that no figure of this report wrote (left from an older report)."""
        written = {figure.file for figure in self.figures}
        for stale in {path.name for path in self.out_dir.glob("*.png")} - written:
            (self.out_dir / stale).unlink()
