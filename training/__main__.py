"""Command line: ``python -m training train | sweep | variants | train-variant | collect | download | analyze | merge |
report`` (the ``convlens-train`` script)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from training.config import (
    ACTIVATIONS,
    OPTIMIZERS,
    PRECISIONS,
    SWEEP_EPOCHS,
    SWEEP_OPTIMIZERS,
    VARIANTS,
    TrainConfig,
    VariantError,
    resolve_variant,
    variant_table,
)
from training.data import DEFAULT_MIRROR, MnistError, resolve_data_dir

DATA_DIR_HELP = "folder with the four MNIST IDX files (default: $MNIST_DIR)"
INDEX_VARIABLE = "JOB_COMPLETION_INDEX"  # set by a Kubernetes Indexed Job in each of its pods


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description="convlens offline training")
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = TrainConfig()

    train = commands.add_parser("train", help="train both networks on MNIST and export them to ONNX")
    _data_dir_argument(train)
    train.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where the ONNX files and manifest go (default: models, or a new scratch folder with a limit)",
    )
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--activation", choices=ACTIVATIONS, default=defaults.activation)
    train.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default=defaults.optimizer,
        help="adadelta is the paper's (use --learning-rate 1.0 --schedule constant for its recipe)",
    )
    train.add_argument("--learning-rate", type=float, default=None, help="default: the optimizer's customary rate")
    train.add_argument("--schedule", choices=("cosine", "constant"), default=defaults.schedule)
    train.add_argument("--shift", type=int, default=defaults.shift, help="random shift augmentation in pixels (0: off)")
    train.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=defaults.precision,
        help="the classifier's hidden layers compute in this; the export is float32 either way",
    )
    train.add_argument(
        "--xla",
        action=argparse.BooleanOptionalAction,
        default=defaults.jit_compile,
        help="compile the classifier's training step with XLA",
    )
    train.add_argument("--autoencoder-epochs", type=int, default=defaults.autoencoder_epochs)
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    train.add_argument("--test-limit", type=int, default=None, help="use only the first N test images")
    train.add_argument(
        "--only",
        choices=("classifier", "autoencoder"),
        default=None,
        help="retrain this model only; the other keeps its file and manifest entry from --out-dir",
    )

    sweep = commands.add_parser(
        "sweep", help="train the classifier under every activation x optimizer and compare them (models/variants/)"
    )
    _data_dir_argument(sweep)
    sweep.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="one folder per variant, plus comparison.json and comparison.md, replaced as a whole at the end "
        "(default: models/variants for the full sweep, a new scratch folder for a small run)",
    )
    sweep.add_argument(
        "--activations",
        nargs="+",
        action=_Names,
        choices=ACTIVATIONS,
        default=ACTIVATIONS,
        help=f"comma- or space-separated (default: {','.join(ACTIVATIONS)})",
    )
    sweep.add_argument(
        "--optimizers",
        nargs="+",
        action=_Names,
        choices=OPTIMIZERS,
        default=SWEEP_OPTIMIZERS,
        help=f"comma- or space-separated (default: {','.join(SWEEP_OPTIMIZERS)}); each at its customary "
        "learning rate, constant schedule, no shift augmentation",
    )
    sweep.add_argument("--epochs", type=int, default=SWEEP_EPOCHS, help="the same budget for every variant")
    sweep.add_argument("--batch-size", type=int, default=defaults.batch_size)
    sweep.add_argument("--seed", type=int, default=defaults.seed)
    sweep.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    sweep.add_argument("--test-limit", type=int, default=None, help="use only the first N test images")

    commands.add_parser(
        "variants",
        help="list the sweep's variants by index (activations outer, optimizers inner), as train-variant takes them",
    )

    one = commands.add_parser(
        "train-variant",
        help="train one variant of the sweep (by index or name) into a shared folder, for collect to compare",
    )
    one.add_argument(
        "variant",
        nargs="?",
        default=None,
        help=f"an index 0-{len(VARIANTS) - 1} or a name such as relu-adam (python -m training variants lists "
        f"them; default: ${INDEX_VARIABLE}, as a Kubernetes Indexed Job sets it)",
    )
    _data_dir_argument(one)
    one.add_argument(
        "--out-dir",
        type=Path,
        required=True,
        help="the shared folder: the variant appears in it as <activation>-<optimizer>/ once complete "
        "(never models/variants: only a full sweep or collect of a full set writes there)",
    )
    one.add_argument("--epochs", type=int, default=SWEEP_EPOCHS, help="the budget; the same for every variant")
    one.add_argument("--batch-size", type=int, default=defaults.batch_size)
    one.add_argument("--seed", type=int, default=defaults.seed)
    one.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    one.add_argument("--test-limit", type=int, default=None, help="use only the first N test images")

    collect = commands.add_parser(
        "collect",
        help="compare the complete variants of a folder (comparison.json, comparison.md), naming the missing ones",
    )
    collect.add_argument("source", type=Path, help="the folder the variants were trained into")
    collect.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where the comparison and copies of the complete variants go, replaced as a whole (default: the "
        "source folder, in place); models/variants only for a full set of variants on the full data",
    )

    download = commands.add_parser("download", help="fetch the MNIST files and verify their checksums")
    _data_dir_argument(download, "folder to write the files to (default: $MNIST_DIR)")
    download.add_argument("--mirror", default=DEFAULT_MIRROR)

    analyze = commands.add_parser(
        "analyze",
        help="dataset statistics of the exported classifier: statistics.json, "
        "top_images.npz and plots/ beside the models",
    )
    _data_dir_argument(analyze)
    analyze.add_argument("--model-dir", type=Path, default=Path("models"), help="folder with manifest.json")
    analyze.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where to write (default: --model-dir; a scratch folder with --limit)",
    )
    analyze.add_argument("--split", choices=("test", "train"), default="test")
    analyze.add_argument("--limit", type=int, default=None, help="analyse only the first N images of the split")
    analyze.add_argument("--batch-size", type=int, default=500)
    analyze.add_argument(
        "--no-plots",
        action="store_true",
        help="skip drawing the PNG plots and the studies (invariance, optimized inputs, digit judge, attribution)",
    )
    analyze.add_argument(
        "--images",
        type=Path,
        default=None,
        metavar="DIR",
        help="analyse this dataset instead of MNIST, streamed: one subfolder per class named after the model's "
        "labels, a flat folder of images, or .npy shards with labels.npy (docs/own-dataset.md)",
    )
    analyze.add_argument(
        "--model",
        default="classifier",
        help="with --images: the served model to analyse: classifier, a variant's name or an imported model's "
        "(models/imported/NAME; its statistics go beside it) (default: classifier)",
    )
    analyze.add_argument(
        "--layers",
        type=lambda text: tuple(part for part in text.split(",") if part),
        default=None,
        metavar="A,B,...",
        help="with --images and an imported model: analyse only these layers (default: every layer with feature "
        "maps or units)",
    )
    analyze.add_argument(
        "--max-state-mb",
        type=int,
        default=2048,
        help="with --images: refuse a run whose accumulators (one per thread and one more) could exceed this "
        "many MiB (default 2048); docs/own-dataset.md gives the formula",
    )
    analyze.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="with --images: analyse shard I of N (items I, I+N, ...) into <out-dir>/part-I-of-N.npz, for merge; "
        f"I defaults to ${INDEX_VARIABLE} when only /N is given",
    )
    analyze.add_argument(
        "--threads",
        type=int,
        default=0,
        help="with --images: threads running the model, one onnxruntime thread each (default 0: one per core)",
    )
    analyze.add_argument(
        "--only",
        choices=("attribution", "quality"),
        default=None,
        help="compute only this study and merge it into the existing statistics.json (e.g. for a variant: "
        "--model-dir models/variants/relu-adam --only attribution); every other section is kept. attribution: the "
        "deletion and insertion curves and the explanation-quality table; quality: the table alone (with --images: "
        "an imported model's table, merged into the statistics.json of its dataset analysis)",
    )

    merge = commands.add_parser(
        "merge", help="merge the partial results of every shard of `analyze --images ... --shard I/N`"
    )
    merge.add_argument("parts", nargs="+", type=Path, help="the part-I-of-N.npz files, in any order")
    merge.add_argument("--out-dir", type=Path, required=True, help="where statistics.json and its files go")
    merge.add_argument("--model-dir", type=Path, default=Path("models"), help="folder with manifest.json")
    merge.add_argument("--images", type=Path, default=None, metavar="DIR", help="the dataset (its name is recorded)")
    merge.add_argument("--no-plots", action="store_true", help="skip drawing the PNG plots")

    report = commands.add_parser(
        "report", help="the paper's figures from the shipped models and statistics, as reports/paper/README.md"
    )
    _data_dir_argument(report)
    report.add_argument("--model-dir", type=Path, default=Path("models"), help="models and statistics.json")
    report.add_argument("--out-dir", type=Path, default=Path("reports/paper"))
    report.add_argument("--top-filters", type=int, default=6, help="filters per layer in the top-9 figures")
    return parser


def _data_dir_argument(command: argparse.ArgumentParser, help: str = DATA_DIR_HELP) -> None:
    """``--data-dir DIR``; a bare ``--data-dir`` (``--data-dir $MNIST_DIR`` with the variable unset) counts as absent,
    so that ``main`` says to pass a folder or set ``MNIST_DIR`` instead of argparse's "expected one argument"."""
    command.add_argument("--data-dir", nargs="?", default=None, metavar="DIR", help=help)


