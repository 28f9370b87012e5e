"""R5xx: channel growth through concatenation (GoogLeNet's naive Inception; DenseNet-B/C)."""

from __future__ import annotations

from collections.abc import Iterator

from ...diagnostics import WARNING, Diagnostic
from ..graphctx import POOL_OPS, WEIGHT_OPS, Ctx, chw, count, grid, macs
from ..registry import rule


def _reaches_without_weights(ctx: Ctx, start: int, target: int) -> bool:
    cur = start
    for _ in range(256):
        if cur == target:
            return True
        if ctx.op(cur) in WEIGHT_OPS or ctx.op(cur) in ("concat", "add", "input") or len(ctx.preds[cur]) != 1:
            return False
        cur = ctx.preds[cur][0]
    return False


def _first_convs(ctx: Ctx, nid: int) -> list[int]:
    """Convs reading ``nid`` directly or through pass ops."""
    return [c for c in ctx.consumers_through_pass(nid) if ctx.op(c) == "conv2d"]


@rule("R501", "concat-channel-explosion", WARNING,
      "consecutive concat modules that pass their whole input through a parameter-free branch, so that channels "
      "grow by `explosion_factor` or more over the run",
      "In the naive Inception module the pooling branch carries all input channels into the concat, so the "
      "output widths add up stage after stage and the following convs get ever more expensive; GoogLeNet adds "
      "a 1x1 projection to the pooling branch.", "googlenet", ("explosion_factor",))
def channel_explosion(ctx: Ctx) -> Iterator[Diagnostic]:
    pts = ctx.main_points
    runs: list[list[tuple[int, int, int, int]]] = []   # (concat, module input, passthrough branch end, P)
    cur: list[tuple[int, int, int, int]] = []
    prev = None
    for n in pts:
        op = ctx.op(n)
        naive = None
        if op == "concat" and not ctx.node(n)["args"].get("dense") and prev is not None:
            s, x = ctx.shape(n), ctx.shape(prev)
            if s and x and len(s) == 3 and s[1:] == x[1:]:
                ins = ctx.preds[n]
                through = [i for i in ins if _reaches_without_weights(ctx, i, prev)]
                others = [ctx.shape(i)[0] for i in ins if i not in through]
                if through and others:
                    naive = (n, prev, through[0], min(others))
        if naive is not None:
            cur.append(naive)
        elif op in WEIGHT_OPS or op in ("concat", "add"):
            if cur:
                runs.append(cur)
            cur = []
        prev = n
    if cur:
        runs.append(cur)
    factor = ctx.options["explosion_factor"]
    for run in runs:
        c_in = ctx.shape(run[0][1])[0]
        outs = [ctx.shape(m[0])[0] for m in run]
        if len(run) < 2 or outs[-1] < factor * c_in:
            continue
        ins = [ctx.shape(m[1])[0] for m in run]
        proj_outs, proj_cost, cin_p = [], 0, c_in
        hw = ctx.shape(run[0][0])[1] * ctx.shape(run[0][0])[2]
        for (_, _, _, p), i, o in zip(run, ins, outs, strict=True):
            proj_cost += cin_p * p * hw
            cin_p = o - i + p
            proj_outs.append(cin_p)
        before = after = 0
        for k, (cat, _, _, _) in enumerate(run):
            for c in _first_convs(ctx, cat):
                m = ctx.node(c)["costs"].macs
                before += m
                after += m * proj_outs[k] // outs[k]
        after += proj_cost
        trail = " -> ".join(count(c) for c in [c_in] + outs)
        trail_p = " -> ".join(count(c) for c in [c_in] + proj_outs)
        first = run[0][0]
        msg = (f"channels grow {trail} over {len(run)} concat modules ({outs[-1] / c_in:.2f}x at {grid(ctx.shape(first))}):"
               f" each passes all its input channels through a parameter-free branch, so widths add up")
        hint = (f"project each pass-through branch with a 1x1 conv (GoogLeNet's pool_proj, to the narrowest "
                f"branch's width): channels {trail_p}; the layers reading these outputs go from {macs(before)} to "
                f"{macs(after)} MACs, projections included")
        yield ctx.diag("R501", WARNING, first, msg, hint,
                       {"channels": [c_in] + outs, "projected": [c_in] + proj_outs, "macs_before": before,
                        "macs_after": after, "modules": [ctx.path(m[0]) for m in run]})


