"""R1xx: the representation along the main path (principle 1 of "Rethinking the Inception Architecture")."""

from __future__ import annotations

import math
from collections.abc import Iterator

from ...diagnostics import INFO, WARNING, Diagnostic
from ..graphctx import PASS_OPS, POOL_OPS, WEIGHT_OPS, Ctx, chw, count, grid, macs
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


def carried_densities(ctx: Ctx, pts: list[int]) -> dict[int, float | None]:
    """The representation each main-path point *carries*, per input pixel; None for a transient one.

    - A 1x1 expansion adds dimensions but no information its input lacked; it and the depthwise convs,
      gates, norms and activations after it are *transient* (MobileNetV2 section 3.2: the expansion is
      "an implementation detail" of the narrow bottleneck), so they are not peaks.  So is a widening
      k x k conv that a 1x1 projection narrows again (a fused MBConv; MobileNetV2's own stem conv
      followed by its first depthwise block).
    - A pool or a pass op carries no more than what it reads; a concatenation carries the sum of its
      branches, a branch ending in a 1x1 expansion counting only that expansion's input.
    - A dense block's concatenation counts at ``transition_theta`` of its width: DenseNet-C compresses
      it by that factor by design (R503 judges the compression itself).
    """
    return ctx.cached("carried", lambda: _carried(ctx, pts))


def _carried(ctx: Ctx, pts: list[int]) -> dict[int, float | None]:
    theta = ctx.options["transition_theta"]
    out: dict[int, float | None] = {}
    for p in pts:
        d = _density(ctx, p)
        if ctx.op(p) == "concat":
            d = d * theta if ctx.node(p)["args"].get("dense") else _concat_width(ctx, p) / _jump_area(ctx, p)
        prev = ctx.preds[p][0] if len(ctx.preds[p]) == 1 else None
        if prev is not None and out.get(prev) is not None and (ctx.op(p) in PASS_OPS or ctx.op(p) in POOL_OPS):
            d = min(d, out[prev])   # a pool or a norm carries no more than what it reads
        out[p] = d
    for start, end in _expansions(ctx, pts):
        for p in pts[start:end]:
            out[p] = None
    return out


def _concat_width(ctx: Ctx, nid: int) -> int:
    """The channels a concatenation carries: a branch that ends in a 1x1 expansion carries only its
    input's width (SqueezeNet's expand1x1 next to expand3x3, for example)."""
    total = 0
    for b in ctx.preds[nid]:
        prod = b if ctx.op(b) not in PASS_OPS else ctx.producer(b)
        width = ctx.shape(b)[0]
        if prod is not None and ctx.is_expansion(prod):
            width = min(width, ctx.in_shape(prod)[0])
        total += width
    return total


def _follows_expansion(ctx: Ctx, p: int) -> bool:
    """Ops that keep an expanded tensor expanded: norms, activations, gates, depthwise convs."""
    return ctx.op(p) in PASS_OPS or ctx.op(p) == "mul" or ctx.is_depthwise(p)


def _expansions(ctx: Ctx, pts: list[int]) -> Iterator[tuple[int, int]]:
    """Index ranges ``[start, end)`` of ``pts`` holding an expanded tensor: from a 1x1 expansion, or from
    a widening k x k conv that a 1x1 projection narrows again by at most ``bottleneck_factor``
    (EfficientNetV2's fused MBConv narrows 3-4x), up to the projection."""
    i = 0
    while i < len(pts):
        p = pts[i]
        ins, out = ctx.in_shape(p), ctx.shape(p)
        widens = (ctx.op(p) == "conv2d" and ctx.node(p)["args"]["groups"] == 1 and ins is not None
                  and out[0] > ins[0])
        if not widens:
            i += 1
            continue
        j = i + 1
        while j < len(pts) and _follows_expansion(ctx, pts[j]):
            j += 1
        factor = ctx.options["bottleneck_factor"]
        projected = (j < len(pts) and ctx.op(pts[j]) == "conv2d" and ctx.node(pts[j])["args"]["kernel"] == (1, 1)
                     and out[0] / factor <= ctx.shape(pts[j])[0] < out[0])
        if ctx.is_expansion(p) or projected:
            yield i, j
        i = j


