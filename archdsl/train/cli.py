"""``archdsl train``: the subcommand. Importing this module registers it and imports no torch."""

from __future__ import annotations

import argparse
import os
import sys

from .. import cli


def _non_negative_int(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _decay(text: str) -> float:
    value = _positive_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"expected a decay between 0 and 1 (e.g. 0.999), got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand to the archdsl parser."""
    p = sub.add_parser(
        "train", help="train a spec on an ImageFolder and evaluate it each epoch (needs the train extra)",
        description="Train SPEC on DIR (DIR/train/<class>/*, DIR/val/<class>/*) with the spec's loss and init: "
                    "SGD or AdamW, cosine schedule with warmup, evaluation (loss, top-1, top-5) each epoch. "
                    "Writes RUN/metrics.jsonl, last.pt, best.pt, curves.png and a copy of the spec. Under "
                    "torchrun --nproc_per_node N it runs one process per device (DDP; --fsdp for FSDP); "
                    "--batch is per process. Needs torchvision and PIL: pip install 'archdsl[train]'.")
    p.add_argument("spec", metavar="SPEC", help=cli.SPEC_HELP)
    p.add_argument("--data", required=True, metavar="DIR", help="ImageFolder root with train/ and val/")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder (created; resuming appends to it)")
    p.add_argument("--epochs", type=cli._positive_int, default=10, metavar="N", help="epochs in all (default 10)")
    p.add_argument("--batch", type=cli._positive_int, default=64, metavar="B",
                   help="batch size per process (default 64)")
    p.add_argument("--lr", type=_positive_float, default=None, metavar="LR",
                   help="peak learning rate (default 0.1 for sgd, 0.001 for adamw)")
    p.add_argument("--opt", choices=("sgd", "adamw"), default="sgd",
                   help="sgd: momentum 0.9, nesterov, weight decay 5e-4 (default); adamw: weight decay 0.05")
    p.add_argument("--weight-decay", type=float, default=None, metavar="WD",
                   help="weight decay on conv and linear weights (never on norm weights or biases)")
    p.add_argument("--warmup", type=float, default=1.0, metavar="EPOCHS",
                   help="linear warmup length in epochs before the cosine decay (default 1)")
    p.add_argument("--amp", choices=("bf16", "fp16"), default=None, help="mixed precision (autocast)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    p.add_argument("--workers", type=_non_negative_int, default=2, metavar="N", help="data loader workers (default 2)")
    p.add_argument("--stop-after", type=cli._positive_int, default=None, metavar="K",
                   help="stop after epoch K of --epochs (writes last.pt; --resume continues the same schedule)")
    p.add_argument("--resume", metavar="CKPT", help="continue from RUN/last.pt exactly where it stopped")
    p.add_argument("--ema", type=_decay, default=None, metavar="DECAY",
                   help="keep an exponential moving average of the weights (e.g. 0.999) and evaluate it")
    p.add_argument("--seed", type=_non_negative_int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--fsdp", action="store_true", help="shard the model with FSDP instead of DDP (under torchrun)")
    p.add_argument("--progress", choices=("auto", "bar", "lines"), default="auto",
                   help="auto: a progress bar on a terminal, one line per epoch otherwise")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a network parameter (repeatable; num_classes follows the data)")
    p.add_argument("--search-path", action="append", default=[], metavar="DIR",
                   help="extra directory 'use' imports may read from")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors and the epoch lines")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``archdsl train``."""
    from ..diagnostics import DiagnosticError, SourceCache
    from ..pipeline import parse_overrides

    try:
        params = parse_overrides(args.param)
    except DiagnosticError as exc:
        cli._print_diags([exc.diagnostic], SourceCache())
        return cli.EXIT_ERRORS
    from .config import TrainConfig

    cfg = TrainConfig(spec=args.spec, data=args.data, out=args.out, epochs=args.epochs, batch=args.batch,
                      lr=args.lr, opt=args.opt, weight_decay=args.weight_decay, warmup_epochs=args.warmup,
                      amp=args.amp, channels_last=args.channels_last, compile=args.compile, device=args.device,
                      workers=args.workers, resume=args.resume, params=params, ema=args.ema, seed=args.seed,
                      fsdp=args.fsdp, search_paths=tuple(args.search_path), stop_after=args.stop_after,
                      progress={"auto": None, "bar": True, "lines": False}[args.progress])
    rc = run_reporting(cfg)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun the job is done and the process group destroyed; gloo's transport threads
        # can still trip std::terminate in static destructors at interpreter exit (SIGABRT on a busy
        # machine, seen in CI), which would turn a finished run into a failed one. Leave at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    return rc


def run_reporting(cfg) -> int:
    """:func:`archdsl.train.run`, with every bad-input exception printed as diagnostics (exit 1)."""
    from ..backends.runtime import BuildError
    from ..diagnostics import DiagnosticError, SourceCache
    from .loop import run

    try:
        return run(cfg)
    except BuildError as exc:
        cli._print_diags(exc.diagnostics, exc.sources or SourceCache())
    except DiagnosticError as exc:
        cli._print_diags([exc.diagnostic], SourceCache())
    except Exception as exc:
        diagnostic = getattr(exc, "diagnostic", None)
        if diagnostic is None or type(exc).__name__ != "DataError":
            raise
        cli._print_diags([diagnostic], SourceCache())
    return cli.EXIT_ERRORS


cli._EXTENSIONS.append(register)
