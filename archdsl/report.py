"""Summaries of an analyzed network: per-node rows and totals, as text, JSON, Markdown or CSV."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from .ir import Graph, display_path
from .ops import channels_last, dim_text, fmt_shape
from .passes.shapes import activations


@dataclass(frozen=True)
class Row:
    """One line of a summary: a node, or a collapsed scope at ``--depth``."""

    path: str
    op: str
    shape: tuple | None
    params: int
    macs: int
    activations: int
    rf: tuple | None
    line: int

    def to_json(self) -> dict:
        """The row as a JSON object (``layout`` only for a channels-last tensor, whose shape is H, W, C)."""
        row = {
            "path": self.path,
            "op": self.op,
            "shape": _json_dims(self.shape),
            "params": _json_count(self.params),
            "macs": _json_count(self.macs),
            "activations": _json_count(self.activations),
            "receptive_field": list(self.rf[:2]) if self.rf else None,
            "stride": list(self.rf[2:]) if self.rf else None,
            "line": self.line,
        }
        if channels_last(self.shape):
            row["layout"] = "channels-last"
        if self.shape and not all(type(d) is int for d in self.shape):  # symbolic: also as people read it
            row["shape_text"] = fmt_shape(self.shape)
        return row


def _node_shape(d: dict) -> tuple | None:
    """A node's shape as summaries show it: with expressions in H and W for a symbolic input."""
    return d.get("sym_shape") or d["shape"]


def _node_costs(d: dict):
    """A node's costs (MACs an expression for a symbolic input)."""
    return d.get("sym_costs") or d["costs"]


def _json_dims(shape: tuple | None) -> list | None:
    """Dimensions for JSON: ints, and expressions in sympy's syntax (``floor(H/2 - 1/2)``)."""
    if not shape:
        return None
    if all(type(d) is int for d in shape):
        return list(shape)
    from .passes.symbolic import expr_source

    return [expr_source(d) for d in shape]


def _json_count(n: object) -> object:
    if type(n) is int:
        return n
    from .passes.symbolic import expr_source

    return expr_source(n)


def _symbolic_activations(shape: tuple | None) -> object:
    if shape is None or all(type(d) is int for d in shape):
        return activations(shape)
    from .passes.symbolic import product

    return product(shape)


def _depth_key(path: str, depth: int | None) -> str:
    """The row a node falls in: its own path, or at ``depth`` the scope that collapses it (IR paths)."""
    scope, internal, _ = path.partition("@")
    parts = [p for p in scope.split(".") if p]
    if depth is None:
        return path
    # A module ``a.b`` is a leaf of scope ``a``; an internal node ``a@concat`` belongs inside ``a``.
    if len(parts) > depth or (internal and parts and len(parts) >= depth):
        return ".".join(parts[:depth])
    return path


def _scope_op(graph: Graph, key: str) -> str:
    info = graph.scopes.get(key)
    if info is None:
        return "group"
    return info.block or info.kind


def rows(graph: Graph, depth: int | None = None) -> list[Row]:
    """Summary rows in execution order; with ``depth``, scopes deeper than it are collapsed.

    Grouping works on IR paths; a row names an internal node as diagnostics do (``layer1.0.<add>``)."""
    out: list[Row] = []
    groups: dict[str, int] = {}
    for nid in graph.order():
        d = graph.node(nid)
        if d["op"] in ("input", "output"):
            continue
        key = _depth_key(d["path"], depth)
        shape, costs = _node_shape(d), _node_costs(d)
        row = Row(display_path(key), d["op"], shape, costs.params, costs.macs,
                  _symbolic_activations(shape), d["rf"], d["loc"].line)
        if key in groups and key != d["path"]:
            prev = out[groups[key]]
            out[groups[key]] = Row(key, _scope_op(graph, key), shape,
                                   prev.params + row.params, prev.macs + row.macs,
                                   prev.activations + row.activations, d["rf"], prev.line)
        elif key != d["path"]:
            groups[key] = len(out)
            out.append(Row(key, _scope_op(graph, key), shape, row.params,
                           row.macs, row.activations, d["rf"], row.line))
        else:
            out.append(row)
    return out


def summary_json(graph: Graph, depth: int | None = None) -> dict:
    """The ``summary --format json`` document."""
    main = graph.main_output
    macs = _total(graph, "macs", eval_only=True)
    doc = {
        "network": graph.name,
        "input": list(_input(graph)) if graph.input_shape else None,
        "params": _json_count(_total(graph, "params")),
        "macs": _json_count(macs),
        "output": _json_dims(_node_shape(graph.node(main))) if main is not None else None,
        "outputs": {name: _json_dims(_out_shape(graph, nid)) for name, nid in graph.outputs.items()},
        "nodes": [r.to_json() for r in rows(graph, depth)],
    }
    if graph.symbolic is not None:
        from .passes.symbolic import domain_json

        # the expression itself, printed as the text summary prints it (⌊(H+1)/2⌋), not its sympy source
        doc["macs_text"] = _fmt_int(macs) if type(macs) is not int else None
        doc["domain"] = domain_json(graph.symbolic.domain)
        doc["representative_input"] = list(graph.input_shape)
    return doc


