"""R4xx: normalization, activations and depth (Batch Normalization; ResNet)."""

from __future__ import annotations

from collections.abc import Iterator

from ...diagnostics import WARNING, Diagnostic, Loc
from ..graphctx import WEIGHT_OPS, Ctx, count, hwc
from ..registry import rule

#: Ops that commute with adding a per-channel constant: max(x + b) = max(x) + b, mean(x + b) = mean(x) + b.
SHIFT_COMMUTING = frozenset(("maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool", "global_avgpool",
                             "global_maxpool", "flatten", "identity", "concat", "add"))

#: Why the bias still cancels behind each kind of op (R401's message).
_THROUGH = {
    "concat": "the bias stays on its own channels of the concat, and BN subtracts each channel's mean",
    "add": "a constant added to one input of a sum is still there in the sum, and BN subtracts the mean",
    "flatten": "flatten keeps each channel's constant, and BN subtracts the mean",
    "identity": "BN subtracts the mean",
}


def _feeds_batchnorm(ctx: Ctx, nid: int) -> bool:
    """Does ``nid``'s output reach a batchnorm as its only consumer, through ops that pass a
    per-channel constant unchanged (pooling, flatten, a concat, a residual add)?"""
    cur = nid
    for _ in range(64):
        succ = ctx.succs[cur]
        if len(succ) != 1:
            return False
        cur = succ[0]
        if ctx.op(cur) == "batchnorm":
            return True
        if ctx.op(cur) not in SHIFT_COMMUTING:
            return False
    return False


@rule("R401", "bias-before-batchnorm", WARNING,
      "a conv or linear layer with a bias whose output goes into batch normalization directly or through "
      "ops a per-channel constant passes unchanged (pooling, flatten, a concat, a residual add)",
      "BN subtracts the batch mean, so a bias before it cancels out; BN's own shift (beta) does its job. "
      "The bias parameters are wasted. A max or average pool in between changes nothing: max(x + b) = "
      "max(x) + b.", "bn")
def bias_before_bn(ctx: Ctx) -> Iterator[Diagnostic]:
    groups: dict[Loc, list[int]] = {}
    for n in ctx.nodes_with(*WEIGHT_OPS):
        if not ctx.node(n)["args"].get("bias"):
            continue
        if _feeds_batchnorm(ctx, n) and ctx.shape(n) is not None:
            groups.setdefault(ctx.site_loc(n), []).append(n)
    for loc, nodes in groups.items():
        wasted = sum(ctx.shape(n)[0] for n in nodes)
        op = ctx.op(nodes[0])
        if len(nodes) == 1:
            nxt = ctx.op(ctx.succs[nodes[0]][0])
            why = _THROUGH.get(nxt, "pooling passes a per-channel constant through: max(x + b) = max(x) + b, and BN "
                                    "subtracts the mean")
            via = "right after it (BN subtracts the mean)" if nxt == "batchnorm" else f"after the {nxt} ({why})"
            msg = f"{op} bias is cancelled by the batchnorm {via}: {count(wasted)} wasted parameters"
        else:
            shown = ", ".join(ctx.path(n) for n in nodes[:3]) + (", ..." if len(nodes) > 3 else "")
            msg = (f"{len(nodes)} {op} layers from this line have biases that the batchnorm after each cancels: "
                   f"{count(wasted)} wasted parameters ({shown})")
        yield ctx.diag("R401", WARNING, nodes[0], msg, f"set bias = false (-{count(wasted)} params; BN's beta "
                       "keeps the shift)",
                       {"layers": [ctx.path(n) for n in nodes], "wasted_params": wasted}, loc=loc)


#: The depth (weight layers) of LeNet-5, which trained with squashing non-linearities: saturation is a
#: problem of deeper networks ("This effect is amplified as the network depth increases", BN paper §1).
SHALLOW_SATURATING_DEPTH = 5


@rule("R402", "saturating-activation", WARNING,
      "sigmoid or tanh inside a network deeper than LeNet-5 (5 weight layers) whose input is not "
      "batch-normalized",
      "Saturating non-linearities stall training: their gradient vanishes once inputs drift into the flat "
      "regions, an effect the BN paper says is amplified as the network depth increases. BN keeps the inputs "
      "in range (the paper made sigmoid networks trainable with it); ReLU avoids the problem.", "bn")