class _Names(argparse.Action):
    """Names from ``choices``, comma- or space-separated (``relu,tanh`` and ``relu tanh`` alike), as a tuple."""

    def __init__(self, option_strings: list[str], dest: str, choices: tuple[str, ...], **kwargs) -> None:
        super().__init__(option_strings, dest, **kwargs)  # choices are checked here, after splitting at commas
        self.allowed = choices

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        names = tuple(name.strip() for value in values for name in value.split(",") if name.strip())
        if not names or any(name not in self.allowed for name in names):
            parser.error(f"{option_string}: choose from {', '.join(self.allowed)}, got {' '.join(values)!r}")
        setattr(namespace, self.dest, names)


def _default_out_dir(args: argparse.Namespace) -> Path | None:
    """Where a command writes without ``--out-dir``: the shipped folder for a full run; a new scratch folder (said on
    stdout) for a small one, a slice of the data or a subset of the variants, so that it never replaces shipped
    results; ``None`` for ``analyze`` of the whole split (it writes beside the model it reads)."""
    limited = getattr(args, "train_limit", None) is not None or getattr(args, "test_limit", None) is not None
    if args.command == "sweep":
        every_variant = set(args.activations) == set(ACTIVATIONS) and set(args.optimizers) == set(SWEEP_OPTIMIZERS)
        if not limited and every_variant:
            return Path("models/variants")
        return _scratch("a small run (a data limit or a subset of the variants)", "models/variants") / "variants"
    if args.command == "train":
        return _scratch("a run on a slice of the data", "models") if limited else Path("models")
    if args.command == "analyze" and args.limit:
        return _scratch("an analysis of a slice of the data", str(args.model_dir))
    return None


