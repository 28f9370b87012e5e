"""R2xx: spatial convolutions that a 1x1 reduction would make cheaper (principle 3)."""

from __future__ import annotations

from collections.abc import Iterator

from ...diagnostics import INFO, WARNING, Diagnostic
from ..graphctx import PASS_OPS, POOL_OPS, Ctx, count, grid, hwc, kernel_text, macs, pct, ratio
from ..registry import rule
from .topology import dense_entry_convs


def has_reduction(ctx: Ctx, conv: int) -> bool:
    """Does ``conv`` aggregate over an embedding a 1x1 conv chose: walking upstream through pass ops and
    other spatial convs (a branch's 3x3 stack) to the last fork or merge, is there a 1x1 conv?

    A 1x1 right in front sets the k x k's input width by design (Inception's reductions, ResNet's and
    DenseNet-B's bottleneck 1x1, which may even widen a narrow input).  Behind another spatial conv
    only a 1x1 that does not widen counts, and only while the k x k still reads fewer channels than
    that 1x1 did (Inception's 3x3 stack reads 96 of 288): an early *expansion*, or a 3x3 that widens
    back, does not make every later k x k cheap.
    A 1x1 conv shared by several branches (its activation forks) still counts.
    """
    preds = ctx.preds[conv]
    cur = preds[0] if preds else None
    behind_spatial = False
    for _ in range(256):
        if cur is None:
            return False
        data = ctx.node(cur)
        if data["op"] == "conv2d" and data["args"]["kernel"] == (1, 1):
            ins, out = ctx.in_shape(cur), ctx.shape(cur)
            if not behind_spatial:
                return True
            reads = ctx.in_shape(conv)
            return (ins is not None and out is not None and reads is not None and out[0] <= ins[0]
                    and reads[0] < ins[0])
        if data["op"] == "conv2d":
            behind_spatial = True
        if data["op"] in ("input", "concat", "add") or len(ctx.preds[cur]) != 1:
            return False
        if data["op"] != "conv2d" and data["op"] not in PASS_OPS:
            return False
        if len(ctx.succs[cur]) > 1 and data["op"] not in PASS_OPS:
            return False  # a fork: what feeds it is shared with other branches, not a reduction for this one
        cur = ctx.preds[cur][0]
    return False


def inverted_expansion(ctx: Ctx, conv: int) -> bool:
    """Is ``conv`` the widening k x k of a (fused) inverted residual: a 1x1 projection narrows its output
    again?  Its narrow input *is* the block's bottleneck (EfficientNetV2's Fused-MBConv, MobileNetV2's
    linear bottleneck), so there is nothing to reduce in front of it."""
    ins, out = ctx.in_shape(conv), ctx.shape(conv)
    if ins is None or out is None or out[0] <= ins[0]:
        return False
    nxt = [c for c in ctx.consumers_through_pass(conv) if ctx.op(c) != "mul"]
    return (len(nxt) == 1 and ctx.op(nxt[0]) == "conv2d" and ctx.node(nxt[0])["args"]["kernel"] == (1, 1)
            and ctx.shape(nxt[0])[0] < out[0])


def in_grid_reduction(ctx: Ctx, conv: int) -> bool:
    """Is ``conv`` a strided conv in a branch of a grid-reduction module: concatenated with a branch that
    is a strided pool of the same input (Rethinking section 5, Figure 10)?  That is the paper's own
    efficient reduction, where a 1x1 in front would re-create the bottleneck it avoids."""
    if ctx.node(conv)["args"]["stride"] == (1, 1):
        return False
    cur = conv
    for _ in range(64):
        succs = [s for s in ctx.succs[cur] if s in ctx.eval_nodes]
        if len(succs) != 1:
            return False
        cur = succs[0]
        if ctx.op(cur) == "concat":
            break
    else:
        return False
    if ctx.op(cur) != "concat":
        return False
    for b in ctx.preds[cur]:
        p = b if ctx.op(b) in POOL_OPS else ctx.producer(b)
        if p is not None and ctx.op(p) in POOL_OPS and tuple(ctx.node(p)["args"].get("stride") or (2, 2)) != (1, 1):
            return True
    return False


def residual_bodies(ctx: Ctx) -> Iterator[tuple[int, int, list[int]]]:
    """``(add, fork, convs)`` for every residual add whose body is a plain chain from the fork (a
    squeeze-and-excitation gate on the chain is looked through: SE-ResNet's blocks are still basic or
    bottleneck blocks)."""
    gates = ctx.gate_nodes()
    for add in ctx.nodes_with("add"):
        preds = ctx.preds[add]
        if len(preds) != 2:
            continue
        body_out, short_out = preds
        fork = short_out
        for _ in range(64):
            if len(ctx.succs[fork]) != 1 or len(ctx.preds[fork]) != 1:
                break
            fork = ctx.preds[fork][0]
        chain, cur, ok = [], body_out, True
        for _ in range(256):
            if cur == fork:
                break
            feature = [p for p in ctx.preds[cur] if p not in gates]
            if len(feature) != 1:
                ok = False
                break
            chain.append(cur)
            cur = feature[0]
        else:
            ok = False
        if ok and cur == fork:
            yield add, fork, [n for n in reversed(chain) if ctx.op(n) == "conv2d"]


def basic_blocks(ctx: Ctx) -> list[tuple[int, int, list[int]]]:
    """Residual bodies made of exactly two square k x k (k >= 3) dense convs."""
    return ctx.cached("basic_blocks", lambda: list(_basic_blocks(ctx)))


