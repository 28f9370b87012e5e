"""R2xx: spatial convolutions that a 1x1 reduction would make cheaper (principle 3)."""

from __future__ import annotations

from collections.abc import Iterator

from ...diagnostics import INFO, WARNING, Diagnostic
from ..graphctx import PASS_OPS, Ctx, count, grid, hwc, kernel_text, macs, pct, ratio
from ..registry import rule


def has_reduction(ctx: Ctx, conv: int) -> bool:
    """Is there a 1x1 conv between ``conv`` and the last fork or merge upstream of it?

    A 1x1 conv shared by several branches (its activation forks) still counts.
    """
    preds = ctx.preds[conv]
    if not preds:
        return False
    cur = preds[0]
    for _ in range(256):
        data = ctx.node(cur)
        if data["op"] == "conv2d" and data["args"]["kernel"] == (1, 1):
            return True
        if data["op"] in ("input", "concat", "add") or len(ctx.preds[cur]) != 1:
            return False
        if len(ctx.succs[cur]) > 1 and data["op"] not in PASS_OPS:
            return False  # a fork: what feeds it is shared with other branches, not a reduction for this one
        cur = ctx.preds[cur][0]
    return False


def residual_bodies(ctx: Ctx) -> Iterator[tuple[int, int, list[int]]]:
    """``(add, fork, convs)`` for every residual add whose body is a plain chain from the fork."""
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
            if len(ctx.preds[cur]) != 1:
                ok = False
                break
            chain.append(cur)
            cur = ctx.preds[cur][0]
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
      "a k x k conv (k >= 3) on at least `reduce_min_channels` input channels with no 1x1 reduction in front, "
      "where reducing to `reduce_ratio` of the channels saves more than `reduce_min_saving` of its weights",
      "Spatial aggregation can be done over a lower-dimensional embedding with little loss: a 1x1 reduction "
      "before a 3x3 or 5x5 convolution is cheap and harmless, and the k x k conv's cost scales with its input "
      "channels.", "rethinking", ("reduce_min_channels", "reduce_ratio", "reduce_min_saving"))
def unreduced_conv(ctx: Ctx) -> Iterator[Diagnostic]:
    o = ctx.options
    in_basic = {c for _, _, convs in basic_blocks(ctx) for c in convs}
    for n in ctx.nodes_with("conv2d"):
        a = ctx.node(n)["args"]
        kh, kw = a["kernel"]
        ins, out = ctx.in_shape(n), ctx.shape(n)
        if max(kh, kw) < 3 or a["groups"] != 1 or ins is None or out is None or n in in_basic:
            continue
        cin, cout = ins[0], out[0]
        if cin < o["reduce_min_channels"] or has_reduction(ctx, n):
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
      "convs; ResNet uses it to make 50+ layer networks affordable.", "resnet", ("bottleneck_min_channels",))
def basic_block(ctx: Ctx) -> Iterator[Diagnostic]:
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
        hint = ("a Bottleneck block (as in ResNet-50/101/152) buys depth at this cost; the two-conv block is the "
                "paper's choice only for the shallow ResNet-18/34")
        yield ctx.diag("R202", INFO, add, msg, hint,
                       {"channels_in": cin, "channels_out": cout, "mid": mid, "weights_before": before,
                        "weights_after": after, "macs_before": m0, "macs_after": m1,
                        "ratio": round(before / after, 2)}, path=scope or ctx.path(add))
