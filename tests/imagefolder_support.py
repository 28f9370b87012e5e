"""Small ImageFolders of PNGs for the ``archdsl train`` tests (needs Pillow and numpy).

:func:`make_imagefolder` writes ``ROOT/train/<class>/*.png`` and ``ROOT/val/<class>/*.png`` with a signal a
small CNN learns in a few CPU epochs, also under the standard augmentation (a padded random crop and a
horizontal flip) and after global average pooling: class k is a patch of stripes whose orientation
(horizontal for even k, vertical for odd) and period (2 + k // 2 pixels) name the class, at a random
place on a noisy gray background. The same seed writes the same bytes. Keyword options build the
broken layouts the data tests need (a missing split, differing class folders, corrupt files).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def class_image(k: int, size: int, channels: int, rng: np.random.Generator) -> Image.Image:
    """One image of class ``k``: stripes (orientation k % 2, period 2 + k // 2) in a patch of half the
    side, at a random place, over Gaussian noise (std 20) on gray 110."""
    pixels = rng.normal(110.0, 20.0, (size, size))
    side = max(2, size // 2)
    period = 2 + k // 2
    ramp = (np.arange(side) % period) < (period + 1) // 2
    stripes = np.where(ramp[:, None] if k % 2 == 0 else ramp[None, :], 235.0, 15.0) * np.ones((side, side))
    top, left = rng.integers(0, size - side + 1, 2)
    pixels[top:top + side, left:left + side] = stripes + rng.normal(0.0, 10.0, (side, side))
    gray = np.clip(pixels, 0, 255).astype(np.uint8)
    if channels == 1:
        return Image.fromarray(gray, "L")
    tint = rng.normal(0.0, 8.0, (1, 1, 3))  # colour that carries no class information
    return Image.fromarray(np.clip(gray[..., None] + tint, 0, 255).astype(np.uint8), "RGB")


def make_imagefolder(root: Path, classes: int = 3, per_class: int = 40, size: int = 16, channels: int = 3,
                     seed: int = 0, *, val_per_class: int | None = None, splits: tuple[str, ...] = ("train", "val"),
                     class_names: list[str] | None = None, val_class_names: list[str] | None = None,
                     corrupt: int = 0) -> Path:
    """Write an ImageFolder at ``root`` and return ``root``: ``per_class`` training images per class and
    ``val_per_class`` (default a quarter, at least 2) validation images, ``size`` x ``size`` PNGs with
    ``channels`` 1 (L) or 3 (RGB), deterministic in ``seed``.

    ``splits``: the split folders written; ``class_names``: folder names (default ``class_0``, ...);
    ``val_class_names``: other folder names for val/ (differing classes); ``corrupt``: that many extra
    files in train/<first class>/ that are not readable PNGs (``broken_N.png``: a truncated PNG, then
    random bytes)."""
    rng = np.random.default_rng(seed)
    names = class_names or [f"class_{k}" for k in range(classes)]
    counts = {"train": per_class, "val": val_per_class if val_per_class is not None else max(2, per_class // 4)}
    for split in splits:
        folders = val_class_names if split == "val" and val_class_names is not None else names
        for k, name in enumerate(folders):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(counts.get(split, per_class)):
                class_image(k % max(1, classes), size, channels, rng).save(folder / f"{i:04d}.png")
    for i in range(corrupt):
        write_corrupt(root / "train" / names[0] / f"broken_{i}.png", i, rng)
    return root


def write_corrupt(path: Path, kind: int = 0, rng: np.random.Generator | None = None) -> Path:
    """A file named like a PNG that Pillow cannot read: kind 0 a PNG cut in half (verify fails), kind 1
    random bytes (open fails), kind 2 an empty file."""
    rng = rng or np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind % 3 == 0:
        good = path.with_suffix(".tmp.png")
        class_image(0, 16, 3, rng).save(good)
        data = good.read_bytes()
        good.unlink()
        path.write_bytes(data[: len(data) // 2])
    elif kind % 3 == 1:
        path.write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    else:
        path.write_bytes(b"")
    return path
