"""R1xx: the representation along the main path (principle 1 of "Rethinking the Inception Architecture")."""

from __future__ import annotations

import math
from collections.abc import Iterator

from ...diagnostics import INFO, WARNING, Diagnostic
from ..graphctx import POOL_OPS, WEIGHT_OPS, Ctx, chw, count, grid, macs
from ..registry import rule

HEAD_POOLS = frozenset(("adaptive_avgpool", "adaptive_maxpool", "global_avgpool", "global_maxpool", "flatten"))


def _density(ctx: Ctx, nid: int) -> float:
    """Channels per input pixel: C / (jump_h * jump_w).  C*H*W without the border effects of floor/ceil."""
    c = ctx.shape(nid)[0]
    rf = ctx.node(nid)["rf"] or (1, 1, 1, 1)
    return c / (rf[2] * rf[3])


def _feature_points(ctx: Ctx) -> list[int]:
    """Main-path nodes holding a feature map, up to (not including) the global pooling."""
    out = []
    for nid in ctx.main_points:
        s = ctx.shape(nid)
        if (s is None or len(s) != 3 or s[1] * s[2] == 1 or ctx.node(nid)["rf"] is None
                or ctx.op(nid) in HEAD_POOLS):
            break
        out.append(nid)
    return out


def _is_early(ctx: Ctx, shape: tuple) -> bool:
    return max(shape[1], shape[2]) > ctx.options["grid"][1]


def _last_weight(ctx: Ctx, nid: int, stop: int) -> int | None:
    """The conv that produced ``nid`` (through pools and pass ops), if it lies after ``stop``."""
    cur = nid
    for _ in range(64):
        if cur == stop:
            return None
        if ctx.op(cur) in WEIGHT_OPS:
            return cur
        preds = ctx.preds[cur]
        if len(preds) != 1:
            return None
        cur = preds[0]
    return None


@rule("R101", "representational-bottleneck", WARNING,
      "the representation (C x H x W, per input pixel) drops by more than `bottleneck_factor` between consecutive "
      "stages of the main path",
      "An extreme compression of the representation loses information later layers cannot recover; it "
      "should shrink gently from input to output, and a bottleneck is worst early in the network.",
      "rethinking", ("bottleneck_factor", "grid"),
      severity_note="warning on early (larger than the medium range) grids, info later")
def representational_bottleneck(ctx: Ctx) -> Iterator[Diagnostic]:
    """A stage is a run of main-path points on one grid.  Each point is compared with the largest
    representation of its own stage so far and of the previous stage; a run of points beyond the
    limit is one finding, reported at its worst point."""
    pts = _feature_points(ctx)
    factor = ctx.options["bottleneck_factor"]
    best_prev = best_cur = None   # (density, node) maxima of the previous and current stage
    hw = None
    run: list[tuple[float, int, int]] = []
    found: list[tuple[float, int, int]] = []
    for p in pts:
        d = _density(ctx, p)
        s = ctx.shape(p)
        if s[1:] != hw:
            best_prev, best_cur, hw = best_cur, None, s[1:]
        ref = max((x for x in (best_prev, best_cur) if x is not None), default=None, key=lambda x: x[0])
        if ref is not None and ref[0] / d > factor:
            run.append((ref[0] / d, ref[1], p))
        elif run:
            found.append(max(run))
            run = []
        if best_cur is None or d > best_cur[0]:
            best_cur = (d, p)
    if run:
        found.append(max(run))
    for drop, peak, low in found:
        ps, ls = ctx.shape(peak), ctx.shape(low)
        early = _is_early(ctx, ps)
        rf = ctx.node(low)["rf"]
        need = math.ceil(_density(ctx, peak) / factor * rf[2] * rf[3])
        msg = (f"representation drops {drop:.1f}x on the main path, from {chw(ps)} ({count(math.prod(ps))} values, "
               f"{ctx.path(peak)}) to {chw(ls)} ({count(math.prod(ls))}, {ctx.path(low)}); limit "
               f"{factor:g}x{', early in the network' if early else ''}")
        hint = f"keep at least {need} channels at {grid(ls)}"
        conv = _last_weight(ctx, low, peak)
        ev = {"peak": list(ps), "valley": list(ls), "drop": round(drop, 3), "limit": factor, "min_channels": need}
        if conv is not None and ctx.op(conv) == "conv2d" and ctx.shape(conv)[0] < need:
            cs, cin = ctx.shape(conv), ctx.in_shape(conv)[0]
            kh, kw = ctx.node(conv)["args"]["kernel"]
            grow = need - cs[0]
            dw, dm = kh * kw * cin * grow, kh * kw * cin * grow * cs[1] * cs[2]
            hint += (f": widen {ctx.path(conv)} from {cs[0]} to {need} channels (+{count(dw)} weights, "
                     f"+{macs(dm)} MACs)")
            ev.update(widen=ctx.path(conv), extra_weights=dw, extra_macs=dm)
        elif ls[0] < need:
            hint += f" (it has {ls[0]})"
        yield ctx.diag("R101", WARNING if early else INFO, low, msg, hint, ev)


