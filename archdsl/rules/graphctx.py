"""What the rules share: one pass of bookkeeping over the analysed graph, and number formatting.

A :class:`Ctx` is built once per spec.  Everything in it is O(nodes + edges); the rules then read
predecessors, successors, the main path and locations from here instead of asking networkx.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import Diagnostic, Loc
from ..ir import Graph, display_path
from ..metrics import WEIGHT_OPS
from ..ops import OPS, ChannelsLast, fmt_shape

#: Normalization layers: each restarts the count of weight layers without normalization (R403).
NORM_OPS = frozenset({"batchnorm", "layernorm", "groupnorm"})
#: Ops that keep the tensor's shape and carry no spatial or channel mixing worth a rule's attention.
PASS_OPS = frozenset(name for name, spec in OPS.items()
                     if spec.family in ("activation", "norm", "regularize", "misc"))
POOL_OPS = frozenset(("maxpool", "avgpool"))


@dataclass
class Ctx:
    """The graph of one analysed spec, indexed for the rules, plus the effective options."""

    graph: Graph
    options: dict[str, Any]
    network_loc: Loc
    preds: dict[int, list[int]] = field(default_factory=dict)
    succs: dict[int, list[int]] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    eval_nodes: set[int] = field(default_factory=set)
    main_points: list[int] = field(default_factory=list)
    weights_under: dict[str, int] = field(default_factory=dict)
    origin: dict[int, int] = field(default_factory=dict)
    data: dict[int, dict[str, Any]] = field(default_factory=dict)
    by_op: dict[str, list[int]] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)
    analysis: Any = None

    @classmethod
    def build(cls, graph: Graph, options: dict[str, Any], network_loc: Loc, analysis: Any = None) -> Ctx:
        """Index ``graph`` once: ordered inputs, successors, eval set, main path, unit scopes.

        ``analysis`` (the :class:`~archdsl.pipeline.Analysis`) lets a rule ask the transforms whether
        a command would apply to a finding before its hint names it.
        """
        ctx = cls(graph, options, network_loc, analysis=analysis)
        g = graph.g
        ctx.order = graph.order()
        pred_adj, succ_adj = g._pred, g._succ
        ctx.data = dict(g.nodes(data=True))
        by_op = ctx.by_op
        preds, succs, data = ctx.preds, ctx.succs, ctx.data
        for nid in ctx.order:
            p = pred_adj[nid]
            if len(p) > 1:
                ordered = [0] * len(p)
                for u, e in p.items():
                    ordered[e["index"]] = u
                preds[nid] = ordered
            else:
                preds[nid] = list(p)
            succs[nid] = list(succ_adj[nid])
            by_op.setdefault(data[nid]["op"], []).append(nid)
        ctx.eval_nodes = _ancestors(ctx, graph.outputs.get("main"))
        ctx.main_points = _cut_nodes(ctx)
        for nid in ctx.by_op.get("conv2d", []) + ctx.by_op.get("linear", []):
            path = ctx.data[nid]["path"]
            while "." in path:
                path = path.rsplit(".", 1)[0]
                ctx.weights_under[path] = ctx.weights_under.get(path, 0) + 1
        return ctx

    # ------------------------------------------------------------------ node access
    def node(self, nid: int) -> dict[str, Any]:
        """Attributes of node ``nid``."""
        return self.data[nid]

    def op(self, nid: int) -> str:
        """The op name of ``nid``."""
        return self.data[nid]["op"]

    def shape(self, nid: int) -> tuple | None:
        """The output shape of ``nid``, channels first whatever its layout (rules reason about
        channels and grids, not about where a permute put them)."""
        s = self.data[nid]["shape"]
        return (s[-1],) + tuple(s[:-1]) if isinstance(s, ChannelsLast) else s

    def in_shape(self, nid: int) -> tuple | None:
        """The shape of ``nid``'s first input."""
        preds = self.preds.get(nid)
        return self.shape(preds[0]) if preds else None

    def nodes_with(self, *ops: str) -> list[int]:
        """Nodes whose op is one of ``ops``, in graph order."""
        if len(ops) == 1:
            return self.by_op.get(ops[0], [])
        return sorted(n for op in ops for n in self.by_op.get(op, ()))

    def describe(self, nid: int) -> str:
        """How a message names a node: its module path when a label chose it, otherwise its op and the
        line it comes from (a bare position such as ``4`` means nothing to a reader)."""
        path = self.path(nid)
        last = path.rsplit(".", 1)[-1]
        if self.op(nid) == "input":
            return "the input"
        if last.isdigit() or last.startswith("<"):
            loc = self.node(nid)["loc"]
            where = f"line {loc.line}" if loc is not None else "the spec"
            return f"the {self.op(nid)} at {where}" if "." not in path else f"{path} ({self.op(nid)}, {where})"
        return path

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """A value several rules share, computed once per spec."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def path(self, nid: int) -> str:
        """The module path as diagnostics show it (internal nodes as ``scope.<kind>``)."""
        return display_path(self.node(nid)["path"])

    def depths(self) -> dict[str, Any]:
        """Weight-layer depths, one pass: longest and shortest input-to-node paths over the eval graph,
        and the longest run without batchnorm over the whole graph (with where it starts)."""
        return self.cached("depths", self._depths)

    def _depths(self) -> dict[str, Any]:
        longest: dict[int, int] = {}
        shortest: dict[int, int] = {}
        run: dict[int, tuple[int, int | None]] = {}
        best: tuple[int, int | None, int | None] = (0, None, None)
        data, preds, ev = self.data, self.preds, self.eval_nodes
        for n in self.order:
            op = data[n]["op"]
            ps = preds[n]
            w = 1 if op in WEIGHT_OPS else 0
            if op in NORM_OPS:
                run[n] = (0, None)
            else:
                prev = (0, None)
                for p in ps:
                    if run[p][0] > prev[0]:
                        prev = run[p]
                if w:
                    cur = (prev[0] + 1, prev[1] if prev[0] else n)
                    if cur[0] > best[0]:
                        best = (cur[0], cur[1], n)
                    run[n] = cur
                else:
                    run[n] = prev
            if n in ev:
                if ps:
                    longest[n] = max(longest[p] for p in ps) + w
                    shortest[n] = min(shortest[p] for p in ps) + w
                else:
                    longest[n] = shortest[n] = w
        return {"longest": longest, "shortest": shortest, "unnormalized": best}

    def gate_nodes(self) -> frozenset[int]:
        """Nodes that compute a multiplicative gate (squeeze-and-excitation): everything between a
        ``mul``'s feature input and its broadcast gate input.  A gate rescales channels; it is neither
        a shortcut nor a second path for the features, so depth and bottleneck rules look through it."""
        return self.cached("gate_nodes", self._gate_nodes)

    def _gate_nodes(self) -> frozenset[int]:
        out: set[int] = set()
        for m in self.by_op.get("mul", ()):
            preds = self.preds[m]
            if len(preds) != 2:
                continue
            x, g = preds
            gs, xs = self.shape(g), self.shape(x)
            if gs is None or xs is None or len(gs) != len(xs) or math.prod(gs[1:]) != 1 or gs[0] != xs[0]:
                continue
            body, stack = set(), [g]
            while stack and len(body) < 256:
                n = stack.pop()
                if n == x or n in body:
                    continue
                body.add(n)
                stack.extend(self.preds[n])
            if x not in {p for n in body for p in self.preds[n]}:
                continue  # the "gate" is not computed from the features it scales
            out |= body
        return frozenset(out)

    def is_expansion(self, nid: int) -> bool:
        """Does ``nid`` widen its input without mixing space: a 1x1 conv with more outputs than inputs?"""
        if self.op(nid) != "conv2d":
            return False
        a, ins, out = self.node(nid)["args"], self.in_shape(nid), self.shape(nid)
        return (a["kernel"] == (1, 1) and a["groups"] == 1 and ins is not None and out is not None
                and out[0] > ins[0])

    def is_depthwise(self, nid: int) -> bool:
        """Is ``nid`` a depthwise conv (one filter group per input channel)?"""
        if self.op(nid) != "conv2d":
            return False
        ins = self.in_shape(nid)
        g = self.node(nid)["args"]["groups"]
        return ins is not None and g > 1 and g == ins[0]

    # ------------------------------------------------------------------ locations
    def site_loc(self, nid: int) -> Loc:
        """Where a finding about ``nid`` is reported.

        The node's own location, except for a layer inside a *unit block* (a block instance holding
        exactly one conv/linear, such as ``BasicConv2d``): there the block call is the line that
        chose the kernel and widths, so the finding points at the call.
        """
        data = self.node(nid)
        scope = data["scope"]
        info = self.graph.scopes.get(scope)
        if (data["op"] in WEIGHT_OPS and info is not None and info.kind == "block" and info.loc is not None
                and self.weights_under.get(scope, 0) == 1):
            return info.loc
        return data["loc"]

    def enclosing_call_lines(self, nid: int) -> list[Loc]:
        """Locations of every scope (block call, group, repeat) enclosing ``nid``: suppression reads them."""
        out = []
        path = self.node(nid)["scope"]
        scopes = self.graph.scopes
        while path:
            info = scopes.get(path)
            if info is not None and info.loc is not None:
                out.append(info.loc)
            if "." not in path:
                break
            path = path.rsplit(".", 1)[0]
        return out

    # ------------------------------------------------------------------ walks
    def producer(self, nid: int) -> int | None:
        """The nearest node upstream of ``nid``'s input that is not a shape-keeping pass op."""
        preds = self.preds.get(nid)
        cur = preds[0] if preds else None
        while cur is not None and self.op(cur) in PASS_OPS and len(self.preds[cur]) == 1:
            cur = self.preds[cur][0]
        return cur

    def consumers_through_pass(self, nid: int) -> list[int]:
        """Nodes fed by ``nid`` directly or through chains of pass ops (the pass ops excluded)."""
        out: list[int] = []
        stack = list(self.succs.get(nid, ()))
        seen: set[int] = set()
        while stack:
            s = stack.pop()
            if s in seen:
                continue
            seen.add(s)
            if self.op(s) in PASS_OPS:
                stack.extend(self.succs.get(s, ()))
            else:
                out.append(s)
        return sorted(out)

    def diag(self, code: str, severity: str, nid: int | None, message: str, hint: str = "",
             evidence: dict | None = None, loc: Loc | None = None, path: str | None = None) -> Diagnostic:
        """A finding located at ``nid`` (its site) unless ``loc`` is given."""
        if loc is None:
            loc = self.site_loc(nid) if nid is not None else self.network_loc
        if path is None:
            path = self.path(nid) if nid is not None else ""
        d = Diagnostic(code, message, loc, severity, path, hint, dict(evidence or {}))
        if nid is not None:
            self.origin[id(d)] = nid
        return d


