"""Tables and a combined plot of several ``archdsl train`` runs, from their ``metrics.jsonl``.

    python experiments/report.py --threshold 0.95 --plot docs/experiments/bn_val_top1.png \\
        "bn, lr 0.02=runs/bn_lr0.02" "no bn, lr 0.02=runs/nobn_lr0.02" ...

Prints a Markdown table (one row per run: val top-1 per epoch, best, last, the first epoch at or
above the threshold and the optimizer steps it took) and, with ``--plot``, draws val top-1 (or
``--metric``) per epoch of every run in one PNG with PIL (no matplotlib). Steps per epoch come from
the run's ``last.pt`` (``step`` / ``epoch``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189),
          (140, 86, 75), (227, 119, 194), (127, 127, 127)]


def read_metrics(run: Path) -> list[dict]:
    """The per-epoch records of a run folder, in order."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def steps_per_epoch(run: Path) -> int | None:
    """Optimizer steps per epoch, from the run's last checkpoint (None when it does not say)."""
    try:
        import torch

        state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
        return int(state["step"]) // int(state["epoch"]) if state.get("epoch") else None
    except Exception:  # a missing or foreign checkpoint only costs the steps column
        return None


def row(label: str, run: Path, metric: str, threshold: float) -> tuple[str, list[float]]:
    """One Markdown table row and the run's metric series."""
    recs = read_metrics(run)
    series = [float(r[metric]) for r in recs]
    first = next((int(r["epoch"]) for r in recs if float(r[metric]) >= threshold), None)
    spe = steps_per_epoch(run)
    steps = "—" if first is None else (str(first * spe) if spe else "?")
    per_epoch = " ".join(f"{v:.3f}" for v in series)
    cells = [label, per_epoch, f"{max(series):.3f}", f"{series[-1]:.3f}",
             "not reached" if first is None else str(first), steps]
    return "| " + " | ".join(cells) + " |", series


def plot(path: str, runs: list[tuple[str, list[float]]], metric: str, title: str) -> None:
    """All series in one line chart, y in [0, 1] for accuracies, drawn with PIL."""
    from PIL import Image, ImageDraw

    w, h, left, right, top, bottom = 720, 440, 60, 190, 40, 50
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    pw, ph = w - left - right, h - top - bottom
    values = [v for _, s in runs for v in s]
    lo, hi = (0.0, 1.0) if "top" in metric else (min(values), max(values) or 1.0)
    n = max(len(s) for _, s in runs)
    d.rectangle([left, top, left + pw, top + ph], outline="black")
    for i in range(5):
        y = top + ph - i / 4 * ph
        d.line([left, y, left + pw, y], fill=(225, 225, 225))
        d.text((8, y - 6), f"{lo + (hi - lo) * i / 4:.2f}", fill="black")
    for e in range(1, n + 1):
        x = left + (e - 1) / max(1, n - 1) * pw
        d.text((x - 4, top + ph + 6), str(e), fill="black")
    for k, (label, s) in enumerate(runs):
        color = COLORS[k % len(COLORS)]
        pts = [(left + i / max(1, n - 1) * pw, top + ph - (v - lo) / ((hi - lo) or 1) * ph) for i, v in enumerate(s)]
        if len(pts) > 1:
            d.line(pts, fill=color, width=2)
        for x, y in pts:
            d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)
        d.line([w - right + 12, top + 14 + 18 * k, w - right + 32, top + 14 + 18 * k], fill=color, width=3)
        d.text((w - right + 38, top + 8 + 18 * k), label, fill="black")
    d.text((left, 12), title, fill="black")
    d.text((left + pw // 2 - 16, h - 22), "epoch", fill="black")
    img.save(path)


def main(argv: list[str] | None = None) -> int:
    """Command line: LABEL=RUN_DIR arguments, a table on stdout, an optional plot."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR")
    ap.add_argument("--metric", default="val_top1")
    ap.add_argument("--threshold", type=float, default=0.95)
    ap.add_argument("--plot", metavar="PNG")
    ap.add_argument("--title", default="")
    args = ap.parse_args(argv)
    print(f"| run | {args.metric} per epoch | best | last | first epoch >= {args.threshold:g} | steps to it |")
    print("|---|---|---|---|---|---|")
    series = []
    for spec in args.runs:
        label, sep, folder = spec.rpartition("=")
        if not sep:
            ap.error(f"write LABEL=RUN_DIR, not {spec!r}")
        line, s = row(label, Path(folder), args.metric, args.threshold)
        print(line)
        series.append((label, s))
    if args.plot:
        plot(args.plot, series, args.metric, args.title or args.metric)
    return 0


if __name__ == "__main__":
    sys.exit(main())