def saturating(ctx: Ctx) -> Iterator[Diagnostic]:
    out = ctx.graph.outputs.get("main")
    if out is None or ctx.depths()["longest"].get(out, 0) <= SHALLOW_SATURATING_DEPTH:
        return
    for n in ctx.nodes_with("sigmoid", "tanh"):
        preds, succs = ctx.preds[n], ctx.succs[n]
        if not preds or not succs or all(ctx.op(s) in ("output", "mul") for s in succs):
            continue  # a gate's sigmoid (squeeze-and-excitation) is meant to saturate into [0, 1]
        src = preds[0]
        if ctx.op(src) == "batchnorm":
            continue
        s = ctx.in_shape(n)
        where = hwc(s) if s is not None and len(s) == 3 else (f"{s[0]} features" if s else "its input")
        bn = 2 * s[0] if s else 0
        yield ctx.diag("R402", WARNING, n,
                       f"{ctx.op(n)} on {where} without batch normalization in front saturates: its gradient "
                       f"vanishes for large inputs, which stalls deep training",
                       f"use relu, or put a batchnorm before it (+{count(bn)} params)",
                       {"activation": ctx.op(n), "input": list(s or ()), "bn_params": bn})


@rule("R403", "deep-unnormalized-stack", WARNING,
      "more than `max_unnormalized_depth` weight layers in a row with no batch normalization between them",
      "Deep stacks without normalization train slowly and are sensitive to initialization and learning rate; "
      "BN between the linear transform and the non-linearity (z = g(BN(Wu))) fixes the input distribution of "
      "every layer. The limit, 22, is the deepest network the papers trained without it (GoogLeNet); He et al. "
      "2015 report a 30-layer plain ReLU net that does not converge with Xavier initialization.", "bn",
      ("max_unnormalized_depth",))
def unnormalized(ctx: Ctx) -> Iterator[Diagnostic]:
    length, first, last = ctx.depths()["unnormalized"]
    limit = ctx.options["max_unnormalized_depth"]
    if length <= limit or first is None:
        return
    convs = [n for n in ctx.nodes_with("conv2d") if not any(ctx.op(s) == "batchnorm" for s in ctx.succs[n])]
    bn = sum(2 * ctx.shape(n)[0] for n in convs if ctx.shape(n))
    bias = sum(ctx.shape(n)[0] for n in convs if ctx.shape(n) and ctx.node(n)["args"]["bias"])
    msg = (f"{length} weight layers in a row without batch normalization ({ctx.describe(first)} -> "
           f"{ctx.describe(last)}); "
           f"limit {limit}")
    hint = (f"put batchnorm between each conv and its activation: +{count(bn)} params for {len(convs)} convs, and "
            f"their biases become redundant (-{count(bias)})")
    yield ctx.diag("R403", WARNING, None, msg, hint,
                   {"depth": length, "first": ctx.path(first), "last": ctx.path(last), "limit": limit,
                    "bn_params": bn, "convs_without_bn": len(convs), "redundant_biases": bias})


def plain_chains(ctx: Ctx) -> tuple[int, int | None, int | None]:
    """The longest chain of weight layers no shortcut or branch bypasses: ``(length, first, last)``.

    A chain continues from ``p`` to ``n`` when ``n`` reads only ``p`` and ``p`` feeds only ``n`` (among
    the eval graph's nodes, a squeeze-and-excitation gate's own layers left out: a gate rescales the
    features, it is not a second path for them).  Every input-to-output path crosses the whole chain.
    """
    gates = ctx.gate_nodes()
    ev = ctx.eval_nodes
    run: dict[int, tuple[int, int | None]] = {}
    best: tuple[int, int | None, int | None] = (0, None, None)
    for n in ctx.order:
        if n not in ev or n in gates:
            continue
        preds = [p for p in ctx.preds[n] if p not in gates]
        w = 1 if ctx.op(n) in WEIGHT_OPS else 0
        prev: tuple[int, int | None] = (0, None)
        if len(preds) == 1 and sum(1 for s in ctx.succs[preds[0]] if s in ev and s not in gates) == 1:
            prev = run[preds[0]]
        cur = (prev[0] + w, (prev[1] if prev[0] else n) if w else prev[1])
        run[n] = cur
        if w and cur[0] > best[0]:
            best = (cur[0], cur[1], n)
    return best


@rule("R404", "deep-plain-stack", WARNING,
      "more than `max_plain_depth` weight layers in one plain chain: no residual, concat or branch path "
      "around any of them",
      "Plain networks degrade with depth: the 34-layer plain net has higher training error than the 18-layer "
      "one, even with BN (and plain-32/44/56 than plain-20 on CIFAR); identity shortcuts fix it at no "
      "parameter cost.", "resnet", ("max_plain_depth",))
def plain_depth(ctx: Ctx) -> Iterator[Diagnostic]:
    length, first, last = plain_chains(ctx)
    limit = ctx.options["max_plain_depth"]
    if length <= limit or first is None:
        return
    yield ctx.diag("R404", WARNING, None,
                   f"{length} weight layers in one plain chain ({ctx.describe(first)} -> {ctx.describe(last)}), no "
                   f"shortcut around any of them (limit {limit})",
                   f"wrap pairs of convs in residual {{ ... }} so that no chain exceeds {limit} layers (identity "
                   "shortcuts add no parameters; a 1x1 projection where the shape changes)",
                   {"depth": length, "first": ctx.path(first), "last": ctx.path(last), "limit": limit})
