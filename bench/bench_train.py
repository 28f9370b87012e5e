"""Benchmark: training-step throughput of the compiled module vs the torchvision module.

One step = forward + loss (cross-entropy, aux heads weighted 0.3 when present, identical for
both) + backward + SGD step, at a fixed batch.  Both models hold the same weights (torchvision's
state_dict is loaded into the compiled module) and are measured side by side in one process,
alternating rounds (ABBA order) so that clock and thermal drift hit both equally; each
model's figure is its best round (``--stat median`` for the median).  The ratio is
archdsl images/s / torchvision images/s (target >= 1.0).  Without torchvision only the
compiled module is timed.

Run on CPU:  ``python bench/bench_train.py --models resnet50,inception_v3,densenet121 --batch 4``
On a GPU:    ``python bench/bench_train.py --device cuda --amp bf16 --channels-last [--compile]``

``--trainer`` measures ``archdsl train``'s own loop instead: the training-phase img/s that
``archdsl train`` writes to ``metrics.jsonl`` vs a plain hand-written PyTorch loop timed the same
way (first batch to last step of an epoch), on the same spec, the same ImageFolder and the same
data loaders (``archdsl.train.data.make_loaders``), the same batch, optimizer (SGD, momentum 0.9,
nesterov, weight decay 5e-4 off norms and biases) and per-step warmup + cosine schedule. Runs
alternate (ABBA); the first epoch of each run is warm-up and not counted. Ratio = archdsl train /
plain loop (target >= 0.97). The data default is scikit-learn's digits at 32x32
(``experiments/digits.py``) written to a temporary folder.

    python bench/bench_train.py --trainer [--spec experiments/digits_cnn.arch] [--data DIR] [--rounds 4]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INPUT = {"inception_v3": 299}


def torchvision_model(name: str):
    try:
        import torchvision.models as tvm
    except ImportError:
        return None
    kwargs = {"aux_logits": True, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(tvm, name)(weights=None, **kwargs)


def loss_of(out, y, F):
    if isinstance(out, tuple):  # (main, aux...) for both implementations
        return F.cross_entropy(out[0], y) + sum(0.3 * F.cross_entropy(o, y) for o in out[1:])
    return F.cross_entropy(out, y)


def make_step(model, opt, x, y, amp, device, F, torch):
    def step():
        opt.zero_grad(set_to_none=True)
        if amp is not None:
            with torch.autocast(device_type=device, dtype=amp):
                loss = loss_of(model(x), y, F)
        else:
            loss = loss_of(model(x), y, F)
        loss.backward()
        opt.step()
        return loss

    return step


def timed(step, steps: int, sync) -> float:
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50,inception_v3,densenet121")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=None, help="default: 4 on CPU, 64 on GPU")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per round (default 2 CPU, 20 GPU)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile both models")
    ap.add_argument("--memory-efficient", action="store_true", help="checkpointed dense layers (both models)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--stat", choices=("best", "median"), default="best",
                    help="per-model statistic over rounds (best: robust on a shared, noisy machine)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table row per model")
    ap.add_argument("--trainer", action="store_true", help="archdsl train's loop vs a hand-written loop")
    ap.add_argument("--spec", default=str(ROOT / "experiments" / "digits_cnn.arch"), help="--trainer: the spec")
    ap.add_argument("--data", default=None, help="--trainer: an ImageFolder (default: digits, 32x32, temporary)")
    ap.add_argument("--epochs", type=int, default=3, help="--trainer: epochs per run, the first not counted")
    ap.add_argument("--workers", type=int, default=2, help="--trainer: data loader workers (both loops)")
    ap.add_argument("--lr", type=float, default=0.05, help="--trainer: learning rate (both loops)")
    args = ap.parse_args(argv)
    if args.trainer:
        return trainer_main(args)

    import torch
    import torch.nn.functional as F

    import archdsl

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    gpu = dev.startswith("cuda")
    batch = args.batch or (64 if gpu else 4)
    steps = args.steps or (20 if gpu else 2)
    warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    amp = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.amp]
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    dev_name = torch.cuda.get_device_name(0) if gpu else (platform.processor() or platform.machine())
    print(f"# {datetime.date.today()} torch {torch.__version__} device {dev} ({dev_name}), "
          f"{torch.get_num_threads()} CPU threads; batch {batch}, amp {args.amp}, channels_last "
          f"{args.channels_last}, compile {args.compile}, {args.rounds} rounds x {steps} steps, {args.stat} round")
    print(f"{'model':14s} {'archdsl img/s':>14s} {'torchvision img/s':>18s} {'ratio':>7s}")
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        size = INPUT.get(name, 224)
        torch.manual_seed(0)
        ours = archdsl.build(ROOT / "specs" / f"{name}.arch", memory_efficient=args.memory_efficient)
        ref = torchvision_model(name)
        if ref is not None:
            if args.memory_efficient and hasattr(ref, "features"):
                for m in ref.modules():
                    if hasattr(m, "memory_efficient"):
                        m.memory_efficient = True
            ours.load_state_dict(ref.state_dict(), strict=True)
        models = {"archdsl": ours, "torchvision": ref}
        steps_fn = {}
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(batch, 3, size, size, generator=gen).to(dev).to(memory_format=fmt)
        y = torch.randint(0, 1000, (batch,), generator=gen).to(dev)
        for key, model in models.items():
            if model is None:
                continue
            model.to(dev).to(memory_format=fmt).train()
            runner = torch.compile(model) if args.compile else model
            opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
            steps_fn[key] = make_step(runner, opt, x, y, amp, "cuda" if gpu else "cpu", F, torch)
            for _ in range(warmup):
                steps_fn[key]()
        times: dict[str, list[float]] = {k: [] for k in steps_fn}
        for r in range(args.rounds):
            order = list(steps_fn.items())
            for key, step in order if r % 2 == 0 else order[::-1]:  # ABBA: neither always goes first
                times[key].append(timed(step, steps, sync))
        pick = min if args.stat == "best" else statistics.median
        ips = {k: batch * steps / pick(v) for k, v in times.items()}
        a = ips["archdsl"]
        b = ips.get("torchvision")
        ratio = a / b if b else float("nan")
        rows.append((name, a, b, ratio))
        print(f"{name:14s} {a:14.2f} {b if b else float('nan'):18.2f} {ratio:7.3f}", flush=True)
        del models, steps_fn
        if gpu:
            torch.cuda.empty_cache()
    if args.markdown:
        for name, a, b, ratio in rows:
            print(f"| {name} | {dev} | {args.amp} | {args.channels_last} | {args.compile} | {batch} | "
                  f"{a:.1f} | {b:.1f} | {ratio:.3f} |")
    return 0


# ------------------------------------------------------------------ --trainer: archdsl train vs a plain loop


def digits_folder(tmp: Path) -> str:
    """scikit-learn's digits as a 32x32 ImageFolder in ``tmp`` (real data, no download)."""
    sys.path.insert(0, str(ROOT / "experiments"))
    from digits import write_folder

    write_folder(tmp / "digits", 32, 0.2, 0)
    return str(tmp / "digits")