def _ancestors(ctx: Ctx, out: int | None) -> set[int]:
    if out is None:
        return set()
    seen = {out}
    stack = [out]
    preds = ctx.preds
    while stack:
        for p in preds[stack.pop()]:
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


def _cut_nodes(ctx: Ctx) -> list[int]:
    """Nodes every input-to-main-output path passes through (the main path), in order.

    In a topological order a node is on every path exactly when no edge jumps over it, which one
    sweep with the furthest edge target seen so far decides.
    """
    order = [n for n in ctx.order if n in ctx.eval_nodes]
    pos = {n: i for i, n in enumerate(order)}
    reach = -1
    cuts = []
    for i, n in enumerate(order):
        if reach <= i:
            cuts.append(n)
        for s in ctx.succs[n]:
            j = pos.get(s)
            if j is not None and j > reach:
                reach = j
    return [n for n in cuts if ctx.op(n) != "output"]


# ---------------------------------------------------------------------------------- formatting


def count(n: int | float) -> str:
    """``12,800``."""
    return f"{int(round(n)):,}"


def macs(n: int | float) -> str:
    """``2.51M`` / ``1.23G`` / ``951.0K``: multiply-accumulates, three significant figures or so."""
    n = float(n)
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{int(n)}"


def pct(before: int | float, after: int | float) -> str:
    """``-28%`` (change from ``before`` to ``after``)."""
    if not before:
        return "n/a"
    v = (after - before) / before * 100
    return f"{v:+.1f}%" if abs(v) < 1 else f"{v:+.0f}%"