def _dense_blocks(ctx: Ctx) -> list[tuple[int, list[int], set[int]]]:
    """(final concat, [x0, l1, ..., ln], concats the layers read) for every dense block.

    The concats of one block all start with the block input x0; the block output is the widest.
    """
    groups: dict[int, list[int]] = {}
    for n in ctx.nodes_with("concat"):
        if ctx.node(n)["args"].get("dense") and ctx.preds[n]:
            groups.setdefault(ctx.preds[n][0], []).append(n)
    out = []
    for x0, cats in groups.items():
        final = max(cats, key=lambda c: (len(ctx.preds[c]), c))
        out.append((final, ctx.preds[final], {x0} | set(cats) - {final}))
    return out


def _layer_entry_conv(ctx: Ctx, layer_out: int, inputs: set[int]) -> int | None:
    """The first conv of a dense layer, walking back from its output to the concat it reads."""
    cur, first = layer_out, None
    for _ in range(256):
        if cur in inputs:
            return first
        if ctx.op(cur) == "conv2d":
            first = cur
        if len(ctx.preds[cur]) != 1:
            return None
        cur = ctx.preds[cur][0]
    return None


def dense_entry_convs(ctx: Ctx) -> frozenset[int]:
    """The first conv of every dense layer (what R502 judges; R201 leaves them to it)."""
    return ctx.cached("dense_entries", lambda: frozenset(
        c for _, feats, cats in _dense_blocks(ctx) for f in feats[1:]
        if (c := _layer_entry_conv(ctx, f, cats)) is not None))


@rule("R502", "dense-without-bottleneck", WARNING,
      "DenseNet layers applying a k x k conv directly to more than `dense_bottleneck_factor` x growth-rate input "
      "channels",
      "A dense layer's input grows by k channels per layer; DenseNet-B puts a 1x1 conv to 4k channels in front "
      "of each 3x3, which cuts the cost of the wide inputs.", "densenet", ("dense_bottleneck_factor",))
def dense_bottleneck(ctx: Ctx) -> Iterator[Diagnostic]:
    factor = ctx.options["dense_bottleneck_factor"]
    for final, feats, cats in _dense_blocks(ctx):
        if len(feats) < 2:
            continue
        bad, w0, w1, m0, m1 = [], 0, 0, 0, 0
        for f in feats[1:]:
            conv = _layer_entry_conv(ctx, f, cats)
            if conv is None:
                continue
            a = ctx.node(conv)["args"]
            kh, kw = a["kernel"]
            ins, out, g = ctx.in_shape(conv), ctx.shape(conv), ctx.shape(f)[0]
            if kh * kw == 1 or ins is None or ins[0] <= factor * g:
                continue
            b = int(4 * g)
            bad.append(conv)
            w0 += kh * kw * ins[0] * out[0]
            w1 += ins[0] * b + kh * kw * b * out[0]
            m0 += ctx.node(conv)["costs"].macs
            m1 += ins[0] * b * ins[1] * ins[2] + kh * kw * b * out[0] * out[1] * out[2]
        if not bad:
            continue
        g = ctx.shape(feats[1])[0]
        scope = ctx.node(final)["scope"]
        msg = (f"{len(bad)} of {len(feats) - 1} dense layers apply a {ctx.node(bad[0])['args']['kernel'][0]}x"
               f"{ctx.node(bad[0])['args']['kernel'][1]} conv directly to more than {factor:g} x {g} (growth) input "
               f"channels (up to {max(ctx.in_shape(c)[0] for c in bad)}): {count(w0)} weights, {macs(m0)} MACs")
        hint = (f"add a 1x1 bottleneck to {int(4 * g)} channels in each layer (DenseNet-B): {count(w1)} weights, "
                f"{macs(m1)} MACs")
        yield ctx.diag("R502", WARNING, final, msg, hint,
                       {"layers": [ctx.path(c) for c in bad], "growth": g, "weights_before": w0, "weights_after": w1,
                        "macs_before": m0, "macs_after": m1}, path=scope or ctx.path(final))


def _downstream_convs(ctx: Ctx, t: int) -> list[int]:
    """Convs whose input contains ``t``'s channels: readers of ``t`` and of the dense concats holding it."""
    holders = [t] + [s for s in ctx.succs[t] if ctx.op(s) == "concat" and ctx.node(s)["args"].get("dense")]
    out: list[int] = []
    for h in holders:
        out.extend(c for c in _first_convs(ctx, h) if c not in out)
    return out


