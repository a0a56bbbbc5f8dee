"""``python -m training analyze --model NAME --images DIR [--shard I/N]`` and ``python -m training merge PARTS...``.

The streamed, sharded, resumable dataset analyses (``service.studies.dataset_pass``) of a served model (the
shipped classifier, a variant or an imported model) over a dataset on disk (``service.images.datasets``), written
through ``service.contract`` in the format the service reads, by default into the model's own folder:
``statistics.json`` (``unlabelled_statistics.json`` for a dataset without labels), ``top_images.npz`` and, unless
``plots`` is off, ``plots/*.png``. A run over the whole dataset writes them at the end; a shard writes its partial
result (``part-I-of-N.npz``) for ``merge``. No TensorFlow is imported on this path.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from service.contract import (
    CLASSIFIER,
    PLOTS_DIR,
    RULES,
    STATISTICS_FILE,
    STATISTICS_FORMAT,
    STATISTICS_NORM,
    TOP_IMAGES_FILE,
    UNLABELLED_STATISTICS_FILE,
    ContractError,
    FileRef,
    Statistics,
    UnlabelledStatistics,
    plot_name,
    read_document,
)
from service.images.datasets import open_dataset
from service.images.decoding import MNIST_SIDE
from service.studies.analysed_models import ImportedClassifier, RegistryClassifier, analysed_model
from service.studies.dataset_analysis import (
    AnalysisMismatch,
    AnalysisState,
    layer_result,
    merge_states,
    state_bytes,
)
from service.studies.dataset_pass import part_name, run_pass
from training.analyze import AnalysisError, _rounded, dumps
from training.data import sha256_of
from training.npz import write_npz

# The most the analysis' states may hold at once, by default (``--max-state-mb``).
MAX_STATE_BYTES = 2 << 30


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` as (I, N); AnalysisError unless 0 <= I < N."""
    try:
        shard, shards = (int(part) for part in text.split("/"))
    except ValueError:
        raise AnalysisError(f"--shard {text!r}: write it as I/N, e.g. 0/4 for the first of four shards") from None
    if not 0 <= shard < shards:
        raise AnalysisError(f"--shard {text}: I must be from 0 to N-1 (shards are numbered from 0)")
    return shard, shards


