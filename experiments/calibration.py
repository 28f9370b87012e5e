"""Accuracy and calibration of a checkpoint written by ``archdsl train``, on the val split.

Builds the spec with archdsl's runtime (``archdsl.build``), loads the checkpoint's ``model``
state_dict strictly, runs the val images of the ImageFolder through it in eval mode (with the
same val transform as ``archdsl train``) and reports top-1, the negative log-likelihood, the mean
confidence and the expected calibration error: the max-softmax confidences are put in 15 equal
bins over [0, 1] and ECE = sum over bins of |accuracy - mean confidence| x (bin count / N).

    python experiments/calibration.py runs/ls0/best.pt --data data/digits [--plot reliability.png] [--json]

The spec defaults to the copy of it in the checkpoint's run folder and the parameters to the ones
the checkpoint records (``-p`` overrides them; a state_dict of another architecture is refused by
the strict load).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ece_bins(conf: list[float], correct: list[bool], n_bins: int = 15) -> list[tuple[int, float, float]]:
    """Per bin (count, accuracy, mean confidence); bin b holds confidences in (b/n, (b+1)/n]."""
    bins = [[0, 0.0, 0.0] for _ in range(n_bins)]
    for c, ok in zip(conf, correct):
        b = min(n_bins - 1, max(0, math.ceil(c * n_bins) - 1))  # right-closed bins, as Guo et al.
        bins[b][0] += 1
        bins[b][1] += float(ok)
        bins[b][2] += c
    return [(n, acc / n if n else 0.0, s / n if n else 0.0) for n, acc, s in bins]


def expected_calibration_error(conf: list[float], correct: list[bool], n_bins: int = 15) -> float:
    """ECE (Naeini et al. 2015; Guo et al. 2017): the count-weighted |accuracy - confidence| gap."""
    total = len(conf)
    return sum(n / total * abs(acc - c) for n, acc, c in ece_bins(conf, correct, n_bins) if n)


def spec_of(ckpt_path: Path, state: dict, given: str | None) -> str:
    """The spec to build: the one given, else the run folder's copy (``RUN/spec/<name>``)."""
    if given:
        return given
    copy = ckpt_path.parent / "spec" / Path(str(state.get("spec_path", ""))).name
    if not copy.is_file():
        raise SystemExit(f"error: no spec copy at {copy}; give --spec")
    return str(copy)


def predictions(model, dataset, batch: int = 256):
    """Softmax probabilities and labels of a whole dataset, in eval mode, without gradients."""
    import torch

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=0)
    probs, labels = [], []
    model.eval()
    with torch.no_grad():
        for x, y in loader:
            out = model(x)
            out = out[0] if isinstance(out, tuple) else out
            probs.append(torch.softmax(out.float(), dim=1))
            labels.append(y)
    return torch.cat(probs), torch.cat(labels)


def measure(ckpt: str, data: str, spec: str | None, params: list[str], n_bins: int = 15) -> dict:
    """Load the checkpoint, predict the val split, return the figures (and the bins)."""
    import torch

    import archdsl
    from archdsl.backends.runtime import generated_module
    from archdsl.pipeline import parse_overrides
    from archdsl.train.data import open_imagefolder

    state = torch.load(ckpt, map_location="cpu", weights_only=True)  # no pickled code runs
    overrides = {**state.get("params", {}), **parse_overrides(params)}
    model = archdsl.build(spec_of(Path(ckpt), state, spec), **overrides)
    model.load_state_dict(state["model"], strict=True)
    shape = tuple(generated_module(model).INPUT_SHAPE)
    probs, labels = predictions(model, open_imagefolder(data, shape, augment=False).val)
    conf, pred = probs.max(dim=1)
    correct = (pred == labels).tolist()
    nll = -torch.log(probs[torch.arange(len(labels)), labels].clamp_min(1e-12)).mean().item()
    conf_l = conf.tolist()
    return {"checkpoint": ckpt, "epoch": state.get("epoch"), "n": len(correct),
            "top1": sum(correct) / len(correct), "nll": nll, "mean_confidence": sum(conf_l) / len(conf_l),
            "ece": expected_calibration_error(conf_l, correct, n_bins),
            "bins": ece_bins(conf_l, correct, n_bins)}


def reliability_png(result: dict, path: str, title: str) -> None:
    """A reliability diagram (accuracy per confidence bin vs the diagonal), drawn with PIL."""
    from PIL import Image, ImageDraw

    w, h, m = 420, 420, 50
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    side = w - 2 * m
    d.rectangle([m, m, m + side, m + side], outline="black")
    d.line([m, m + side, m + side, m], fill=(160, 160, 160))  # perfect calibration
    bins = result["bins"]
    bw = side / len(bins)
    for i, (n, acc, _conf) in enumerate(bins):
        if n:
            x0 = m + i * bw
            d.rectangle([x0 + 1, m + side - acc * side, x0 + bw - 1, m + side], fill=(70, 110, 200),
                        outline=(30, 60, 140))
    for t in (0.0, 0.5, 1.0):
        d.text((m + t * side - 8, m + side + 6), f"{t:.1f}", fill="black")
        d.text((m - 28, m + side - t * side - 6), f"{t:.1f}", fill="black")
    d.text((m, 12), title, fill="black")
    d.text((m, 28), f"top-1 {result['top1']:.3f}  ECE {result['ece']:.4f}  (15 bins)", fill="black")
    d.text((m + side // 2 - 40, h - 20), "confidence", fill="black")
    d.text((4, m - 16), "accuracy", fill="black")
    img.save(path)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the figures (one line, or JSON) and optionally draw the diagram."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="best.pt or last.pt of an `archdsl train` run")
    ap.add_argument("--data", required=True, help="the ImageFolder the run was trained on")
    ap.add_argument("--spec", help="the spec (default: the copy in the run folder)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                    help="the run's parameter overrides (repeatable)")
    ap.add_argument("--bins", type=int, default=15)
    ap.add_argument("--plot", metavar="PNG", help="write a reliability diagram")
    ap.add_argument("--title", default=None, help="title of the diagram")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args(argv)
    res = measure(args.checkpoint, args.data, args.spec, args.param, args.bins)
    if args.plot:
        reliability_png(res, args.plot, args.title or args.checkpoint)
    if args.json:
        print(json.dumps({k: v for k, v in res.items() if k != "bins"}))
    else:
        print(f"{args.checkpoint}: epoch {res['epoch']}, {res['n']} val images, top-1 {res['top1']:.4f}, "
              f"NLL {res['nll']:.4f}, mean confidence {res['mean_confidence']:.4f}, ECE {res['ece']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
