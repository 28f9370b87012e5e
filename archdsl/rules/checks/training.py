"""R4xx: normalization, activations and depth (Batch Normalization; ResNet)."""

from __future__ import annotations

from collections.abc import Iterator

from ...diagnostics import WARNING, Diagnostic, Loc
from ..graphctx import WEIGHT_OPS, Ctx, count, hwc
from ..registry import rule


@rule("R401", "bias-before-batchnorm", WARNING,
      "a conv or linear layer with a bias whose output goes straight into batch normalization",
      "BN subtracts the batch mean, so a bias before it cancels out; BN's own shift (beta) does its job. "
      "The bias parameters are wasted.", "bn")
def bias_before_bn(ctx: Ctx) -> Iterator[Diagnostic]:
    groups: dict[Loc, list[int]] = {}
    for n in ctx.nodes_with(*WEIGHT_OPS):
        if not ctx.node(n)["args"].get("bias"):
            continue
        succ = ctx.succs[n]
        if len(succ) == 1 and ctx.op(succ[0]) == "batchnorm" and ctx.shape(n) is not None:
            groups.setdefault(ctx.site_loc(n), []).append(n)
    for loc, nodes in groups.items():
        wasted = sum(ctx.shape(n)[0] for n in nodes)
        op = ctx.op(nodes[0])
        if len(nodes) == 1:
            msg = (f"{op} bias is cancelled by the batchnorm right after it (BN subtracts the mean): "
                   f"{count(wasted)} wasted parameters")
        else:
            shown = ", ".join(ctx.path(n) for n in nodes[:3]) + (", ..." if len(nodes) > 3 else "")
            msg = (f"{len(nodes)} {op} layers from this line have biases that the batchnorm after each cancels: "
                   f"{count(wasted)} wasted parameters ({shown})")
        yield ctx.diag("R401", WARNING, nodes[0], msg, f"set bias = false (-{count(wasted)} params)",
                       {"layers": [ctx.path(n) for n in nodes], "wasted_params": wasted}, loc=loc)


@rule("R402", "saturating-activation", WARNING,
      "sigmoid or tanh inside the network whose input is not batch-normalized",
      "Saturating non-linearities stall training: their gradient vanishes once inputs drift into the flat "
      "regions. BN keeps the inputs in range (the paper made sigmoid networks trainable with it); ReLU avoids "
      "the problem.", "bn")
def saturating(ctx: Ctx) -> Iterator[Diagnostic]:
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
      "every layer.", "bn", ("max_unnormalized_depth",))
def unnormalized(ctx: Ctx) -> Iterator[Diagnostic]:
    length, first, last = ctx.depths()["unnormalized"]
    limit = ctx.options["max_unnormalized_depth"]
    if length <= limit or first is None:
        return
    convs = [n for n in ctx.nodes_with("conv2d") if not any(ctx.op(s) == "batchnorm" for s in ctx.succs[n])]
    bn = sum(2 * ctx.shape(n)[0] for n in convs if ctx.shape(n))
    bias = sum(ctx.shape(n)[0] for n in convs if ctx.shape(n) and ctx.node(n)["args"]["bias"])
    msg = (f"{length} weight layers in a row without batch normalization ({ctx.path(first)} -> {ctx.path(last)}); "
           f"limit {limit}")
    hint = (f"put batchnorm between each conv and its activation: +{count(bn)} params for {len(convs)} convs, and "
            f"their biases become redundant (-{count(bias)})")
    yield ctx.diag("R403", WARNING, None, msg, hint,
                   {"depth": length, "first": ctx.path(first), "last": ctx.path(last), "limit": limit,
                    "bn_params": bn, "convs_without_bn": len(convs), "redundant_biases": bias})


@rule("R404", "deep-plain-stack", WARNING,
      "every input-to-output path crosses more than `max_plain_depth` weight layers (no residual or concat "
      "shortcut)",
      "Plain networks degrade with depth: the 34-layer plain net has higher training error than the 18-layer "
      "one, even with BN; identity shortcuts fix it at no parameter cost.", "resnet", ("max_plain_depth",))
def plain_depth(ctx: Ctx) -> Iterator[Diagnostic]:
    out = ctx.graph.outputs.get("main")
    if out is None:
        return
    dep = ctx.depths()
    short, longest = dep["shortest"], dep["longest"]
    limit = ctx.options["max_plain_depth"]
    if short.get(out, 0) <= limit:
        return
    yield ctx.diag("R404", WARNING, None,
                   f"every path from input to output crosses at least {short[out]} weight layers (limit {limit}): "
                   f"no residual or concat shortcut shortens the plain stack",
                   "wrap pairs of convs in residual { ... } (identity shortcuts add no parameters; a 1x1 projection "
                   "where the shape changes)",
                   {"shortest_path_depth": short[out], "longest_path_depth": longest[out], "limit": limit})
