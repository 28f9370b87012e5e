"""R6xx: informational findings (dropout next to BN; the width/depth balance report)."""

from __future__ import annotations

from collections.abc import Iterator

from ...diagnostics import INFO, WARNING, Diagnostic, Loc
from ..graphctx import Ctx, count, macs
from ..registry import rule


@rule("R601", "dropout-with-batchnorm", INFO,
      "dropout in a network whose features are batch-normalized",
      "BN regularizes: the BN paper removed dropout from BN-Inception and found it unnecessary, so dropout next "
      "to BN can often be reduced or removed.", "bn")
def dropout_with_bn(ctx: Ctx) -> Iterator[Diagnostic]:
    drops = ctx.nodes_with("dropout", "dropout2d")
    if not drops or not ctx.nodes_with("batchnorm"):
        return
    bns: dict[int, int] = {}
    for n in ctx.order:
        below = sum(bns[p] for p in ctx.preds[n]) if len(ctx.preds[n]) == 1 else max(
            (bns[p] for p in ctx.preds[n]), default=0)
        bns[n] = below + (1 if ctx.op(n) == "batchnorm" else 0)
    before_bn = _upstream_of_batchnorm(ctx)
    for n in drops:
        if n in before_bn:
            continue   # R603's case
        count_bn = bns[ctx.preds[n][0]] if ctx.preds[n] else 0
        p = ctx.node(n)["args"]["p"]
        if not count_bn or not p:
            continue
        yield ctx.diag("R601", INFO, n,
                       f"{ctx.op(n)}(p = {p:g}) after {count_bn} batchnorm layers: BN already regularizes, and the "
                       f"BN paper found dropout unnecessary next to it",
                       "try a lower p or no dropout when training with BN", {"p": p, "batchnorm_upstream": count_bn})


def _upstream_of_batchnorm(ctx: Ctx) -> set[int]:
    """Nodes of the eval graph from which some batchnorm is reachable."""
    return ctx.cached("upstream_of_bn", lambda: _upstream_bn(ctx))


def _upstream_bn(ctx: Ctx) -> set[int]:
    out: set[int] = set()
    ev = ctx.eval_nodes
    for n in reversed(ctx.order):
        if n in ev and any(s in ev and (ctx.op(s) == "batchnorm" or s in out) for s in ctx.succs[n]):
            out.add(n)
    return out


@rule("R603", "dropout-before-batchnorm", WARNING,
      "dropout whose output reaches a batchnorm layer (in the eval graph); an info inside a residual branch "
      "between two convs (Wide ResNet's design)",
      "BN's running statistics are collected under dropout's train-time scaling, so at inference the layers "
      "after it see a different variance than BN normalized for (the variance shift); the BN paper removed "
      "dropout from BN-Inception, and dropout belongs after the last BN, before the classifier.",
      'Li et al. 2019, "Understanding the Disharmony between Dropout and Batch Normalization by Variance Shift"; '
      'Ioffe & Szegedy 2015, section 4.2.1')
def dropout_before_bn(ctx: Ctx) -> Iterator[Diagnostic]:
    before_bn = _upstream_of_batchnorm(ctx)
    groups: dict[Loc, list[int]] = {}
    for n in ctx.nodes_with("dropout", "dropout2d"):
        if n in before_bn and ctx.node(n)["args"]["p"]:
            groups.setdefault(ctx.site_loc(n), []).append(n)
    main = set(ctx.main_points)
    for loc, nodes in groups.items():
        n = nodes[0]
        p = ctx.node(n)["args"]["p"]
        in_branch = n not in main and any(ctx.op(c) == "conv2d" for c in ctx.consumers_through_pass(n))
        nxt = _next_batchnorm(ctx, n)
        many = f"{len(nodes)} {ctx.op(n)} layers from this line (p = {p:g})" if len(nodes) > 1 else \
            f"{ctx.op(n)}(p = {p:g})"
        where = f" (the next one: {ctx.describe(nxt)})" if nxt is not None else ""
        msg = (f"{many} feed{'s' if len(nodes) == 1 else ''} batch normalization{where}: BN's statistics are "
               f"collected under dropout's 1/(1-p) = {1 / (1 - p):.2f}x train-time scaling and no longer match "
               f"at inference (variance shift)")
        ev = {"p": p, "layers": [ctx.path(x) for x in nodes],
              "next_batchnorm": ctx.path(nxt) if nxt is not None else None}
        if in_branch:
            yield ctx.diag("R603", INFO, n, msg, "dropout between the convs of a residual branch is Wide ResNet's "
                           "design (section 2.4); if the shift shows, move it after the last batchnorm", ev, loc=loc)
        else:
            yield ctx.diag("R603", WARNING, n, msg, "remove it (BN regularizes; the BN paper dropped dropout from "
                           "BN-Inception) or move it after the last batchnorm, in front of the classifier", ev,
                           loc=loc)


def _next_batchnorm(ctx: Ctx, nid: int) -> int | None:
    """The first batchnorm downstream of ``nid`` in graph order."""
    pos = {n: i for i, n in enumerate(ctx.order)}
    seen, stack, best = {nid}, list(ctx.succs[nid]), None
    while stack:
        s = stack.pop()
        if s in seen or s not in ctx.eval_nodes:
            continue
        seen.add(s)
        if ctx.op(s) == "batchnorm":
            best = s if best is None or pos[s] < pos[best] else best
            continue
        stack.extend(ctx.succs[s])
    return best


@rule("R602", "width-depth-balance", INFO,
      "a report of depth (weight layers on the longest path), widths and where the MACs go, per grid size",
      "Principle 4: balance width and depth; improvements come from increasing both together within the compute "
      "budget. The report shows how this network spends its budget.", "rethinking")
def balance(ctx: Ctx) -> Iterator[Diagnostic]:
    stages: dict[tuple, list[int]] = {}
    total = 0
    ev = ctx.eval_nodes
    for n in ctx.nodes_with("conv2d", "linear"):
        s = ctx.shape(n)
        if n not in ev or s is None:
            continue
        key = (s[1], s[2]) if len(s) == 3 else ("fc",)
        st = stages.setdefault(key, [0, 0, 0])
        st[0] += 1
        st[1] = max(st[1], s[0])
        m = ctx.node(n)["costs"].macs
        st[2] += m
        total += m
    out = ctx.graph.outputs.get("main")
    if out is None or not stages:
        return
    d = ctx.depths()["longest"].get(out, 0)
    widths = [st[1] for k, st in stages.items() if k != ("fc",)] or [0]
    parts = []
    for key in sorted(stages, key=lambda k: (-k[0] if k != ("fc",) else 0,)):
        st = stages[key]
        name = "fc" if key == ("fc",) else f"{key[0]}x{key[1]}"
        share = st[2] / total * 100 if total else 0
        parts.append(f"{name}: {st[0]} layer{'s' if st[0] != 1 else ''}, up to {count(st[1])} ch, {share:.1f}% MACs")
    params = ctx.graph.total_params()
    msg = (f"width/depth: {d} weight layers on the longest path, the widest layer per grid has "
           f"{count(min(widths))} to {count(max(widths))} channels, {count(params)} params, {macs(total)} MACs")
    yield ctx.diag("R602", INFO, None, msg, "per grid: " + "; ".join(parts),
                   {"depth": d, "params": params, "macs": total,
                    "stages": [{"grid": "fc" if k == ("fc",) else f"{k[0]}x{k[1]}", "layers": v[0], "max_width": v[1],
                                "macs": v[2]} for k, v in stages.items()]})
