"""R3xx: factorization opportunities and misuses ("Rethinking the Inception Architecture", section 3)."""

from __future__ import annotations

import math
from collections.abc import Iterator

from ...diagnostics import INFO, WARNING, Diagnostic
from ..factorization import ASYM, STACK, asym_qualifies, plan, stack_qualifies
from ..graphctx import NUMBER_WORDS, Ctx, count, grid, hwc, kernel_text, macs, pct
from ..registry import rule


def _evidence(p) -> dict:
    return {"kernel": list(p.kernel), "input": list(p.in_shape), "out": p.out_shape[0], "mid": p.mid,
            "factors": [kernel_text(la.kernel) for la in p.layers], "weights_before": p.weights_before,
            "weights_after": p.weights_after, "macs_before": p.macs_before, "macs_after": p.macs_after}


def command_hint(ctx: Ctx, nid: int, kind: str) -> str:
    """The command that writes the fix, named only when it really rewrites this conv; otherwise why it
    would not (``archdsl transform`` leaves imported blocks and computed kernels alone, for example)."""
    if ctx.analysis is None:
        return "write it by hand"
    from ...transforms.factorize import rewritable, why_not

    grid, path = ctx.options["grid"], ctx.node(nid)["path"]
    if path in rewritable(ctx.analysis, kind, grid):
        return f"`archdsl transform --factorize={kind}` writes it"
    why = why_not(ctx.analysis, kind, grid, path)
    return f"`archdsl transform` leaves it alone ({why})" if why else "write it by hand"


#: Fewest channels on either side of a conv that factorization applies to: below it (a conv on the raw
#: image, a 1-channel attention map) the intermediate layer would be a 1- or 2-channel bottleneck, not
#: an equivalent of the n x n conv.  The paper factorizes convs inside its modules, all far wider.
MIN_FACTOR_CHANNELS = 8


def _wide_enough(ins: tuple, out: tuple) -> bool:
    return min(ins[0], out[0]) >= MIN_FACTOR_CHANNELS


def _medium(ins: tuple, g: tuple[int, int]) -> bool:
    return g[0] <= ins[1] <= g[1] and g[0] <= ins[2] <= g[1]


@rule("R301", "factorize-into-3x3", WARNING,
      "an n x n conv (odd n >= 5, stride 1) outside the medium grid range (`grid`) that a stack of (n-1)/2 3x3 "
      "convs replaces with the same receptive field (on a medium grid R302 applies instead)",
      "Two stacked 3x3 convs see a 5x5 window for 18 instead of 25 weights per channel pair (28% fewer), three "
      "see 7x7 for 27 instead of 49; the non-linearity between them adds expressiveness.", "rethinking", ("grid",))
def factorize_3x3(ctx: Ctx) -> Iterator[Diagnostic]:
    g = ctx.options["grid"]
    for n in ctx.nodes_with("conv2d"):
        a, ins, out = ctx.node(n)["args"], ctx.in_shape(n), ctx.shape(n)
        if not stack_qualifies(a, ins, out) or _medium(ins, g) or not _wide_enough(ins, out):
            continue
        p = plan(STACK, a, ins, out)
        k = kernel_text(p.kernel)
        widths = "->".join(str(c) for c in [p.layers[0].cin] + [la.cout for la in p.layers])
        msg = (f"{k} conv on {hwc(ins)} can be {NUMBER_WORDS.get(len(p.layers), len(p.layers))} stacked 3x3 convs "
               f"(same receptive field): {count(p.weights_before)} -> {count(p.weights_after)} weights "
               f"({pct(p.weights_before, p.weights_after)}), {macs(p.macs_before)} -> {macs(p.macs_after)} MACs")
        hint = (f"3x3 convs {widths}, the norm/activation that follows the conv repeated between them; "
                + command_hint(ctx, n, k))
        yield ctx.diag("R301", WARNING, n, msg, hint, _evidence(p))


@rule("R302", "factorize-asymmetric", WARNING,
      "an n x n conv (odd n >= 5, stride 1) on a medium grid (`grid`, 12 to 20 by default) that a 1 x n conv "
      "followed by an n x 1 conv replaces",
      "1 x n then n x 1 costs 2n instead of n^2 weights per channel pair (60% fewer for 5x5, 71% for 7x7); the "
      "paper found it gives very good results on medium grids (its 17x17 modules use 1x7 + 7x1) and poorly "
      "early. 3x3 convs are left alone: the paper's modules keep them.", "rethinking", ("grid",))
