"""Command line: ``python -m training train | sweep | download | analyze | report`` (the ``convlens-train`` script)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.config import ACTIVATIONS, OPTIMIZERS, SWEEP_EPOCHS, SWEEP_OPTIMIZERS, TrainConfig
from training.data import DEFAULT_MIRROR, MnistError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description="convlens offline training")
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = TrainConfig()

    train = commands.add_parser("train", help="train both networks on MNIST and export them to ONNX")
    train.add_argument("--data-dir", help="folder with the four MNIST IDX files (default: $MNIST_DIR)")
    train.add_argument("--out-dir", type=Path, default=Path("models"), help="where the ONNX files and manifest go")
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
    train.add_argument("--autoencoder-epochs", type=int, default=defaults.autoencoder_epochs)
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    train.add_argument("--test-limit", type=int, default=None, help="use only the first N test images")

    sweep = commands.add_parser(
        "sweep", help="train the classifier under every activation x optimizer and compare them (models/variants/)"
    )
    sweep.add_argument("--data-dir", help="folder with the four MNIST IDX files (default: $MNIST_DIR)")
    sweep.add_argument(
        "--out-dir",
        type=Path,
        default=Path("models/variants"),
        help="one folder per variant, plus comparison.json and comparison.md",
    )
    sweep.add_argument(
        "--activations",
        type=_names(ACTIVATIONS),
        default=ACTIVATIONS,
        help=f"comma-separated (default: {','.join(ACTIVATIONS)})",
    )
    sweep.add_argument(
        "--optimizers",
        type=_names(OPTIMIZERS),
        default=SWEEP_OPTIMIZERS,
        help=f"comma-separated (default: {','.join(SWEEP_OPTIMIZERS)}); each at its customary "
        "learning rate, constant schedule, no shift augmentation",
    )
    sweep.add_argument("--epochs", type=int, default=SWEEP_EPOCHS, help="the same budget for every variant")
    sweep.add_argument("--batch-size", type=int, default=defaults.batch_size)
    sweep.add_argument("--seed", type=int, default=defaults.seed)
    sweep.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    sweep.add_argument("--test-limit", type=int, default=None, help="use only the first N test images")

    download = commands.add_parser("download", help="fetch the MNIST files and verify their checksums")
    download.add_argument("--data-dir", required=True, help="folder to write the files to")
    download.add_argument("--mirror", default=DEFAULT_MIRROR)

    analyze = commands.add_parser(
        "analyze",
        help="dataset statistics of the exported classifier: statistics.json, "
        "top_images.npz and plots/ beside the models",
    )
    analyze.add_argument("--data-dir", help="folder with the four MNIST IDX files (default: $MNIST_DIR)")
    analyze.add_argument("--model-dir", type=Path, default=Path("models"), help="folder with manifest.json")
    analyze.add_argument("--out-dir", type=Path, default=None, help="where to write (default: --model-dir)")
    analyze.add_argument("--split", choices=("test", "train"), default="test")
    analyze.add_argument("--limit", type=int, default=None, help="analyse only the first N images of the split")
    analyze.add_argument("--batch-size", type=int, default=500)
    analyze.add_argument(
        "--no-plots",
        action="store_true",
        help="skip drawing the PNG plots and the studies (invariance, optimized inputs, digit judge)",
    )

    report = commands.add_parser(
        "report", help="the paper's figures from the shipped models and statistics, as reports/paper/README.md"
    )
    report.add_argument("--data-dir", help="folder with the four MNIST IDX files (default: $MNIST_DIR)")
    report.add_argument("--model-dir", type=Path, default=Path("models"), help="models and statistics.json")
    report.add_argument("--out-dir", type=Path, default=Path("reports/paper"))
    report.add_argument("--top-filters", type=int, default=6, help="filters per layer in the top-9 figures")
    return parser


def _names(allowed: tuple[str, ...]):
    """An argparse type: a comma-separated list of names from ``allowed``."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in text.split(",") if name.strip())
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}, got {text!r}")
        return names

    return parse


def main(argv: list[str] | None = None) -> int:
    """Run one command; data problems end with a one-line message and exit status 2."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "download":
            from training.data import download

            for path in download(args.data_dir, args.mirror):
                print(f"ok {path}")
            return 0
        if args.command in ("analyze", "report"):
            return _statistics_command(args)
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
        from training.pipeline import train_and_export

        config = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            activation=args.activation,
            optimizer=args.optimizer,
            learning_rate=args.learning_rate,
            schedule=args.schedule,
            shift=args.shift,
            autoencoder_epochs=args.autoencoder_epochs,
            seed=args.seed,
            train_limit=args.train_limit,
            test_limit=args.test_limit,
        )
        manifest = train_and_export(args.data_dir, args.out_dir, config)
        print(f"wrote {manifest}")
        return 0
    except MnistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _statistics_command(args: argparse.Namespace) -> int:
    """``analyze`` or ``report``; a missing model, statistics file or digit ends with one line and status 2."""
    from training.analyze import AnalysisError, analyze

    try:
        if args.command == "analyze":
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