def _pool_stride(args: dict) -> tuple[int, int]:
    return tuple(args["stride"] if args.get("stride") is not None else args["kernel"])


@rule("R102", "pool-then-expand", WARNING,
      "a grid reduction done by pooling, after which the channels grow by `expand_factor` or more",
      "Pool-then-expand squeezes the representation exactly where the grid shrinks (a bottleneck); "
      "expand-then-pool costs about 4x more; the efficient form is a stride-2 conv branch in parallel with "
      "a stride-2 pool, concatenated.",
      "rethinking", ("expand_factor",))
def pool_then_expand(ctx: Ctx) -> Iterator[Diagnostic]:
    pts = ctx.main_points
    pos = {n: i for i, n in enumerate(ctx.order)}
    factor = ctx.options["expand_factor"]
    for k, q in enumerate(pts):
        if ctx.op(q) not in POOL_OPS or _pool_stride(ctx.node(q)["args"]) == (1, 1):
            continue
        qs, xs = ctx.shape(q), ctx.in_shape(q)
        if qs is None or xs is None or len(qs) != 3 or qs[1:] == xs[1:]:
            continue
        expand = None
        for r in pts[k + 1:]:
            rs = ctx.shape(r)
            if rs is None or len(rs) != 3 or rs[1:] != qs[1:]:
                break
            if rs[0] != qs[0]:
                expand = r
                break
        if expand is None:
            continue
        rs = ctx.shape(expand)
        if rs[0] < factor * qs[0] or (ctx.op(expand) == "concat" and ctx.node(expand)["args"].get("dense")):
            continue
        lo, hi = pos[q], pos[expand]
        now = sum(ctx.node(n)["costs"].macs for n in ctx.order[lo + 1:hi + 1] if n in ctx.eval_nodes)
        area = qs[1] * qs[2]
        before = now * (xs[1] * xs[2]) // area
        extra = rs[0] - qs[0]
        pw = 9 * qs[0] * extra
        pm = pw * area
        msg = (f"pool-then-expand grid reduction: {ctx.op(q)} takes {chw(xs)} to {chw(qs)} "
               f"({math.prod(xs) / math.prod(qs):.1f}x fewer values) and {ctx.path(expand)} then expands it to "
               f"{chw(rs)}: the representation is squeezed where the grid shrinks")
        hint = (f"reduce with a stride-2 3x3 conv ({qs[0]}->{extra}) in parallel with the pool and concatenate: "
                f"{chw(rs)} directly for {count(pw)} weights, {macs(pm)} MACs (expanding before the pool "
                f"would cost ~{macs(before)} MACs instead of {macs(now)})")
        yield ctx.diag("R102", WARNING, q, msg, hint,
                       {"input": list(xs), "pooled": list(qs), "expanded": list(rs), "parallel_weights": pw,
                        "parallel_macs": pm, "expand_macs": now, "expand_then_pool_macs": before})
