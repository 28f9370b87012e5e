"""Benchmark: inference with batch norms folded into the convolutions (``--fold-bn``) vs without.

The same trained-looking weights (random BN statistics) are run in eval mode under
``torch.inference_mode``, unfolded and folded (``archdsl.fold_bn``), alternating rounds in one
process; the ratio is folded throughput / unfolded throughput (CPU target >= 1.15 for resnet50).

Run: ``python bench/bench_foldbn.py [--models resnet50] [--batch 8] [--device cpu] [--channels-last]``
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    import archdsl

    if args.threads:
        torch.set_num_threads(args.threads)
    gpu = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    print(f"# {datetime.date.today()} torch {torch.__version__} device {args.device}, "
          f"{torch.get_num_threads()} threads, batch {args.batch}, channels_last {args.channels_last}")
    print(f"{'model':14s} {'unfolded img/s':>15s} {'folded img/s':>13s} {'speedup':>8s} {'max rel diff':>13s}")
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        torch.manual_seed(0)
        model = archdsl.build(ROOT / "specs" / f"{name}.arch")
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.normal_(0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
        model.eval()
        folded, report = archdsl.fold_bn(model, report=True)
        size = 299 if "inception" in name else 224
        x = torch.randn(args.batch, 3, size, size).to(args.device).to(memory_format=fmt)
        runs = {"unfolded": model.to(args.device).to(memory_format=fmt),
                "folded": folded.to(args.device).to(memory_format=fmt)}
        times: dict[str, list[float]] = {k: [] for k in runs}
        with torch.inference_mode():
            outs = {k: m(x) for k, m in runs.items()}
            diff = float((outs["folded"] - outs["unfolded"]).abs().max() / outs["unfolded"].abs().max())
            for r in range(args.rounds):
                for k, m in list(runs.items()) if r % 2 == 0 else list(runs.items())[::-1]:
                    sync()
                    t = time.perf_counter()
                    for _ in range(args.iters):
                        m(x)
                    sync()
                    times[k].append(time.perf_counter() - t)
        ips = {k: args.batch * args.iters / min(v) for k, v in times.items()}  # best round of each
        print(f"{name:14s} {ips['unfolded']:15.2f} {ips['folded']:13.2f} {ips['folded'] / ips['unfolded']:8.3f} "
              f"{diff:13.2e}   ({len(report.folded)} folded, {len(report.kept)} kept)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
