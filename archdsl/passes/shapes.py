"""The shape and cost passes: every node's output shape, parameters, MACs and receptive field.

Shapes use PyTorch's exact formulas (see :mod:`archdsl.ops`).  A node whose rule fails gets a
diagnostic; nodes downstream of it are skipped silently so one mistake is reported once.  So are
the nodes downstream of a layer that failed to resolve (an ``unknown`` node, whose shape is
unknown): no shape error is derived from an argument error.  The
resource limits on tensor sizes (E153) and parameter memory (E154) are checked here, before any
backend allocates anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .. import limits
from ..diagnostics import Diagnostic, DiagnosticBag, Label, Loc
from ..ir import Graph, display_path
from ..ops import OPS, Costs, ShapeError, channels, fmt_shape, spatial_dims
from .elaborate import Operand

#: Bytes per parameter in the memory estimate (float32, PyTorch's default dtype).
BYTES_PER_PARAM = 4


def infer_shapes(graph: Graph, diags: DiagnosticBag) -> None:
    """Fill ``shape`` on every node reachable from a known input shape."""
    lim = limits.current()
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
            shape = op.shape(data["args"], ins)
            if shape is None:
                continue  # unknown (a failed layer): the nodes after it stay unshaped, silently
            if not isinstance(shape, tuple):
                shape = tuple(shape)
        except ShapeError as exc:
            diags.add(_shape_diagnostic(graph, nid, exc))
            continue
        problem = size_problem(shape, lim)
        if problem is not None:
            # The shape stays unknown, so the layers after it are skipped instead of computed huge.
            diags.add(Diagnostic("E153", problem[0], data["loc"], path=display_path(data["path"]), hint=problem[1]))
            continue
        data["shape"] = shape


def _shape_diagnostic(graph: Graph, nid: int, exc: ShapeError) -> Diagnostic:
    """The diagnostic for a failed shape rule; a merge's names each input by its branch and points
    at the branches that deviate (secondary labels)."""
    data = graph.node(nid)
    message, labels = exc.message, ()
    operands = data.get("operands")
    if exc.groups and operands is not None and len(operands) == len(graph.inputs(nid)):
        groups = list(exc.groups)
        # The most common shape is the expected one: the others are named first and pointed at.
        # On a tie every branch is as suspect as the others.
        suspects = groups[1:] if len(groups[0][1]) > len(groups[1][1]) else groups
        order = suspects + [g for g in groups if g not in suspects]
        message = f"{exc.lead}: " + ", ".join(_group_phrase(text, [operands[i] for i in ix]) for text, ix in order)
        # concat: where the branch takes its spatial size (or, for a flat one, is flattened)
        labels = tuple(Label(_operand_site(graph, operands[i], _spatial_key), _group_phrase(text, [operands[i]]))
                       for text, ix in suspects for i in ix)
    elif operands is not None and exc.code == "E202":
        labels = _add_labels(graph, nid, operands)
    return Diagnostic(exc.code, message, data["loc"], path=display_path(data["path"]), hint=exc.hint,
                      labels=labels)


def _group_phrase(text: str, operands: list[Operand]) -> str:
    """``branch `b` is 16x16``, ``branches `a`, `c` are 32x32``."""
    names = ", ".join(o.name for o in operands)
    if len(operands) == 1:
        return f"{operands[0].kind} {names} is {text}"
    return f"{operands[0].kind}es {names} are {text}"


def _add_labels(graph: Graph, nid: int, operands: list[Operand]) -> tuple[Label, ...]:
    """For a residual's add: where the body's shape (and a projection shortcut's) comes from."""
    out = []
    for operand, src in zip(operands, graph.inputs(nid), strict=False):
        if operand.steps:
            out.append(Label(_operand_site(graph, operand, tuple),
                             f"{operand.kind} gives {fmt_shape(graph.node(src)['shape'])}"))
    return tuple(out)


def _spatial_key(shape: tuple) -> tuple:
    """What a concat's inputs must agree on: the spatial size (``()`` for a flat vector)."""
    return tuple(shape[1:])


def _operand_site(graph: Graph, operand: Operand, key: Callable[[tuple], tuple]) -> Loc:
    """Where an operand takes its final shape (as ``key`` sees it): the last of its steps whose
    output differs from its input (else its first step)."""
    steps = operand.steps
    if not steps:
        return operand.loc
    for i in range(len(steps) - 1, -1, -1):
        before = graph.node(steps[i - 1][1] if i else operand.source)["shape"]
        after = graph.node(steps[i][1])["shape"]
        if before is not None and after is not None and key(before) != key(after):
            return steps[i][0]
    return steps[0][0]


def size_problem(shape: tuple, lim: limits.Limits, what: str = "tensor") -> tuple[str, str] | None:
    """(message, hint) when a tensor of ``shape`` exceeds the channel or spatial limit (E153)."""
    if channels(shape) > lim.channels:
        size = f"{what} {_dims(shape)} has {channels(shape):,} channels" if len(shape) > 1 else \
            f"flat {what} has {shape[0]:,} features"
        return (f"{size}; the limit is {lim.channels:,}",
                "reduce the width, or raise the limit with --limit channels=N (it also bounds features)")
    if len(shape) > 1 and max(spatial_dims(shape)) > lim.spatial:
        return (f"{what} {_dims(shape)} is larger than {lim.spatial:,} in height or width",
                "reduce the input size or upsampling, or raise the limit with --limit spatial=N")
    return None


def _dims(shape: tuple) -> str:
    return "x".join(str(d) for d in shape)


def memory_problem(graph: Graph) -> Diagnostic | None:
    """E154 when the network's float32 parameters exceed the memory limit, located at the layer
    holding the most parameters; None when they fit (or no limit is known)."""
    budget = limits.memory_budget()
    params = graph.total_params()
    need = params * BYTES_PER_PARAM
    if not budget or need <= budget:
        return None
    nodes = list(graph.module_nodes()) or list(graph.g.nodes)
    big = max(nodes, key=lambda n: graph.node(n)["costs"].params)
    data = graph.node(big)
    whose = "the limit" if limits.current().memory_bytes else "this machine's memory"
    return Diagnostic(
        "E154", f"parameters need {_bytes(need)} ({params:,} float32 values), more than {whose} ({_bytes(budget)})",
        data["loc"], path=display_path(data["path"]),
        hint=f"this layer alone holds {data['costs'].params:,} parameters; reduce widths, or raise the limit "
             "with --limit memory_bytes=N")


def _bytes(n: int) -> str:
    """``n`` bytes for people: ``3,072 bytes``, ``4.0 TiB``."""
    if n < 1024:
        return f"{n:,} bytes"
    units = ("KiB", "MiB", "GiB", "TiB", "PiB")
    exp = min(len(units), (n.bit_length() - 1) // 10)
    return f"{n / 1024**exp:,.1f} {units[exp - 1]}"


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
    # a gate's product keeps its input's grid: the gate's own stride (a global pool's) is broadcast away
    steps = prev[:1] if op.name == "mul" else prev
    j_h = max(p[2] for p in steps)
    j_w = max(p[3] for p in steps)
    window = op.window(graph.node(nid)["args"], ins)
    if window is None:
        return (rf_h, rf_w, j_h, j_w)
    (kh, kw), (sh, sw) = window
    return (rf_h + (kh - 1) * j_h, rf_w + (kw - 1) * j_w, j_h * sh, j_w * sw)


def activations(shape: tuple | None) -> int:
    """Elements of one output tensor at batch 1."""
    return math.prod(shape) if shape else 0
