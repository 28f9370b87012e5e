"""Hover: on a layer, its output shape, parameters, MACs and receptive field (one line per instance);
on a block call, the block's signature and the totals of that call's scope; on a block definition,
its signature; on an op name without a graph (the spec does not analyse), the op's signature."""

from __future__ import annotations

from collections.abc import Iterable

from lsprotocol import types

from .. import ast as A
from .. import report
from ..frontend.printer import params as params_text
from ..ir import Graph, display_path
from ..ops import PUBLIC_OPS, fmt_shape
from ..passes.elaborate import signature
from . import index
from .documents import DocAnalysis

#: Instances listed in a hover before "and N more".
SHOWN = 8


def number(n: object) -> str:
    """``12,800`` for an integer; a symbolic count (an expression of the input size) as ``summary``
    writes it (through :func:`fmt_shape`, which knows how)."""
    return f"{n:,}" if type(n) is int else fmt_shape((n,))


def shape_text(shape: tuple | None) -> str:
    """A node's output shape as the summary table writes it (``?`` when unknown)."""
    return fmt_shape(shape) if shape is not None else "?"


def rf_text(rf: tuple | None) -> str:
    """``7x7 (stride 2)``: receptive field and effective stride, ``?`` when unknown."""
    if not rf:
        return "?"
    stride = f"{rf[2]}" if rf[2] == rf[3] else f"{rf[2]}x{rf[3]}"
    return f"{rf[0]}x{rf[1]} (stride {stride})"


def block_signature(block: A.Block) -> str:
    """``Name(a, b = 1)``."""
    return f"{block.name}({params_text(block.params)})"


def hover(da: DocAnalysis, line: int, char: int) -> types.Hover | None:
    """The hover at 0-based ``line``/``char`` of the analysed document, or None."""
    res = da.res
    if res.spec is None:
        return None
    text = _text(da, res.spec, line + 1, char)
    if text is None:
        return None
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text))


def _text(da: DocAnalysis, spec: A.SpecFile, line: int, char: int) -> str | None:
    for block in spec.blocks:
        if block.loc.file == da.path and block.loc.line == line and \
                block.loc.col - 1 <= char <= block.loc.col - 1 + len(block.name):
            return f"```archdsl\nblock {block_signature(block)}\n```"
    call = index.call_at(da.cached("calls", lambda: index.calls_by_line(spec, da.path)), line, char)
    if call is None:
        return None
    graph = da.res.graph
    rows = da.cached("rows", lambda: node_rows(graph))
    if call.name in PUBLIC_OPS:
        nodes = da.cached("nodes", lambda: index.nodes_by_loc(graph)).get(call.loc, [])
        return layer_text(call, [rows[n] for n in nodes if n in rows])
    bdef = da.res.blocks.get(call.name)
    if bdef is None:
        return None
    return block_call_text(call, bdef.block, graph, da.cached("scopes", lambda: index.block_scopes(graph)), rows)


def node_rows(graph: Graph | None) -> dict[int, report.Row]:
    """Each node's summary row (shape, params, MACs, receptive field as ``summary`` shows them: with
    expressions in H and W for a symbolic input), by node id."""
    if graph is None:
        return {}
    by_path = {r.path: r for r in report.rows(graph)}
    return {n: by_path[display_path(d["path"])] for n, d in graph.g.nodes(data=True)
            if display_path(d["path"]) in by_path}


def layer_text(call: A.Call, rows: list[report.Row]) -> str:
    """An op call: its signature, then output, params, MACs and receptive field of each instance."""
    head = f"**{call.name}**" + (f" `{call.label}`" if call.label else "")
    lines = [head, "", f"`{signature(PUBLIC_OPS[call.name])}`", ""]
    if not rows:
        lines.append("(not elaborated: no shape until the spec analyses)")
        return "\n".join(lines)
    for r in rows[:SHOWN]:
        where = f"`{r.path}`: " if len(rows) > 1 else ""
        lines.append(f"- {where}output `{shape_text(r.shape)}` · params {number(r.params)} · "
                     f"MACs {number(r.macs)} · receptive field {rf_text(r.rf)}")
    if len(rows) > SHOWN:
        lines.append(f"- and {len(rows) - SHOWN} more instances")
    return "\n".join(lines)


def block_call_text(call: A.Call, block: A.Block, graph: Graph | None, by_loc: dict,
                    rows: dict[int, report.Row]) -> str:
    """A block call: the block's signature and, per instance, params and MACs summed over its scope."""
    lines = [f"```archdsl\nblock {block_signature(block)}\n```", ""]
    if block.loc.line > 0:
        lines += [f"defined at {block.loc}", ""]
    scopes = by_loc.get(call.loc, []) if graph is not None else []
    if call.inline:
        lines.append("inline: its layers are counted in the enclosing scope")
        return "\n".join(lines)
    if not scopes or graph is None:
        lines.append("(not elaborated: no totals until the spec analyses)")
        return "\n".join(lines)
    for info in scopes[:SHOWN]:
        nodes = [n for n in index.scope_nodes(graph, info.path) if n in rows]
        params = total(rows[n].params for n in nodes)
        macs = total(rows[n].macs for n in nodes)
        out = rows[max(nodes)].shape if nodes else None
        lines.append(f"- `{info.path}`: output `{shape_text(out)}` · params {number(params)} · MACs {number(macs)}"
                     f" · {len(nodes)} nodes")
    if len(scopes) > SHOWN:
        lines.append(f"- and {len(scopes) - SHOWN} more instances")
    return "\n".join(lines)


def total(counts: Iterable[object]) -> object:
    """The sum of per-node counts: integers, or expressions of the input size when it is symbolic."""
    out: object = 0
    for c in counts:
        out = out + c
    return out