class _Progress:
    """tqdm on stderr: images done of the shard's, with the rate, the ETA and the images skipped."""

    def __init__(self, description: str, enabled: bool) -> None:
        self.bar = None
        self.description = description
        self.enabled = enabled

    def __call__(self, done: int, total: int, skipped: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = tqdm(total=total, initial=done, unit="img", desc=self.description, file=sys.stderr)
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix(skipped=skipped, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def analyze_images(
    model_dir: Path,
    model_name: str,
    images: Path,
    out_dir: Path | None = None,
    shard: tuple[int, int] = (0, 1),
    batch_size: int = 256,
    plots: bool = True,
    progress: bool = True,
    checkpoint_every: int | None = None,
    threads: int = 0,
    layers: tuple[str, ...] | None = None,
    max_state_bytes: int = MAX_STATE_BYTES,
) -> Path:
    """Analyse ``images`` with the served model ``model_name`` (an imported model at ``layers``, default all) on
    ``threads`` threads (0: one per core); the file written: ``statistics.json`` for a whole run, the shard's
    partial result otherwise. ``out_dir`` defaults to the model's own folder. AnalysisError before any image is
    read when the run's states (``threads`` + 1 of them, ``state_bytes``) could exceed ``max_state_bytes``."""
    try:
        model = analysed_model(model_dir, model_name, layers)
        dataset = open_dataset(images, model.labels)
    except (LookupError, ValueError, RuntimeError) as exc:
        raise AnalysisError(str(exc)) from exc
    threads = threads or len(os.sched_getaffinity(0))
    _check_memory(model, dataset.labels is not None, threads, max_state_bytes)
    out_dir = Path(out_dir or model.folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / part_name(*shard)
    bar = _Progress(f"analyze {model_name} shard {shard[0]}/{shard[1]}", progress)
    started = time.perf_counter()
    try:
        state = run_pass(
            model, dataset, path, *shard, batch_size, progress=bar, threads=threads, **_every(checkpoint_every)
        )
    except AnalysisMismatch as exc:
        raise AnalysisError(str(exc)) from exc
    finally:
        bar.close()
    if progress:
        print(
            f"{state.images:,} images analysed, {state.skipped:,} skipped (unreadable) in "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    if shard[1] > 1:
        print(f"wrote {path}")
        return path
    written = write_statistics(state, model, images, out_dir, plots, progress)
    path.unlink()
    return written


def add_imported_quality(
    model_dir: Path,
    model_name: str,
    images: Path,
    out_dir: Path | None = None,
    plots: bool = True,
    progress: bool = True,
) -> Path:
    """``analyze --images DIR --model NAME --only quality``: the explanation-quality table of the imported model
    ``model_name`` over the seeded sample (``quality_sample``) of the dataset's items, merged into the model's
    existing ``statistics.json`` in ``out_dir`` (default: the model's folder), which must describe that model;
    with ``plots``, its figure drawn and listed. Items that cannot be read or prepared are left out of the sample.
    Every other section and file is kept as it is."""
    from training import plots as figures  # matplotlib only when this runs
    from training import quality_table as quality_

    try:
        model = analysed_model(model_dir, model_name)
        dataset = open_dataset(images, model.labels)
    except (LookupError, ValueError, RuntimeError) as exc:
        raise AnalysisError(str(exc)) from exc
    if not isinstance(model, ImportedClassifier):
        raise AnalysisError(
            f"--only quality with --images measures an imported model; {model_name!r} is not one: run "
            "`python -m training analyze --only quality` over --data-dir"
        )
    out_dir = Path(out_dir or model.folder)
    path = out_dir / STATISTICS_FILE
    if not path.is_file():
        raise AnalysisError(f"{path} does not exist: run the whole `python -m training analyze --images` first")
    try:
        document = read_document(path, Statistics)
    except ContractError as exc:
        raise AnalysisError(str(exc)) from exc
    if document.model_sha256 != model.sha256:
        raise AnalysisError(
            f"{path} describes another model (SHA-256 {document.model_sha256[:12]}…, {model_name!r}'s: "
            f"{model.sha256[:12]}…): run the whole `python -m training analyze --images`"
        )
    started = time.perf_counter()
    indices, inputs = [], []
    for index in quality_.quality_sample(dataset.count):
        item = dataset.read(int(index))
        try:
            prepared = None if item is None else model.preprocess(item)
        except ValueError:
            prepared = None
        if prepared is not None:
            indices.append(int(index))
            inputs.append(prepared)
    table = quality_.imported_quality_table(model.model, np.stack(inputs), np.array(indices), progress=progress)
    document = Statistics.model_validate({**document.model_dump(), **_rounded({"explanation_quality": table})})
    if plots:
        name = plot_name("explanation-quality")
        figure = figures.save(
            figures.quality_figure(document.explanation_quality, document.split), out_dir / PLOTS_DIR / f"{name}.png"
        )
        document.plots = {**document.plots, name: FileRef(file=f"{PLOTS_DIR}/{figure.name}", sha256=sha256_of(figure))}
    path.write_text(dumps(document.model_dump()) + "\n")
    if progress:
        print(
            f"explanation quality of {len(indices)} items in {time.perf_counter() - started:.1f} s; merged into {path}"
        )
    return path


def _check_memory(
    model: RegistryClassifier | ImportedClassifier, labelled: bool, threads: int, max_state_bytes: int
) -> None:
    """AnalysisError naming the remedies when ``threads`` + 1 states of ``model`` could exceed the bound."""
    groups = len(model.labels) if labelled else 1
    if isinstance(model, ImportedClassifier):
        spec = model.model.manifest.input
        picture = spec.height * spec.width * spec.channels
    else:
        picture = MNIST_SIDE * MNIST_SIDE
    needed = (threads + 1) * state_bytes(model.spatial_layers, groups, picture)
    if needed > max_state_bytes:
        raise AnalysisError(
            f"analysing {len(model.spatial_layers)} layers ({sum(model.spatial_layers.values()):,} channels) over "
            f"{groups} classes on {threads} threads may hold {needed / 2**20:,.0f} MB, above --max-state-mb "
            f"{max_state_bytes / 2**20:,.0f}: choose fewer layers (--layers), fewer --threads, or raise the bound"
        )


def _every(checkpoint_every: int | None) -> dict:
    return {} if checkpoint_every is None else {"checkpoint_every": checkpoint_every}


def merge_parts(
    parts: list[Path], model_dir: Path, out_dir: Path, images_name: str | None = None, plots: bool = True
) -> Path:
    """Merge the partial results of every shard of one split and write the statistics into ``out_dir``."""
    try:
        states = [AnalysisState.load(Path(part)) for part in parts]
        merged = merge_states(states)
        model = analysed_model(model_dir, merged.model)
    except (AnalysisMismatch, LookupError, RuntimeError) as exc:
        raise AnalysisError(str(exc)) from exc
    if merged.model_sha256 != model.sha256:
        raise AnalysisError(f"the parts were computed with another {merged.model} than the one in {model_dir}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_statistics(merged, model, Path(images_name or "images"), out_dir, plots, progress=False)


def write_statistics(
    state: AnalysisState,
    model: RegistryClassifier | ImportedClassifier,
    images: Path,
    out_dir: Path,
    plots: bool,
    progress: bool,
) -> Path:
    """``statistics.json`` and ``top_images.npz`` (and the plots) of a complete state, into ``out_dir``; for
    unlabelled images, whose results have no per-class part, ``UNLABELLED_STATISTICS_FILE`` and ``top_images.npz``
    (and the layer-wide plots). An imported model's statistics name it and have no per-class plots (its classes
    may be many: their JSON answers), nor a confusion matrix or training history."""
    if state.images == 0:
        raise AnalysisError(f"no image of {images} could be read ({state.skipped} skipped)")
    layers = {name: layer_result(layer, state.group_counts, state.labelled) for name, layer in state.layers.items()}
    kept = sorted(state.pictures)
    top_path = out_dir / TOP_IMAGES_FILE
    write_npz(
        top_path,
        indices=np.array(kept, np.int32),
        images=np.stack([state.pictures[i] for i in kept]),
    )
    imported = isinstance(model, ImportedClassifier)
    common = {
        "format": STATISTICS_FORMAT,
        "model": model.name if imported else CLASSIFIER,
        "model_sha256": state.model_sha256,
        "split": Path(images).name,
        "images": state.images,
        "data_sha256": {"listing": state.dataset},
        "norm": STATISTICS_NORM,
        "layers": layers,
        "top_images": {"file": TOP_IMAGES_FILE, "sha256": sha256_of(top_path)},
        "plots": {},
    }
    if state.labelled:
        extra = {"accuracy": state.correct / state.images, "label_counts": state.group_counts, "rules": list(RULES)}
        document = Statistics.model_validate(_rounded({**common, **extra}))
        path = out_dir / STATISTICS_FILE
    else:
        document = UnlabelledStatistics.model_validate(_rounded({**common, "skipped": state.skipped}))
        path = out_dir / UNLABELLED_STATISTICS_FILE
    if plots:
        from training import plots as figures  # matplotlib only when this runs

        manifest = None if imported else model.registry.manifest
        written = figures.statistics_plots(document, manifest, out_dir / PLOTS_DIR, progress=progress)
        document.plots = {
            name: FileRef(file=f"{PLOTS_DIR}/{path.name}", sha256=sha256_of(path)) for name, path in written.items()
        }
    path.write_text(dumps(document.model_dump()) + "\n")
    print(f"wrote {path} and {top_path}" + (f" and {len(document.plots)} plots" if plots else ""))
    return path
