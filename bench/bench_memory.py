"""Benchmark: DenseNet peak training memory with memory-efficient (checkpointed) dense layers.

Each configuration runs in its own process (peak RSS only grows): build the spec, one warm-up
and one measured training step (forward, loss, backward, SGD).  On CPU the figure is the
process's peak RSS minus its RSS just before the first step (the training step's own memory);
on CUDA it is ``torch.cuda.max_memory_allocated``.  The ratio is memory-efficient / plain.

Run: ``python bench/bench_memory.py [--spec densenet121] [--batch 16] [--device cpu]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(spec: str, batch: int, device: str, efficient: bool) -> dict:
    import torch
    import torch.nn.functional as F

    import archdsl

    torch.manual_seed(0)
    model = archdsl.build(ROOT / "specs" / f"{spec}.arch", memory_efficient=efficient).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, 224, 224, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    gpu = device.startswith("cuda")
    base = _rss_mb()
    step()  # warm-up (allocates gradients and optimizer state)
    if gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    step()
    if gpu:
        torch.cuda.synchronize()
        return {"peak_mb": (torch.cuda.max_memory_allocated() - before) / 2**20, "kind": "CUDA max allocated"}
    return {"peak_mb": _peak_mb() - base, "kind": "CPU peak RSS growth"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="densenet121")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--child", choices=("plain", "efficient"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.spec, args.batch, args.device, args.child == "efficient")))
        return 0
    res = {}
    for mode in ("plain", "efficient"):
        out = subprocess.run([sys.executable, __file__, "--spec", args.spec, "--batch", str(args.batch),
                              "--device", args.device, "--child", mode], capture_output=True, text=True, check=True)
        res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    kind = res["plain"]["kind"]
    print(f"# {datetime.date.today()} {args.spec}, batch {args.batch}, device {args.device}: {kind}")
    print(f"plain {res['plain']['peak_mb']:.0f} MB, memory-efficient {res['efficient']['peak_mb']:.0f} MB, "
          f"ratio {res['efficient']['peak_mb'] / res['plain']['peak_mb']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
