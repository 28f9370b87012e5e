"""``curves.png``: loss and accuracy per epoch, drawn with PIL (no matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_W, _H, _PAD = 480, 320, 44
_COLORS = {"train_loss": (31, 119, 180), "val_loss": (255, 127, 14),
           "val_top1": (44, 160, 44), "val_top5": (148, 103, 189)}


def draw_curves(rows: Sequence[dict[str, Any]], path: str) -> None:
    """Write a PNG with two panels: train/val loss and val top-1/top-5 against the epoch."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (2 * _W, _H), "white")
    draw = ImageDraw.Draw(image)
    epochs = [float(r["epoch"]) for r in rows]
    losses = [v for r in rows for v in (r["train_loss"], r["val_loss"])]
    top = max([v for v in losses if v == v] or [1.0]) * 1.05 or 1.0
    _panel(draw, 0, "loss", epochs, rows, ("train_loss", "val_loss"), 0.0, top)
    _panel(draw, _W, "accuracy", epochs, rows, ("val_top1", "val_top5"), 0.0, 1.0)
    image.save(path, format="PNG")


def _panel(draw, x0: int, title: str, epochs: list[float], rows: Sequence[dict[str, Any]],
           keys: tuple[str, ...], lo: float, hi: float) -> None:
    left, right, top, bottom = x0 + _PAD, x0 + _W - 12, 24, _H - _PAD + 8
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    draw.text((left, 6), title, fill=(0, 0, 0))
    first, last = (epochs[0], epochs[-1]) if epochs else (0.0, 1.0)
    span = (last - first) or 1.0

    def xy(e: float, v: float) -> tuple[float, float]:
        return (left + (e - first) / span * (right - left),
                bottom - (min(max(v, lo), hi) - lo) / ((hi - lo) or 1.0) * (bottom - top))

    for frac in (0.0, 0.5, 1.0):  # y ticks
        v = lo + frac * (hi - lo)
        _, y = xy(first, v)
        draw.text((x0 + 4, y - 6), f"{v:.2f}", fill=(80, 80, 80))
    draw.text((left, bottom + 6), f"epoch {first:g}", fill=(80, 80, 80))
    draw.text((right - 60, bottom + 6), f"epoch {last:g}", fill=(80, 80, 80))
    for i, key in enumerate(keys):
        points = [xy(e, float(r[key])) for e, r in zip(epochs, rows) if r[key] == r[key]]
        color = _COLORS[key]
        if len(points) > 1:
            draw.line(points, fill=color, width=2)
        for px, py in points:
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=color)
        draw.text((right - 90, top + 6 + 14 * i), key, fill=color)