def _scratch(why: str, shipped: str) -> Path:
    """A new folder under the system's temporary directory, for a run that must not replace ``shipped``."""
    folder = Path(tempfile.mkdtemp(prefix="convlens-"))
    print(f"{why}: writing to {folder}, not {shipped} (choose the folder with --out-dir)", flush=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    """Run one command; data problems end with a one-line message and exit status 2."""
    args = _parser().parse_args(argv)
    if args.command == "variants":
        print(variant_table())
        return 0
    if args.command == "collect":
        return _collect_command(args)
    if args.command == "merge" or (args.command == "analyze" and args.images is not None):
        return _streamed_command(args)
    try:
        if args.command == "train-variant":
            args.variant = _chosen_variant(args.variant)
            _refuse_shipped(args.out_dir)
        args.data_dir = resolve_data_dir(args.data_dir)  # before TensorFlow loads: a missing folder is said at once
        if "out_dir" in args and args.out_dir is None:
            args.out_dir = _default_out_dir(args)
        if args.command == "download":
            from training.data import download

            for path in download(args.data_dir, args.mirror):
                print(f"ok {path}")
            return 0
        if args.command in ("analyze", "report"):
            return _statistics_command(args)
        if args.command == "train-variant":
            return _train_variant_command(args)
        if args.command == "sweep":
            from training.sweep import sweep

            sweep(
                args.data_dir,
                args.out_dir,
                args.activations,
                args.optimizers,
                args.epochs,
                args.batch_size,
                args.seed,
                args.train_limit,
                args.test_limit,
            )
            return 0
        from training.pipeline import PipelineError, train_and_export

        config = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            activation=args.activation,
            optimizer=args.optimizer,
            learning_rate=args.learning_rate,
            schedule=args.schedule,
            shift=args.shift,
            precision=args.precision,
            jit_compile=args.xla,
            autoencoder_epochs=args.autoencoder_epochs,
            seed=args.seed,
            train_limit=args.train_limit,
            test_limit=args.test_limit,
        )
        try:
            manifest = train_and_export(args.data_dir, args.out_dir, config, args.only)
        except PipelineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {manifest}")
        return 0
    except (MnistError, VariantError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _chosen_variant(given: str | None) -> tuple[str, str]:
    """(activation, optimizer) named on the command line, else by ``$JOB_COMPLETION_INDEX``; VariantError if neither."""
    if given is None:
        given = os.environ.get(INDEX_VARIABLE)
        if given is None:
            raise VariantError(
                f"name the variant (an index 0-{len(VARIANTS) - 1} or a name; python -m training variants lists "
                f"them) or set {INDEX_VARIABLE}"
            )
    return resolve_variant(given)


def _refuse_shipped(out_dir: Path) -> None:
    """VariantError when ``out_dir`` is the shipped ``models/variants``: one variant never writes there."""
    from training.collect import SHIPPED, is_shipped

    if is_shipped(out_dir):
        raise VariantError(
            f"not training one variant into the shipped {SHIPPED}: only a full sweep, or collect of a full set, "
            "writes there; train into another folder, then collect"
        )


def _train_variant_command(args: argparse.Namespace) -> int:
    """``train-variant``: one variant into the shared folder, never into the shipped one."""
    from training.pipeline import load_data
    from training.sweep import sweep_config, train_variant

    base = sweep_config(args.epochs, args.batch_size, args.seed, args.train_limit, args.test_limit)
    index = VARIANTS.index(args.variant)
    train_variant(load_data(args.data_dir, base), args.data_dir, args.out_dir, base, *args.variant, f"[{index}]")
    return 0


def _collect_command(args: argparse.Namespace) -> int:
    """``collect``: the comparison of the complete variants; what cannot be done ends with one line and status 2."""
    from training.collect import CollectError, collect

    try:
        collect(args.source, args.out_dir)
    except CollectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _streamed_command(args: argparse.Namespace) -> int:
    """``analyze --images`` or ``merge`` (``training.stream_analysis``, no TensorFlow); what cannot be done ends with
    one line and status 2."""
    from training.analyze import AnalysisError
    from training.stream_analysis import add_imported_quality, analyze_images, merge_parts, parse_shard

    try:
        if args.command == "merge":
            merge_parts(args.parts, args.model_dir, args.out_dir, args.images, plots=not args.no_plots)
            return 0
        if args.only == "attribution":
            raise AnalysisError(
                "--only attribution with --images: an imported model's dataset analysis has no deletion curves; "
                "--only quality adds its explanation-quality table"
            )
        if args.only == "quality":
            add_imported_quality(args.model_dir, args.model, args.images, args.out_dir, plots=not args.no_plots)
            return 0
        shard = (0, 1)
        if args.shard is not None:
            given = args.shard
            if given.startswith("/"):
                given = f"{os.environ.get(INDEX_VARIABLE, '')}{given}"
            shard = parse_shard(given)
        analyze_images(
            args.model_dir,
            args.model,
            args.images,
            args.out_dir,
            shard,
            args.batch_size,
            plots=not args.no_plots,
            threads=args.threads,
            layers=args.layers,
            max_state_bytes=args.max_state_mb << 20,
        )
        return 0
    except AnalysisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _statistics_command(args: argparse.Namespace) -> int:
    """``analyze`` or ``report``; a missing model, statistics file or digit ends with one line and status 2."""
    from training.analyze import AnalysisError, analyze

    try:
        if args.command == "analyze" and args.only in ("attribution", "quality"):
            from training.analyze import add_attribution

            add_attribution(
                args.model_dir,
                args.data_dir,
                args.out_dir,
                split=args.split,
                limit=args.limit,
                plots=not args.no_plots,
                curves=args.only == "attribution",
            )
        elif args.command == "analyze":
            analyze(
                args.model_dir,
                args.data_dir,
                args.out_dir,
                split=args.split,
                limit=args.limit,
                batch_size=args.batch_size,
                plots=not args.no_plots,
            )
        else:
            from training.report import write_report

            print(f"wrote {write_report(args.model_dir, args.data_dir, args.out_dir, args.top_filters)}")
        return 0
    except AnalysisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
