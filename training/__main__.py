"""Command line: ``python -m training train | download`` (also the ``convlens-train`` script)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.data import DEFAULT_MIRROR, MnistError
from training.train import OPTIMIZERS, TrainConfig
from training.networks import ACTIVATIONS


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
    train.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer,
                       help="adadelta is the paper's (use --learning-rate 1.0 --schedule constant for its recipe)")
    train.add_argument("--learning-rate", type=float, default=None, help="default: the optimizer's customary rate")
    train.add_argument("--schedule", choices=("cosine", "constant"), default=defaults.schedule)
    train.add_argument("--shift", type=int, default=defaults.shift, help="random shift augmentation in pixels (0: off)")
    train.add_argument("--autoencoder-epochs", type=int, default=defaults.autoencoder_epochs)
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    train.add_argument("--test-limit", type=int, default=None, help="use only the first N test images")

    download = commands.add_parser("download", help="fetch the MNIST files and verify their checksums")
    download.add_argument("--data-dir", required=True, help="folder to write the files to")
    download.add_argument("--mirror", default=DEFAULT_MIRROR)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; data problems end with a one-line message and exit status 2."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "download":
            from training.data import download

            for path in download(args.data_dir, args.mirror):
                print(f"ok {path}")
            return 0
        from training.pipeline import train_and_export

        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, activation=args.activation,
                             optimizer=args.optimizer, learning_rate=args.learning_rate, schedule=args.schedule,
                             shift=args.shift, autoencoder_epochs=args.autoencoder_epochs, seed=args.seed,
                             train_limit=args.train_limit, test_limit=args.test_limit)
        manifest = train_and_export(args.data_dir, args.out_dir, config)
        print(f"wrote {manifest}")
        return 0
    except MnistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