def _reduction_before_aggregation(ctx: Ctx, nid: int) -> bool:
    """Is ``nid`` the output of a moderate 1x1 reduction (or its norm/activation) that a conv with a
    spatial kernel reads?  That is principle 3 ("before performing a more spread out convolution, one
    can reduce the dimension of the input representation"), not a bottleneck, as long as the 1x1
    itself does not compress by more than twice ``bottleneck_factor`` (SqueezeNet squeezes 4-6x; a
    squeeze to a handful of channels is the extreme compression principle 1 forbids)."""
    prod = nid if ctx.op(nid) == "conv2d" else ctx.producer(nid)
    if prod is None or ctx.op(prod) != "conv2d" or ctx.node(prod)["args"]["kernel"] != (1, 1):
        return False
    ins, out = ctx.in_shape(prod), ctx.shape(prod)
    if ins is None or out is None or ins[0] > 2 * ctx.options["bottleneck_factor"] * out[0]:
        return False
    return any(ctx.op(c) == "conv2d" and max(ctx.node(c)["args"]["kernel"]) > 1
               for c in ctx.consumers_through_pass(nid))


@rule("R101", "representational-bottleneck", WARNING,
      "the representation (C x H x W, per input pixel) drops by more than `bottleneck_factor` between consecutive "
      "stages of the main path",
      "An extreme compression of the representation loses information later layers cannot recover; it "
      "should shrink gently from input to output, and a bottleneck is worst early in the network.",
      "rethinking", ("bottleneck_factor", "grid", "transition_theta"),
      severity_note="warning on early (larger than the medium range) grids, info later")
def representational_bottleneck(ctx: Ctx) -> Iterator[Diagnostic]:
    """A stage is a run of main-path points on one grid.  Each point is compared with the largest
    representation carried in its own stage so far and in the previous stage; a run of points beyond
    the limit is one finding, reported at its worst point.  A run whose every point is a 1x1 reduction
    read by a spatial conv (principle 3) is not a finding."""
    pts = _feature_points(ctx)
    carried = carried_densities(ctx, pts)
    factor = ctx.options["bottleneck_factor"]
    best_prev = best_cur = None   # (carried density, node) maxima of the previous and current stage
    hw = None
    run: list[tuple[float, int, int]] = []
    excused = True
    found: list[tuple[float, int, int]] = []
    for p in pts:
        d = _density(ctx, p)
        s = ctx.shape(p)
        if s[1:] != hw:
            best_prev, best_cur, hw = best_cur, None, s[1:]
        ref = max((x for x in (best_prev, best_cur) if x is not None), default=None, key=lambda x: x[0])
        if ref is not None and ref[0] / d > factor:
            run.append((ref[0] / d, ref[1], p))
            excused = excused and _reduction_before_aggregation(ctx, p)
        elif run:
            if not excused:
                found.append(max(run, key=lambda x: x[0]))
            run, excused = [], True
        c = carried[p]
        if c is not None and (best_cur is None or c > best_cur[0]):
            best_cur = (c, p)
    if run and not excused:
        found.append(max(run, key=lambda x: x[0]))
    for drop, peak, low in found:
        yield _bottleneck_finding(ctx, drop, peak, low, carried[peak], factor)


def _bottleneck_finding(ctx: Ctx, drop: float, peak: int, low: int, peak_density: float,
                        factor: float) -> Diagnostic:
    ps, ls = ctx.shape(peak), ctx.shape(low)
    early = _is_early(ctx, ps)
    rf = ctx.node(low)["rf"]
    need = math.ceil(peak_density / factor * rf[2] * rf[3])
    if ctx.op(peak) == "concat" and ctx.node(peak)["args"].get("dense"):
        theta = ctx.options["transition_theta"]
        source = (f"{chw(ps)} counted at theta = {theta:g} ({count(math.prod(ps) * theta)} values, "
                  f"{ctx.describe(peak)}, a dense block's output)")
    else:
        source = f"{chw(ps)} ({count(math.prod(ps))} values, {ctx.describe(peak)})"
    msg = (f"representation drops {drop:.1f}x on the main path, from {source} to {chw(ls)} "
           f"({count(math.prod(ls))}, {ctx.describe(low)}); limit {factor:g}x{', early in the network' if early else ''}")
    hint = f"keep at least {need} channels at {grid(ls)}"
    conv = _last_weight(ctx, low, peak)
    ev = {"peak": list(ps), "valley": list(ls), "drop": round(drop, 3), "limit": factor, "min_channels": need}
    if conv is not None and ctx.op(conv) == "conv2d" and ctx.shape(conv)[0] < need:
        cs, cin = ctx.shape(conv), ctx.in_shape(conv)[0]
        kh, kw = ctx.node(conv)["args"]["kernel"]
        grow = need - cs[0]
        dw, dm = kh * kw * cin * grow, kh * kw * cin * grow * cs[1] * cs[2]
        hint += (f": widen {ctx.describe(conv)} from {cs[0]} to {need} channels (+{count(dw)} weights, "
                 f"+{macs(dm)} MACs)")
        ev.update(widen=ctx.path(conv), extra_weights=dw, extra_macs=dm)
    elif ls[0] < need:
        hint += f" (it has {ls[0]})"
    return ctx.diag("R101", WARNING if early else INFO, low, msg, hint, ev)