def _downstream_savings(ctx: Ctx, pool: int, delta: int) -> tuple[int, int]:
    """Weights and MACs the convs after a transition save when it emits ``delta`` fewer channels."""
    dw = dm = 0
    for c in _downstream_convs(ctx, pool):
        ca = ctx.node(c)["args"]
        co = ctx.shape(c)
        per = ca["kernel"][0] * ca["kernel"][1] * co[0] // ca["groups"]
        dw += delta * per
        dm += delta * per * co[1] * co[2]
    return dw, dm


def _strided_pool(ctx: Ctx, nid: int, grid_of: tuple) -> int | None:
    """The single pool reading ``nid`` (through pass ops) that shrinks the grid ``grid_of``."""
    pools = [p for p in ctx.consumers_through_pass(nid) if ctx.op(p) in POOL_OPS]
    if len(pools) != 1 or ctx.shape(pools[0]) is None or ctx.shape(pools[0])[1:] == grid_of[1:]:
        return None
    return pools[0]


@rule("R503", "transition-without-compression", WARNING,
      "a DenseNet transition (a 1x1 conv then a stride-2 pool after a dense block, or a pool alone) that keeps "
      "all channels",
      "DenseNet-C compresses by theta = 0.5 in each transition; without it the next dense block starts from the "
      "full width and every one of its layers pays for it. A transition that only pools has theta = 1 by "
      "construction.", "densenet", ("transition_theta",))
def transition_compression(ctx: Ctx) -> Iterator[Diagnostic]:
    theta = ctx.options["transition_theta"]
    for final, _, _ in _dense_blocks(ctx):
        fs = ctx.shape(final)
        convs = _first_convs(ctx, final)
        if not convs and fs is not None and len(fs) == 3:
            pool = _strided_pool(ctx, final, fs)
            if pool is not None:
                yield _pool_only_transition(ctx, final, pool, theta)
            continue
        if len(convs) != 1:
            continue
        conv = convs[0]
        a, ins, out = ctx.node(conv)["args"], ctx.in_shape(conv), ctx.shape(conv)
        if a["kernel"] != (1, 1) or ins is None or out is None or len(out) != 3 or out[0] < ins[0]:
            continue
        pool = _strided_pool(ctx, conv, out)
        if pool is None:
            continue
        target = max(1, int(ins[0] * theta))
        w0, w1 = ins[0] * out[0], ins[0] * target
        m0 = ctx.node(conv)["costs"].macs
        m1 = m0 * target // out[0]
        dw, dm = _downstream_savings(ctx, pool, out[0] - target)
        msg = (f"transition keeps all {out[0]} channels (theta = {out[0] / ins[0]:g}) before pooling to "
               f"{chw(ctx.shape(pool))}: no compression")
        hint = (f"compress to {target} channels (theta = {theta:g}, DenseNet-C): the transition conv goes from "
                f"{count(w0)} to {count(w1)} weights ({macs(m0)} -> {macs(m1)} MACs) and the layers after it save "
                f"{count(dw)} weights, {macs(dm)} MACs")
        yield ctx.diag("R503", WARNING, conv, msg, hint,
                       {"channels": out[0], "suggested": target, "conv_weights_before": w0, "conv_weights_after": w1,
                        "downstream_weights_saved": dw, "downstream_macs_saved": dm})


def _pool_only_transition(ctx: Ctx, final: int, pool: int, theta: float) -> Diagnostic:
    fs, ps = ctx.shape(final), ctx.shape(pool)
    target = max(1, int(fs[0] * theta))
    w1 = fs[0] * target
    m1 = w1 * fs[1] * fs[2]
    dw, dm = _downstream_savings(ctx, pool, fs[0] - target)
    msg = (f"transition only pools the dense block's {fs[0]} channels to {chw(ps)} (theta = 1 by construction): "
           f"no compression")
    hint = (f"add a 1x1 conv to {target} channels before the pool (theta = {theta:g}, DenseNet-C): +{count(w1)} "
            f"weights, +{macs(m1)} MACs, and the layers after it save {count(dw)} weights, {macs(dm)} MACs")
    return ctx.diag("R503", WARNING, pool, msg, hint,
                    {"channels": fs[0], "suggested": target, "conv_weights_after": w1, "conv_macs_after": m1,
                     "downstream_weights_saved": dw, "downstream_macs_saved": dm})