def _input(graph: Graph) -> tuple:
    """The input as written: ``(3, "H", "W")`` for a symbolic one."""
    return graph.symbolic.input if graph.symbolic is not None else graph.input_shape


def _total(graph: Graph, key: str, eval_only: bool = False) -> object:
    """Total params or MACs (eval forward for MACs): an expression for a symbolic input."""
    if graph.symbolic is None:
        return graph.eval_macs() if eval_only else graph.total_params()
    from .passes.symbolic import total

    return total(graph, key, graph.eval_nodes() if eval_only else None)


def _out_shape(graph: Graph, out: int) -> tuple | None:
    preds = graph.inputs(out)
    return _node_shape(graph.node(preds[0])) if preds else None


def _fmt_int(n: object) -> str:
    return f"{n:,}" if type(n) is int else dim_text(n)


def summary_table(graph: Graph, depth: int | None = None) -> list[list[str]]:
    """Header plus one list of cells per row, shared by the text, Markdown and CSV forms."""
    table = [["module", "op", "output", "params", "MACs", "RF"]]
    for r in rows(graph, depth):
        rf = f"{r.rf[0]}x{r.rf[1]}" if r.rf else "-"
        table.append([r.path, r.op, fmt_shape(r.shape) if r.shape else "?", _fmt_int(r.params),
                      _fmt_int(r.macs), rf])
    return table


def totals_line(graph: Graph) -> str:
    """``params: 25,557,032  MACs: 4,089,184,256 (eval)`` and the output shapes."""
    outs = ", ".join(f"{k} {fmt_shape(v) if v else '?'}" for k, v in
                     ((n, _out_shape(graph, o)) for n, o in graph.outputs.items()))
    line = (f"params: {_fmt_int(_total(graph, 'params'))}   MACs (eval): {_fmt_int(_total(graph, 'macs', True))}   "
            f"outputs: {outs}")
    if graph.symbolic is not None and not graph.symbolic.domain.empty:
        line += f"\nvalid for {graph.symbolic.domain.text()}"
    return line


def render_markdown(graph: Graph, depth: int | None = None) -> str:
    """A Markdown table plus totals."""
    table = summary_table(graph, depth)
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    # ``<`` escaped too: Markdown would read ``layer1.0.<add>`` as an HTML tag and hide it
    lines += ["| " + " | ".join(c.replace("|", "\\|").replace("<", "\\<") for c in row) + " |"
              for row in table[1:]]
    return "\n".join(lines) + f"\n\n{totals_line(graph)}\n"


def render_csv(graph: Graph, depth: int | None = None) -> str:
    """CSV with raw integers (no thousands separators); for a symbolic input, expressions in the
    machine form JSON uses (sympy's syntax, ``9408*floor(H/2 + 1/2)*floor(W/2 + 1/2)``), which a
    program can parse, the output's dimensions joined by ``x``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["module", "op", "output", "params", "macs", "activations", "rf_h", "rf_w"])
    for r in rows(graph, depth):
        w.writerow([r.path, r.op, _csv_shape(r.shape), _json_count(r.params), _json_count(r.macs),
                    _json_count(r.activations), r.rf[0] if r.rf else "", r.rf[1] if r.rf else ""])
    return buf.getvalue()


def _csv_shape(shape: tuple | None) -> str:
    """``64x56x56``; a symbolic one as ``64xfloor(H/2 + 1/2)xfloor(W/2 + 1/2)`` (sympy's syntax)."""
    if not shape:
        return ""
    if all(type(d) is int for d in shape):
        return fmt_shape(shape)
    text = "x".join(str(d) for d in _json_dims(shape))
    return f"{text} (channels-last)" if channels_last(shape) else text


def render_text(graph: Graph, depth: int | None = None) -> str:
    """A box-drawn table (rich's heavy-head style) with totals.

    Drawn directly rather than through rich's Table, whose layout costs about a millisecond per row:
    a 20,000-layer summary must take seconds, not half a minute."""
    table = summary_table(graph, depth)
    # a network named after its file may hold anything: no terminal control codes
    name = graph.name if graph.name.isprintable() else ascii(graph.name)[1:-1]
    title = f"{name}  input {fmt_shape(_input(graph)) if graph.input_shape else '?'}"
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    right = [i >= 3 for i in range(len(widths))]

    def line(cells: list[str], edge: str, sep: str) -> str:
        padded = (c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right))
        return edge + sep.join(f" {c} " for c in padded) + edge

    def rule(left: str, fill: str, mid: str, end: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + end

    total = sum(widths) + 3 * len(widths) + 1
    out = [title.center(total), rule("┏", "━", "┳", "┓"), line(table[0], "┃", "┃"), rule("┡", "━", "╇", "┩")]
    out += [line(row, "│", "│") for row in table[1:]]
    out += [rule("└", "─", "┴", "┘"), totals_line(graph)]
    return "\n".join(out) + "\n"


def render_json(graph: Graph, depth: int | None = None) -> str:
    """Deterministic JSON."""
    return json.dumps(summary_json(graph, depth), indent=2) + "\n"


