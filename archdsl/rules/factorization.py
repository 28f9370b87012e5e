"""The factorizations, as arithmetic: which convs qualify and what their factors cost.

Shared by the R3xx rules (which report the figures) and ``archdsl transform`` (which writes the
factors into the spec), so a finding's numbers and the rewrite always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .graphctx import harmonic_width

STACK, ASYM = "stack", "asym"


@dataclass(frozen=True)
class Layer:
    """One factor: kernel, channels in/out, padding ((ph, pw) or "same"), output grid."""

    kernel: tuple[int, int]
    cin: int
    cout: int
    padding: Any
    out_hw: tuple[int, int]

    @property
    def weights(self) -> int:
        return self.kernel[0] * self.kernel[1] * self.cin * self.cout

    @property
    def macs(self) -> int:
        return self.weights * self.out_hw[0] * self.out_hw[1]


@dataclass(frozen=True)
class Plan:
    """A conv and the layers that replace it."""

    mode: str
    kernel: tuple[int, int]
    in_shape: tuple
    out_shape: tuple
    mid: int
    layers: tuple[Layer, ...]

    @property
    def weights_before(self) -> int:
        return self.kernel[0] * self.kernel[1] * self.in_shape[0] * self.out_shape[0]

    @property
    def macs_before(self) -> int:
        return self.weights_before * self.out_shape[1] * self.out_shape[2]

    @property
    def weights_after(self) -> int:
        return sum(la.weights for la in self.layers)

    @property
    def macs_after(self) -> int:
        return sum(la.macs for la in self.layers)


def _plain(args: dict) -> bool:
    return args["stride"] == (1, 1) and args["dilation"] == (1, 1) and args["groups"] == 1


def stack_qualifies(args: dict, in_shape: tuple | None, out_shape: tuple | None, sizes: set[int] | None = None) -> bool:
    """n x n (odd n >= 5), stride 1, undilated, ungrouped, not collapsing its input to 1x1."""
    if in_shape is None or out_shape is None or len(in_shape) != 3:
        return False
    kh, kw = args["kernel"]
    if kh != kw or kh < 5 or kh % 2 == 0 or not _plain(args) or (sizes is not None and kh not in sizes):
        return False
    return out_shape[1] * out_shape[2] > 1


def asym_qualifies(args: dict, in_shape: tuple | None, out_shape: tuple | None, grid: tuple[int, int]) -> bool:
    """n x n (odd n >= 3), stride 1, undilated, ungrouped, on a grid within ``grid`` (both sides)."""
    if in_shape is None or out_shape is None or len(in_shape) != 3:
        return False
    kh, kw = args["kernel"]
    if kh != kw or kh < 3 or kh % 2 == 0 or not _plain(args):
        return False
    lo, hi = grid
    return lo <= in_shape[1] <= hi and lo <= in_shape[2] <= hi


def _pads(args: dict) -> tuple[int, int] | str:
    return args["padding"]


def plan(mode: str, args: dict, in_shape: tuple, out_shape: tuple, mid: int | None = None) -> Plan:
    """The replacement layers of a qualifying conv (``mid`` defaults to the harmonic width)."""
    k = args["kernel"][0]
    cin, cout = in_shape[0], out_shape[0]
    mid = mid or harmonic_width(cin, cout)
    pad = _pads(args)
    h, w = in_shape[1], in_shape[2]
    layers: list[Layer] = []
    if mode == STACK:
        m = (k - 1) // 2
        chans = [cin] + [mid] * (m - 1) + [cout]
        for i in range(m):
            if pad == "same":
                p: Any = "same"
                ph = pw = 1
            else:
                ph = pad[0] // m + (1 if i < pad[0] % m else 0)
                pw = pad[1] // m + (1 if i < pad[1] % m else 0)
                p = (ph, pw)
            h, w = h + 2 * ph - 2, w + 2 * pw - 2
            layers.append(Layer((3, 3), chans[i], chans[i + 1], p, (h, w)))
    else:
        ph, pw = ((k - 1) // 2, (k - 1) // 2) if pad == "same" else pad
        w1 = w + 2 * pw - (k - 1)
        layers.append(Layer((1, k), cin, mid, "same" if pad == "same" else (0, pw), (h, w1)))
        h1 = h + 2 * ph - (k - 1)
        layers.append(Layer((k, 1), mid, cout, "same" if pad == "same" else (ph, 0), (h1, w1)))
    return Plan(mode, tuple(args["kernel"]), tuple(in_shape), tuple(out_shape), mid, tuple(layers))
