"""The shape and cost passes: every node's output shape, parameters, MACs and receptive field.

Shapes use PyTorch's exact formulas (see :mod:`archdsl.ops`).  A node whose rule fails gets a
diagnostic; nodes downstream of it are skipped silently so one mistake is reported once.
"""

from __future__ import annotations

import math

from ..diagnostics import Diagnostic, DiagnosticBag
from ..ir import Graph
from ..ops import OPS, Costs, ShapeError


def infer_shapes(graph: Graph, diags: DiagnosticBag) -> None:
    """Fill ``shape`` on every node reachable from a known input shape."""
    for nid in graph.order():
        data = graph.node(nid)
        op = OPS[data["op"]]
        if data["op"] == "input":
            data["shape"] = graph.input_shape
            continue
        ins = [graph.node(p)["shape"] for p in graph.inputs(nid)]
        if not ins or any(s is None for s in ins):
            continue
        try:
            data["shape"] = tuple(op.shape(data["args"], ins))
        except ShapeError as exc:
            diags.add(Diagnostic(exc.code, exc.message, data["loc"], path=_shown_path(data["path"]),
                                 hint=exc.hint))


def _shown_path(path: str) -> str:
    if "@" not in path:
        return path
    scope, _, kind = path.partition("@")
    return f"{scope}.<{kind}>" if scope else f"<{kind}>"


def infer_costs(graph: Graph) -> None:
    """Fill ``costs`` (params, MACs), receptive field and effective stride on shaped nodes."""
    for nid in graph.order():
        data = graph.node(nid)
        op = OPS[data["op"]]
        out = data["shape"]
        ins = [graph.node(p)["shape"] for p in graph.inputs(nid)]
        if out is None or any(s is None for s in ins):
            continue
        data["costs"] = op.cost(data["args"], ins, out) if ins else Costs()
        data["rf"] = _receptive_field(graph, nid, op, ins)


def _receptive_field(graph: Graph, nid: int, op, ins: list) -> tuple:
    """(rf_h, rf_w, jump_h, jump_w): input pixels seen by one output pixel, and its stride."""
    preds = graph.inputs(nid)
    if not preds:
        return (1, 1, 1, 1)
    prev = [graph.node(p)["rf"] or (1, 1, 1, 1) for p in preds]
    rf_h = max(p[0] for p in prev)
    rf_w = max(p[1] for p in prev)
    j_h = max(p[2] for p in prev)
    j_w = max(p[3] for p in prev)
    window = op.window(graph.node(nid)["args"], ins)
    if window is None:
        return (rf_h, rf_w, j_h, j_w)
    (kh, kw), (sh, sw) = window
    return (rf_h + (kh - 1) * j_h, rf_w + (kw - 1) * j_w, j_h * sh, j_w * sw)


def activations(shape: tuple | None) -> int:
    """Elements of one output tensor at batch 1."""
    return math.prod(shape) if shape else 0