def _basic_blocks(ctx: Ctx) -> Iterator[tuple[int, int, list[int]]]:
    for add, fork, convs in residual_bodies(ctx):
        if len(convs) != 2:
            continue
        ok = True
        for c in convs:
            a = ctx.node(c)["args"]
            kh, kw = a["kernel"]
            if kh != kw or kh < 3 or a["groups"] != 1:
                ok = False
        if ok and ctx.shape(add) is not None and ctx.shape(fork) is not None and len(ctx.shape(add)) == 3:
            yield add, fork, convs


@rule("R201", "unreduced-spatial-conv", WARNING,
      "a k x k conv (k >= 3) in a branch or residual body, on at least `reduce_min_channels` input channels, with "
      "no 1x1 reduction in front, where reducing to `reduce_ratio` of the channels saves more than "
      "`reduce_min_saving` of its weights",
      "Spatial aggregation can be done over a lower-dimensional embedding with little loss: a 1x1 reduction "
      "before a 3x3 or 5x5 convolution is cheap and harmless, and the k x k conv's cost scales with its input "
      "channels. Not on the main path (a reduction there is the bottleneck principle 1 forbids), not for the "
      "stride-2 branch of a grid reduction (Figure 10), not for the widening conv of an inverted residual.",
      "rethinking", ("reduce_min_channels", "reduce_ratio", "reduce_min_saving"))
def unreduced_conv(ctx: Ctx) -> Iterator[Diagnostic]:
    o = ctx.options
    in_basic = {c for _, _, convs in basic_blocks(ctx) for c in convs}
    main = set(ctx.main_points) | dense_entry_convs(ctx)   # dense layers: R502's business
    for n in ctx.nodes_with("conv2d"):
        a = ctx.node(n)["args"]
        kh, kw = a["kernel"]
        ins, out = ctx.in_shape(n), ctx.shape(n)
        if max(kh, kw) < 3 or a["groups"] != 1 or ins is None or out is None or n in in_basic or n in main:
            continue
        cin, cout = ins[0], out[0]
        if (cin < o["reduce_min_channels"] or has_reduction(ctx, n) or in_grid_reduction(ctx, n)
                or inverted_expansion(ctx, n)):
            continue
        r = max(1, round(cin * o["reduce_ratio"]))
        before = kh * kw * cin * cout
        after = cin * r + kh * kw * r * cout
        if 1 - after / before <= o["reduce_min_saving"]:
            continue
        m0 = ctx.node(n)["costs"].macs
        m1 = cin * r * ins[1] * ins[2] + kh * kw * r * cout * out[1] * out[2]
        msg = (f"{kernel_text((kh, kw))} conv on {hwc(ins)} with {cout} filters has no 1x1 reduction in front: "
               f"{count(before)} weights; reducing to {r} channels first: {count(after)} ({pct(before, after)}), "
               f"{macs(m0)} -> {macs(m1)} MACs")
        hint = f"insert a 1x1 conv to {r} channels (with the spec's BN/ReLU) before it, as Inception's branches do"
        yield ctx.diag("R201", WARNING, n, msg, hint,
                       {"kernel": [kh, kw], "input": list(ins), "out": cout, "reduce_to": r, "weights_before": before,
                        "weights_after": after, "macs_before": m0, "macs_after": m1})


@rule("R202", "basic-block-vs-bottleneck", INFO,
      "a residual body of two k x k convs on at least `bottleneck_min_channels` channels, compared with the "
      "1x1-kxk-1x1 bottleneck",
      "The bottleneck block (1x1 reduce to a quarter, 3x3, 1x1 expand) costs a fraction of two full-width 3x3 "
      "convs; ResNet uses it to make 50+ layer networks affordable. Only in networks deeper than 34 weight "
      "layers: the paper itself keeps the two-conv block for ResNet-18/34.", "resnet", ("bottleneck_min_channels",))
def basic_block(ctx: Ctx) -> Iterator[Diagnostic]:
    out_node = ctx.graph.outputs.get("main")
    if out_node is None or ctx.depths()["longest"].get(out_node, 0) <= 34:
        return
    for add, fork, convs in basic_blocks(ctx):
        out, ins = ctx.shape(add), ctx.shape(fork)
        cout, cin = out[0], ins[0]
        if cout < ctx.options["bottleneck_min_channels"]:
            continue
        k = ctx.node(convs[0])["args"]["kernel"][0]
        mid = max(1, cout // 4)
        before = sum(ctx.node(c)["args"]["kernel"][0] * ctx.node(c)["args"]["kernel"][1]
                     * ctx.in_shape(c)[0] * ctx.shape(c)[0] for c in convs)
        after = cin * mid + k * k * mid * mid + mid * cout
        m0 = sum(ctx.node(c)["costs"].macs for c in convs)
        m1 = cin * mid * ins[1] * ins[2] + (k * k * mid * mid + mid * cout) * out[1] * out[2]
        scope = ctx.node(add)["scope"]
        msg = (f"residual body of two {k}x{k} convs on {cout} channels ({grid(out)}): a bottleneck 1x1 {cin}->{mid}, "
               f"{k}x{k} {mid}->{mid}, 1x1 {mid}->{cout} has {count(after)} weights vs {count(before)} "
               f"({ratio(before, after)} fewer), {macs(m1)} vs {macs(m0)} MACs")
        hint = ("at this depth use a Bottleneck block (as ResNet-50/101/152 do): the two-conv block is the "
                "paper's choice only for the shallow ResNet-18/34")
        yield ctx.diag("R202", INFO, add, msg, hint,
                       {"channels_in": cin, "channels_out": cout, "mid": mid, "weights_before": before,
                        "weights_after": after, "macs_before": m0, "macs_after": m1,
                        "ratio": round(before / after, 2)}, path=scope or ctx.path(add))