def _pool_stride(args: dict) -> tuple[int, int]:
    return tuple(args["stride"] if args.get("stride") is not None else args["kernel"])


def _expansion_after(ctx: Ctx, pts: list[int], k: int) -> tuple[int, int, int] | None:
    """The widest point (by carried width) on the pooled grid before the next grid change, up to and
    including the first merge: the width the pool's output is expanded to by the layers after it.
    Returns ``(point, its carried width, the pool's carried width)``; None if a dense concatenation
    comes first (DenseNet's transitions are R503's business)."""
    carried = carried_densities(ctx, _feature_points(ctx))
    q = pts[k]
    pooled = ctx.shape(q)
    start = _carried_width(ctx, q, carried)
    best, best_c = None, start
    for r in pts[k + 1:]:
        rs = ctx.shape(r)
        if rs is None or len(rs) != 3 or rs[1:] != pooled[1:]:
            break
        if ctx.op(r) == "concat" and ctx.node(r)["args"].get("dense"):
            return None
        width = _carried_width(ctx, r, carried)
        if width is not None and width > best_c:
            best, best_c = r, width
        if ctx.op(r) in ("concat", "add"):
            break
    return None if best is None else (best, best_c, start)


def _carried_width(ctx: Ctx, nid: int, carried: dict[int, float | None]) -> int | None:
    c = carried.get(nid)
    return None if c is None else min(ctx.shape(nid)[0], math.floor(c * _jump_area(ctx, nid) + 1e-9))


def _jump_area(ctx: Ctx, nid: int) -> int:
    rf = ctx.node(nid)["rf"] or (1, 1, 1, 1)
    return rf[2] * rf[3]


#: How much the papers' stems widen after their first pool: Inception v3 64 -> 192 (3x), ResNet's
#: layer1 64 -> 256 (4x).  A stem that widens more after pooling is judged like any other pool.
STEM_WIDENING = 4


def _is_stem_pool(ctx: Ctx, pts: list[int], k: int) -> bool:
    """The network's first pooling grid reduction, while the representation is still at least as large
    as the input: the stem, which builds the representation (Rethinking's own Inception-v3 stem pools 64
    channels and then widens to 80 and 192, Table 1; GoogLeNet, BN-Inception and ResNet do the same)."""
    inp = ctx.graph.input_shape
    for q in pts[:k]:
        if ctx.op(q) in POOL_OPS and _pool_stride(ctx.node(q)["args"]) != (1, 1):
            return False
    qs = ctx.shape(pts[k])
    return inp is not None and math.prod(qs) >= math.prod(inp)


@rule("R102", "pool-then-expand", WARNING,
      "a grid reduction done by pooling, after which the channels grow by `expand_factor` or more (the stem's "
      "first pool excepted up to 4x, as the papers' stems do)",
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
        found = _expansion_after(ctx, pts, k)
        if found is None or found[2] is None or found[1] < factor * found[2]:
            continue
        if _is_stem_pool(ctx, pts, k) and found[1] <= STEM_WIDENING * found[2]:
            continue
        expand = found[0]
        rs = ctx.shape(expand)
        lo, hi = pos[q], pos[expand]
        now = sum(ctx.node(n)["costs"].macs for n in ctx.order[lo + 1:hi + 1] if n in ctx.eval_nodes)
        area = qs[1] * qs[2]
        before = now * (xs[1] * xs[2]) // area
        extra = rs[0] - qs[0]
        pw = 9 * qs[0] * extra
        pm = pw * area
        msg = (f"pool-then-expand grid reduction: {ctx.op(q)} takes {chw(xs)} to {chw(qs)} "
               f"({math.prod(xs) / math.prod(qs):.1f}x fewer values) and {ctx.describe(expand)} then expands it to "
               f"{chw(rs)}: the representation is squeezed where the grid shrinks")
        hint = (f"reduce with a stride-2 3x3 conv ({qs[0]}->{extra}) in parallel with the pool and concatenate: "
                f"{chw(rs)} directly for {count(pw)} weights, {macs(pm)} MACs (expanding before the pool "
                f"would cost ~{macs(before)} MACs instead of {macs(now)})")
        yield ctx.diag("R102", WARNING, q, msg, hint,
                       {"input": list(xs), "pooled": list(qs), "expanded": list(rs), "parallel_out": extra,
                        "parallel_weights": pw, "parallel_macs": pm, "expand_macs": now,
                        "expand_then_pool_macs": before})