def archdsl_run(args, data: str, out: Path) -> list[float]:
    """One ``archdsl train`` job (its own loop, unchanged); the img/s of its epochs after the first."""
    import contextlib
    import io
    import json

    from archdsl.train.config import TrainConfig
    from archdsl.train.loop import run

    cfg = TrainConfig(spec=args.spec, data=data, out=str(out), epochs=args.epochs, batch=args.batch,
                      lr=args.lr, device=args.device, workers=args.workers, seed=0)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if run(cfg) != 0:
            raise SystemExit("archdsl train failed")
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["img_per_s"] for line in lines[1:]]


def plain_run(args, data: str) -> list[float]:
    """The same job written by hand: build, loaders, SGD groups, warmup + cosine, the epoch loop."""
    import math

    import torch
    import torch.nn.functional as F

    import archdsl
    from archdsl.backends.runtime import generated_module
    from archdsl.train.data import make_loaders, open_imagefolder

    torch.manual_seed(0)
    dataset = open_imagefolder(data, tuple(archdsl.load_spec(args.spec).graph.input_shape), augment=True)
    model = archdsl.build(args.spec, num_classes=len(dataset.classes)).to(args.device)
    smoothing = generated_module(model).LABEL_SMOOTHING
    train_loader, val_loader, _ = make_loaders(dataset, args.batch, args.workers, False, 0)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=args.lr, momentum=0.9, nesterov=True)
    steps, warm = args.epochs * len(train_loader), len(train_loader)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else
                                              0.5 * (1 + math.cos(math.pi * (s - warm) / max(steps - warm, 1))))
    rates = []
    for _epoch in range(args.epochs):
        model.train()
        start, images, total = time.perf_counter(), 0, 0.0
        for x, y in train_loader:
            x, y = x.to(args.device), y.to(args.device)
            loss = F.cross_entropy(model(x), y, label_smoothing=smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(y)
            images += len(y)
        rates.append(images / (time.perf_counter() - start))
        model.eval()  # evaluated like archdsl train does, outside the timed window
        with torch.no_grad():
            for x, _y in val_loader:
                model(x.to(args.device))
    return rates[1:]


def trainer_main(args) -> int:
    """Alternate archdsl train and the plain loop; print img/s of both and the ratio."""
    import tempfile

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    args.batch = args.batch or 64
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or digits_folder(Path(tmp))
        print(f"# {datetime.date.today()} torch {torch.__version__} device {args.device} "
              f"({platform.processor() or platform.machine()}), {torch.get_num_threads()} threads; "
              f"spec {Path(args.spec).name}, data {'digits 32x32' if not args.data else data}, batch {args.batch}, "
              f"workers {args.workers}, {args.rounds} rounds x {args.epochs} epochs (first not counted)")
        rates: dict[str, list[float]] = {"archdsl train": [], "plain loop": []}
        for r in range(args.rounds):
            order = ["archdsl train", "plain loop"] if r % 2 == 0 else ["plain loop", "archdsl train"]
            for key in order:
                got = archdsl_run(args, data, Path(tmp) / f"run{r}") if key == "archdsl train" else plain_run(args, data)
                rates[key] += got
                print(f"round {r + 1} {key:13s} " + " ".join(f"{v:8.1f}" for v in got), flush=True)
    for stat, pick in (("best", max), ("median", statistics.median)):
        a, b = pick(rates["archdsl train"]), pick(rates["plain loop"])
        print(f"{stat:6s} archdsl train {a:8.1f} img/s   plain loop {b:8.1f} img/s   ratio {a / b:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
