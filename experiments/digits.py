"""Write scikit-learn's handwritten digits as an ImageFolder of PNGs for ``archdsl train``.

The data set (8x8 grey images, 10 classes, 1,797 samples, UCI "optdigits") ships inside the
scikit-learn wheel, so nothing is downloaded at run time. Each image is scaled from its 0..16
range to 0..255 and upsampled with bilinear interpolation to ``--size`` pixels. The train/val
split is stratified per class and fixed by ``--seed``, so the same command always writes the
same files.

    python experiments/digits.py data/digits            # data/digits/{train,val}/<0..9>/*.png
    python experiments/digits.py data/digits --size 16 --val-fraction 0.25 --seed 1

Needs scikit-learn and Pillow (``pip install scikit-learn pillow``; Pillow comes with the
``train`` extra).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def split_indices(labels: list[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of the train and val samples: each class split on its own (stratified), seeded."""
    import random

    rng = random.Random(seed)
    train: list[int] = []
    val: list[int] = []
    for cls in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == cls]
        rng.shuffle(idx)
        n_val = max(1, round(len(idx) * val_fraction))
        val += idx[:n_val]
        train += idx[n_val:]
    return sorted(train), sorted(val)


def to_png(pixels, size: int):
    """One 8x8 digit (values 0..16) as a ``size`` x ``size`` grey PIL image."""
    from PIL import Image

    data = bytes(min(255, round(float(v) * 255 / 16)) for v in pixels.reshape(-1))
    img = Image.frombytes("L", (8, 8), data)
    return img if size == 8 else img.resize((size, size), Image.BILINEAR)


def write_folder(out: Path, size: int, val_fraction: float, seed: int) -> dict[str, int]:
    """Write ``out/{train,val}/<digit>/<index>.png``; returns the number of images per split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    labels = [int(y) for y in digits.target]
    train, val = split_indices(labels, val_fraction, seed)
    counts = {}
    for split, indices in (("train", train), ("val", val)):
        for i in indices:
            folder = out / split / str(labels[i])
            folder.mkdir(parents=True, exist_ok=True)
            to_png(digits.images[i], size).save(folder / f"{i:04d}.png")
        counts[split] = len(indices)
    return counts


def main(argv: list[str] | None = None) -> int:
    """Command line: write the folder, replacing an earlier one at the same path."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder to write (replaced if it exists)")
    ap.add_argument("--size", type=int, default=32, help="image side in pixels (default 32)")
    ap.add_argument("--val-fraction", type=float, default=0.2, help="share of each class held out (0.2)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the train/val split (0)")
    args = ap.parse_args(argv)
    if not 8 <= args.size <= 512 or not 0 < args.val_fraction < 1:
        ap.error("--size must be 8..512 and --val-fraction between 0 and 1")
    try:
        import PIL  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        print(f"error: {exc.name} is needed: pip install scikit-learn pillow", file=sys.stderr)
        return 1
    if args.out.exists():
        shutil.rmtree(args.out)  # a stale split must not leak into the new one
    counts = write_folder(args.out, args.size, args.val_fraction, args.seed)
    print(f"wrote {args.out} ({counts['train']} train, {counts['val']} val images, "
          f"{args.size}x{args.size}, 10 classes, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