def ratio(a: int | float, b: int | float) -> str:
    """``16.94x``."""
    return f"{a / b:.2f}x" if b else "inf"


def hwc(shape: tuple) -> str:
    """A feature map as the papers write it: ``14x14x16`` (height x width x channels)."""
    c, h, w = shape
    return f"{h}x{w}x{c}"


def grid(shape: tuple) -> str:
    """``14x14``."""
    return f"{shape[1]}x{shape[2]}"


def chw(shape: tuple) -> str:
    """``192x28x28`` (channels x height x width)."""
    return fmt_shape(shape)


def size(shape: tuple | None) -> int:
    """Elements of one tensor."""
    return math.prod(shape) if shape else 0


def kernel_text(k: tuple[int, int]) -> str:
    """``5x5``, ``1x7``."""
    return f"{k[0]}x{k[1]}"


def harmonic_width(cin: int, cout: int) -> int:
    """Width of the intermediate layer of a factorization: ``2·cin·cout // (cin + cout)``.

    With it the two factors cost ``cin·mid + mid·cout ≈ 2·cin·cout`` per kernel tap pair, the
    budget the paper's 18-vs-25 (5x5 -> 3x3+3x3) and 6-vs-9 (3x3 -> 1x3+3x1) figures assume;
    when ``cin == cout`` it is exactly ``cin``.
    """
    return max(1, 2 * cin * cout // (cin + cout))


NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