def factorize_asym(ctx: Ctx) -> Iterator[Diagnostic]:
    g = ctx.options["grid"]
    for n in ctx.nodes_with("conv2d"):
        a, ins, out = ctx.node(n)["args"], ctx.in_shape(n), ctx.shape(n)
        if not asym_qualifies(a, ins, out, g) or a["kernel"][0] < 5 or not _wide_enough(ins, out):
            continue
        p = plan(ASYM, a, ins, out)
        k = p.kernel[0]
        msg = (f"{k}x{k} conv on {hwc(ins)} (a medium grid, {g[0]} to {g[1]}) can be a 1x{k} conv followed by a "
               f"{k}x1 conv: {count(p.weights_before)} -> {count(p.weights_after)} weights "
               f"({pct(p.weights_before, p.weights_after)}), {macs(p.macs_before)} -> {macs(p.macs_after)} MACs")
        stack = plan(STACK, a, ins, out)
        hint = (f"1x{k} {p.in_shape[0]}->{p.mid} then {k}x1 {p.mid}->{p.out_shape[0]}; " + command_hint(ctx, n, "asym")
                + f" (stacked 3x3 convs would cost {count(stack.weights_after)} weights, {macs(stack.macs_after)} MACs)")
        yield ctx.diag("R302", WARNING, n, msg, hint, _evidence(p))


def _asym_kernel(a: dict) -> int | None:
    kh, kw = a["kernel"]
    if (kh == 1) != (kw == 1) and max(kh, kw) >= 3:
        return max(kh, kw)
    return None


@rule("R303", "asymmetric-on-large-grid", INFO,
      "a 1 x n or n x 1 conv on a grid larger than the medium range (`grid`)",
      "The paper found asymmetric factorization does not work well on early layers (large grids), only on "
      "medium grids of about 12 to 20. An info, not a warning: the authors' own Inception-v4 stem (Szegedy et "
      "al. 2017, Figure 3) uses a 7x1 + 1x7 pair on its 73x73 grid, and the square alternative costs more.",
      "rethinking", ("grid",))
def asym_large_grid(ctx: Ctx) -> Iterator[Diagnostic]:
    hi = ctx.options["grid"][1]
    paired: set[int] = set()
    for n in ctx.nodes_with("conv2d"):
        if n in paired:
            continue
        a, ins, out = ctx.node(n)["args"], ctx.in_shape(n), ctx.shape(n)
        k = _asym_kernel(a)
        if k is None or ins is None or out is None or len(ins) != 3 or max(ins[1], ins[2]) <= hi:
            continue
        partner = None
        nxt = ctx.consumers_through_pass(n)
        if len(nxt) == 1 and ctx.op(nxt[0]) == "conv2d":
            b = ctx.node(nxt[0])["args"]
            if b["kernel"] == tuple(reversed(a["kernel"])) and b["stride"] == (1, 1):
                partner = nxt[0]
        ev = {"kernel": list(a["kernel"]), "input": list(ins), "grid_limit": hi}
        if partner is not None:
            paired.add(partner)
            pout = ctx.shape(partner)
            now_w = sum(math.prod(ctx.node(x)["args"]["kernel"]) * ctx.in_shape(x)[0] * ctx.shape(x)[0]
                        // ctx.node(x)["args"]["groups"] for x in (n, partner))
            now_m = ctx.node(n)["costs"].macs + ctx.node(partner)["costs"].macs
            square = plan(STACK, {"kernel": (k, k), "padding": (k // 2, k // 2)}, ins, pout, mid=out[0]) \
                if k >= 5 else None
            what = f"{kernel_text(a['kernel'])} + {kernel_text(b['kernel'])} pair"
            msg = (f"asymmetric {what} on a {grid(ins)} grid (above the medium range, {hi}): the paper found "
                   f"asymmetric factorization works poorly this early; the pair costs {count(now_w)} weights, "
                   f"{macs(now_m)} MACs")
            if square is not None:
                cost = "more" if square.macs_after > now_m else "less"
                hint = (f"if accuracy suffers, use {len(square.layers)} stacked 3x3 convs for the {k}x{k} window "
                        f"here ({count(square.weights_after)} weights, {macs(square.macs_after)} MACs: "
                        f"{square.macs_after / now_m:.2f}x the pair's, {cost}), or move the pair after the next "
                        f"grid reduction")
                ev.update(square_weights=square.weights_after, square_macs=square.macs_after)
            else:
                hint = "use a 3x3 conv here, or move the pair after the next grid reduction"
            ev.update(pair_weights=now_w, pair_macs=now_m)
        else:
            msg = (f"{kernel_text(a['kernel'])} conv on a {grid(ins)} grid (above the medium range, {hi}): the paper "
                   f"found asymmetric factorization works poorly this early")
            hint = "use square kernels on large grids; keep 1 x n / n x 1 convs for 12x12 to 20x20 grids"
        yield ctx.diag("R303", INFO, n, msg, hint, ev)
