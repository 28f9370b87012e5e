"""Architecture diagrams: an analyzed spec -> Graphviz DOT -> SVG / PNG / PDF (and the HTML viewer).

The work is split in two so the static renderer and the interactive viewer draw the same picture:

* :func:`build_model` turns the IR into a *view model*: one entry per IR node and per scope (block
  instance, group, branch, shortcut, dense block) with its Graphviz attributes already decided
  (label as people write the op, colour by op family, merge shapes, rule findings), plus the
  display edges.  The model is plain JSON data; the HTML viewer embeds it.
* :func:`to_dot` draws the model for one set of *open* scopes: an open scope is a labelled
  cluster, a closed one a single node standing for everything inside it.  ``--depth N`` opens
  the scopes less than N levels deep (the same levels as ``summary --depth``); ``--expand PATH``
  opens PATH, its ancestors and everything inside it.  The viewer's JavaScript repeats exactly
  this walk (``render_assets/viewer.js``) when a block is clicked.

Output is deterministic: nodes, clusters and edges are emitted in IR creation order and every
attribute dict is built in a fixed key order, so the same spec gives byte-identical DOT.
The ``dot`` binary (Graphviz) renders; when it is missing the DOT file is written instead and a
located diagnostic says how to install Graphviz.  Nothing here imports torch.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import limits
from ..diagnostics import Diagnostic, Loc, did_you_mean
from ..ir import Graph, display_path
from ..ops import OPS, channels_last, dim_text

FORMATS = ("svg", "png", "pdf", "dot", "html", "mmd")
SHOW_KEYS = ("shapes", "params", "macs")
DEFAULT_SHOW = frozenset({"shapes"})
DIRECTIONS = ("TB", "LR")
FONT = "Arial"  # one family: Viz.js (the HTML viewer) has metrics for Arial but not for a fallback list
FONT_FALLBACKS = "Arial,Helvetica,Liberation Sans,sans-serif"

INSTALL_HINT = ("install Graphviz, which provides 'dot': apt-get install graphviz (Debian/Ubuntu), "
                "brew install graphviz (macOS), conda install -c conda-forge graphviz, or see "
                "https://graphviz.org/download/")

#: Fill colour per op family (ops.OpSpec.family); light tints so black text stays legible.
FAMILY_COLORS: dict[str, str] = {
    "conv": "#BBDEFB",
    "norm": "#FFF59D",
    "activation": "#C8E6C9",
    "pool": "#FFCC80",
    "reshape": "#D7CCC8",
    "linear": "#B2DFDB",
    "regularize": "#EEEEEE",
    "misc": "#E1BEE7",
    "io": "#FFFFFF",
    "merge": "#D1C4E9",
}
FAMILY_NAMES = {"conv": "convolution", "norm": "normalization", "activation": "activation", "pool": "pooling",
                "reshape": "reshape", "linear": "linear", "regularize": "dropout", "misc": "other",
                "io": "input / output", "merge": "merge"}
BLOCK_FILL = "#E8EAF6"
BLOCK_BORDER = "#3949AB"
CLUSTER_FILLS = ("#F5F7FB", "#FFFFFF")
FINDING_COLOR = "#D50000"
EDGE_COLOR = "#546E7A"
AUX_COLOR = "#8D6E63"
TIMES = "\u00d7"


# ---------------------------------------------------------------------------------------- text


def fmt_count(n: int) -> str:
    """Three significant digits: ``13004888`` -> ``13.0M``, ``364512`` -> ``365K``, ``1498376192`` -> ``1.50G``."""
    for div, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "K")):
        if abs(n) >= div:
            v = n / div
            digits = 2 if v < 9.995 else 1 if v < 99.95 else 0
            return f"{v:.{digits}f}{suffix}"
    return str(n)


def fmt_shape(shape: Sequence[int] | None) -> str:
    """``(192, 35, 35)`` -> ``192×35×35``; a channels-last tensor ``28×28×116 (HWC)``; ``None`` -> ``?``."""
    if not shape:
        return "?"
    # a symbolic size (input 3xHxW) prints its expressions, spaced: 64 × ⌊(H−1)/2⌋ × ⌊(W−1)/2⌋
    text = TIMES.join(map(str, shape)) if all(type(d) is int for d in shape) else \
        f" {TIMES} ".join(dim_text(d) for d in shape)
    return f"{text} (HWC)" if channels_last(shape) else text


def _shown(data: dict) -> Sequence | None:
    """A node's shape as drawn: with expressions in H and W for a symbolic input."""
    return data.get("sym_shape") or data["shape"]


def _costs(data: dict) -> Any:
    """A node's costs as drawn: for a symbolic input its MACs (and a size-dependent classifier's
    params) as expressions, not their values at the representative size the passes ran at."""
    return data.get("sym_costs") or data["costs"]


def fmt_cost(n: object) -> str:
    """A count in a label: short (``1.81G``), or a symbolic input's expression as ``summary`` prints it."""
    return fmt_count(n) if type(n) is int else dim_text(n)


def _exact(n: object) -> str:
    """A count in a tooltip or the viewer: ``118,013,952``, or the expression."""
    return f"{n:,}" if type(n) is int else dim_text(n)


def _info_count(n: object) -> int | str:
    """A count for the view model (plain JSON): an int, or a symbolic input's expression as text."""
    return n if type(n) is int else dim_text(n)


def _scope_total(graph: Graph, key: str, members: Sequence[int]) -> object:
    """A scope's params or MACs: a plain sum, an expression for a symbolic input."""
    if graph.symbolic is None:
        costs = [graph.node(n)["costs"] for n in members]
        return sum(c.params if key == "params" else c.macs for c in costs)
    from ..passes.symbolic import total  # sympy only where a size is symbolic

    return total(graph, key, members)


def _pair(v: Any) -> str:
    if isinstance(v, tuple) and len(v) == 2:
        return str(v[0]) if v[0] == v[1] else f"{v[0]}{TIMES}{v[1]}"
    return str(v)


def _kernel(v: Any) -> str:
    if isinstance(v, tuple) and len(v) == 2:
        return f"{v[0]}{TIMES}{v[1]}"
    return f"{v}{TIMES}{v}"


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def op_text(op: str, args: Mapping[str, Any]) -> str:
    """An op written the way people write it: ``conv 3×3 /2, 32``, ``maxpool 3×3 /2 ceil``."""
    if op == "conv2d":
        parts = [f"conv {_kernel(args['kernel'])}"]
        if args.get("stride", (1, 1)) != (1, 1):
            parts.append(f" /{_pair(args['stride'])}")
        text = "".join(parts) + f", {args['out']}"
        if args.get("dilation", (1, 1)) != (1, 1):
            text += f" dil {_pair(args['dilation'])}"
        if args.get("groups", 1) != 1:
            text += f" g{args['groups']}"
        return text
    if op in ("maxpool", "avgpool"):
        stride = args.get("stride") or args["kernel"]
        text = f"{op} {_kernel(args['kernel'])} /{_pair(stride)}"
        if args.get("padding", (0, 0)) != (0, 0):
            text += f" pad {_pair(args['padding'])}"
        if args.get("ceil_mode"):
            text += " ceil"
        return text
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        return f"{op} {_kernel(args['size'])}"
    if op == "linear":
        return f"linear {args['out']}"
    if op in ("dropout", "dropout2d"):
        return f"{op} {_num(args['p'])}"
    if op == "lrn":
        return f"lrn {args['size']}"
    if op == "leaky_relu":
        return f"leaky_relu {_num(args['negative_slope'])}"
    if op == "scale":
        return f"{TIMES}{_num(args['factor'])}"
    if op == "concat":
        return "dense concat" if args.get("dense") else "concat"
    if op == "add":
        return "+"
    spec = OPS.get(op)
    if spec is not None and spec.text is not None:
        return spec.text(args)
    return op


def args_text(args: Mapping[str, Any]) -> str:
    """Every argument, ``name=value``, for the details view."""
    out = []
    for k, v in args.items():
        if v is None:
            continue
        if isinstance(v, tuple):
            v = _pair(v)
        elif isinstance(v, bool):
            v = "true" if v else "false"
        else:
            v = _num(v)
        out.append(f"{k}={v}")
    return ", ".join(out)


def _h(text: str) -> str:
    """Escape text for a Graphviz HTML-like label."""
    return html.escape(str(text), quote=True)


def _plain(text: str) -> str:
    """Text for a quoted DOT string: no backslashes or quotes that could break the quoting."""
    return str(text).replace("\\", "/").replace('"', "'")


# ---------------------------------------------------------------------------------------- model


@dataclass
class RenderOptions:
    """What to draw: depth, explicitly expanded scopes, direction and the optional annotations."""

    depth: int | None = None
    expand: tuple[str, ...] = ()
    direction: str = "TB"
    show: frozenset[str] = DEFAULT_SHOW


@dataclass
class Model:
    """The view model: JSON-ready data shared by the DOT writer and the HTML viewer."""

    name: str
    graph_attrs: dict[str, str]
    node_attrs: dict[str, str]
    edge_attrs: dict[str, str]
    nodes: list[dict[str, Any]]
    scopes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    roots: list[str]
    legend: dict[str, Any]
    scope_by_path: dict[str, str] = field(default_factory=dict)
    #: The total params as the viewer's header shows them: an expression for a symbolic input.
    params_text: str = "?"

    def to_json(self) -> dict[str, Any]:
        """The model as the viewer reads it."""
        return {"name": self.name, "graph_attrs": self.graph_attrs, "node_attrs": self.node_attrs,
                "edge_attrs": self.edge_attrs, "nodes": self.nodes, "scopes": self.scopes, "edges": self.edges,
                "roots": self.roots, "legend": self.legend}


def _findings(diags: Iterable[Diagnostic] | None) -> list[Diagnostic]:
    """Rule findings (codes ``R...``, warnings or errors; not notes) that name a module path."""
    return [d for d in (diags or ()) if d.code.startswith("R") and d.path and d.severity != "info"]


def _finding_targets(graph: Graph, scope_paths: Mapping[str, str], finds: list[Diagnostic]) \
        -> tuple[dict[int, list[Diagnostic]], dict[str, list[Diagnostic]]]:
    by_node: dict[int, list[Diagnostic]] = {}
    by_scope: dict[str, list[Diagnostic]] = {}
    for d in finds:
        path = d.path.split("<", 1)[0].rstrip(".")  # "Mixed_6a.<concat>" names the scope's merge
        nid = graph.by_path(path)
        if nid is not None and d.path == path:
            by_node.setdefault(nid, []).append(d)
        elif path in scope_paths:
            by_scope.setdefault(scope_paths[path], []).append(d)
        elif nid is not None:
            by_node.setdefault(nid, []).append(d)
    return by_node, by_scope


def _scope_chain(scope: str, known: Mapping[str, str]) -> list[str]:
    """Registered scopes enclosing ``scope`` (itself included), outermost first."""
    if not scope:
        return []
    parts = scope.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in known]


def _short_name(path: str, parent: str | None) -> str:
    """The scope's name inside its parent; a positional name keeps one more segment (``layer1.0``)."""
    rel = path[len(parent) + 1:] if parent and path.startswith(parent + ".") else path
    if rel.split(".")[0].isdigit() and parent:
        rel = parent.rsplit(".", 1)[-1] + "." + rel
    return rel


def _html_label(lines: list[tuple[str, str]]) -> str:
    """An HTML-like label from (style, text) lines: style is "b" bold, "" plain, "s" small grey, "r" red."""
    out = []
    for style, text in lines:
        t = _h(text)
        if style == "b":
            t = f"<B>{t}</B>"
        elif style == "s":
            t = f'<FONT POINT-SIZE="8" COLOR="#455A64">{t}</FONT>'
        elif style == "r":
            t = f'<FONT POINT-SIZE="9" COLOR="{FINDING_COLOR}"><B>{t}</B></FONT>'
        out.append(t)
    return "<" + "<BR/>".join(out) + ">"


def _rf_text(rf: tuple | None) -> str:
    if not rf:
        return "?"
    h, w, sh, sw = rf
    size = f"{h}{TIMES}{w}" if h != w else f"{h}{TIMES}{h}"
    stride = str(sh) if sh == sw else f"{sh}{TIMES}{sw}"
    return f"{size} (stride {stride})"


def build_model(graph: Graph, diags: Iterable[Diagnostic] | None = None,
                show: frozenset[str] = DEFAULT_SHOW, file: str = "") -> Model:
    """The view model of ``graph`` (see the module docstring); ``diags`` supplies rule findings."""
    g = graph.g
    scope_ids = {path: f"s{i}" for i, path in enumerate(graph.scopes)}
    finds_by_node, finds_by_scope = _finding_targets(graph, scope_ids, _findings(diags))
    main_out = graph.outputs.get("main")
    trunk = graph.eval_nodes() if main_out is not None else set(g.nodes)

    # ---- which scope owns each node (io nodes always sit at the top level)
    owner: dict[int, list[str]] = {}
    for nid, d in g.nodes(data=True):
        owner[nid] = [] if d["op"] in ("input", "output") else _scope_chain(d["scope"], scope_ids)
    members: dict[str, list[int]] = {p: [] for p in graph.scopes}
    for nid in sorted(owner):
        for p in owner[nid]:
            members[p].append(nid)
    used = [p for p in graph.scopes if members[p]]
    parent: dict[str, str | None] = {}
    for p in used:
        chain = _scope_chain(p, scope_ids)
        ups = [c for c in chain[:-1] if members[c]]
        parent[p] = ups[-1] if ups else None

    # ---- children of every scope (and of the top level), ordered by their first node
    kids: dict[str | None, list[tuple[int, str]]] = {None: []}
    for p in used:
        kids.setdefault(p, [])
    for p in used:
        kids[parent[p]].append((members[p][0], scope_ids[p]))
    for nid in sorted(owner):
        chain = [c for c in owner[nid] if members[c]]
        kids[chain[-1] if chain else None].append((nid, f"n{nid}"))
    for v in kids.values():
        v.sort(key=lambda t: (t[0], t[1][0] == "n"))  # a scope before the node that starts it

    # ---- nodes
    legend_keys: set[str] = set()
    nodes: list[dict[str, Any]] = []
    for nid, d in g.nodes(data=True):
        op, args = d["op"], d["args"]
        fam = OPS[op].family if op in OPS else "misc"
        costs = _costs(d)
        aux = nid not in trunk
        if op == "input":
            text = f"input {fmt_shape(graph.symbolic.input if graph.symbolic else d['shape'])}"
        elif op == "output":
            name = args.get("name", "main") if args else "main"
            aux_name = next((k for k, v in graph.outputs.items() if v == nid and k != "main"), None)
            if aux_name is not None:
                w = graph.aux_weights.get(aux_name)
                text = f"{aux_name} output" + (f" {TIMES}{_num(w)}" if w is not None else "")
            else:
                text = "output" if name == "main" else f"{name} output"
        else:
            text = op_text(op, args)
        lines: list[tuple[str, str]] = [("b" if op not in ("add", "mul") else "", text)]
        local = d["label"]
        if local and local != op and op not in ("input", "output"):
            lines.append(("s", str(local)))
        if "params" in show and costs.params:
            lines.append(("s", f"{fmt_cost(costs.params)} params"))
        if "macs" in show and costs.macs:
            lines.append(("s", f"{fmt_cost(costs.macs)} MACs"))
        node_finds = finds_by_node.get(nid, [])
        if node_finds:
            lines.append(("r", " ".join(sorted({f.code for f in node_finds}))))
        attrs: dict[str, str] = {"id": f"n{nid}", "label": _html_label(lines)}
        keys = ["dense" if args.get("dense") else "concat"] if op == "concat" else [op] if op in ("add", "mul") else \
            [] if fam == "io" else [fam]
        if aux:
            keys.append("aux")
        if node_finds:
            keys.append("finding")
        legend_keys.update(keys)
        if op == "concat":
            attrs.update(shape="invtrapezium", style="filled", fillcolor=FAMILY_COLORS["merge"])
            if args.get("dense"):
                attrs["peripheries"] = "2"
        elif op in ("add", "mul"):
            attrs.update(shape="circle", style="filled", fillcolor=FAMILY_COLORS["merge"], width="0.3",
                         height="0.3", fixedsize="true", fontsize="14")
            if len(lines) > 1:  # annotations do not fit in the circle
                attrs.update(fixedsize="false", shape="ellipse")
        elif op in ("input", "output"):
            attrs.update(style="rounded,filled,bold", fillcolor=FAMILY_COLORS["io"])
        else:
            attrs.update(fillcolor=FAMILY_COLORS.get(fam, "#FFFFFF"))
            if fam == "regularize":
                attrs["style"] = "rounded,filled,dashed"
        if aux and op != "output":
            attrs["color"] = AUX_COLOR
        elif aux:
            attrs.update(color=AUX_COLOR, fontcolor="#4E342E", style="rounded,filled,bold,dashed")
        if node_finds:
            attrs.update(color=FINDING_COLOR, penwidth="2.5")
        info = {
            "title": d["path"] if "@" not in d["path"] else f"{display_path(d['path'])} ({text})",
            "op": op,
            "args": args_text(args) if op not in ("input", "output") else "",
            "shape": fmt_shape(_shown(d)),
            "params": _info_count(costs.params),
            "macs": _info_count(costs.macs),
            "rf": _rf_text(d["rf"]),
            "loc": f"{Path(d['loc'].file).name}:{d['loc'].line}" if d["loc"] and d["loc"].line else "",
            "findings": [f"{f.code}: {f.message}" for f in node_finds],
            "aux": aux,
        }
        if op in ("concat", "add", "mul"):
            info["inputs"] = " + ".join(fmt_shape(_shown(g.nodes[u])) for u in graph.inputs(nid))
        attrs["tooltip"] = _tooltip(info)
        nodes.append({"id": f"n{nid}", "nid": nid, "scopes": [scope_ids[c] for c in owner[nid] if members[c]],
                      "attrs": attrs, "info": info, "legend": keys})

    # ---- scopes
    scopes: list[dict[str, Any]] = []
    scope_by_path: dict[str, str] = {}
    for p in used:
        sid = scope_ids[p]
        scope_by_path[p] = sid
        info_s = graph.scopes[p]
        mem = members[p]
        params = _scope_total(graph, "params", mem)
        macs = _scope_total(graph, "macs", mem)
        aux = all(n not in trunk for n in mem)
        aux_head = aux and not (parent[p] and all(n not in trunk for n in members[parent[p]]))
        last = mem[-1]
        depth = len(p.split("."))
        level = len([c for c in _scope_chain(p, scope_ids) if members[c]])
        kind = info_s.kind
        what = info_s.block or ("dense block" if kind == "dense" else kind)
        name = _short_name(p, parent[p])
        inner_finds = [f for n in mem for f in finds_by_node.get(n, [])]
        own_finds = list(finds_by_scope.get(sid, []))
        for q in used:  # findings on nested scopes count for the collapsed node too
            if q != p and q.startswith(p + "."):
                inner_finds += finds_by_scope.get(scope_ids[q], [])
        codes = " ".join(sorted({f.code for f in own_finds + inner_finds}))
        head = f"{name}: {what}" if info_s.block else f"{name} ({what})" if kind != "group" else name
        extras = []
        if params:
            extras.append(f"{fmt_cost(params)} params")
        if "macs" in show and macs:
            extras.append(f"{fmt_cost(macs)} MACs")
        if aux_head:
            extras.append("aux head, training only")
        cl_label = [("b", head)] + ([("s", " · ".join(extras))] if extras else [])
        if own_finds:
            cl_label.append(("r", " ".join(sorted({f.code for f in own_finds}))))
        block_like = kind == "block" or kind == "dense"
        cluster = {
            "id": sid,
            "label": _html_label(cl_label),
            "labeljust": "l",
            "style": "rounded,filled" if block_like else "rounded,dashed",
            "fillcolor": CLUSTER_FILLS[(level - 1) % 2] if block_like else "none",
            "color": (FINDING_COLOR if own_finds else AUX_COLOR if aux else
                      "#7986CB" if block_like else "#90A4AE"),
            "penwidth": "2.5" if own_finds else "1",
            "fontsize": "10",
            "margin": "6",
        }
        if not block_like:
            del cluster["fillcolor"]
        col_lines = [("b", name), ("", what)]
        stats = [f"{fmt_cost(params)} params"] if params else []
        if "macs" in show and macs:
            stats.append(f"{fmt_cost(macs)} MACs")
        if stats:
            col_lines.append(("s", " · ".join(stats)))
        if aux_head:
            col_lines.append(("s", "aux head, training only"))
        if codes:
            col_lines.append(("r", codes))
        collapsed = {
            "id": sid,
            "label": _html_label(col_lines),
            "shape": "box",
            "style": "rounded,filled,bold" + (",dashed" if aux else ""),
            "fillcolor": BLOCK_FILL,
            "color": FINDING_COLOR if codes else AUX_COLOR if aux else BLOCK_BORDER,
            "penwidth": "2.5" if codes else "1.5",
        }
        sinfo = {
            "title": p,
            "op": what,
            "args": args_text(info_s.args),
            "shape": fmt_shape(_shown(g.nodes[last])),
            "params": _info_count(params),
            "macs": _info_count(macs),
            "rf": _rf_text(g.nodes[last]["rf"]),
            "loc": f"{Path(info_s.loc.file).name}:{info_s.loc.line}" if info_s.loc and info_s.loc.line else "",
            "findings": [f"{f.code}: {f.message}" for f in own_finds + inner_finds],
            "aux": aux,
            "layers": sum(1 for n in mem if not OPS[g.nodes[n]["op"]].internal),
        }
        collapsed["tooltip"] = _tooltip(sinfo)
        cluster["tooltip"] = collapsed["tooltip"]
        keys = ["block"] + (["aux"] if aux else []) + (["finding"] if codes else [])
        legend_keys.update(keys)
        scopes.append({"id": sid, "path": p, "depth": depth, "parent": scope_ids[parent[p]] if parent[p] else None,
                       "children": [k for _, k in kids[p]], "cluster": cluster, "collapsed": collapsed,
                       "info": sinfo, "legend": keys, "cluster_legend": ["finding"] if own_finds else []})

    edges = _display_edges(graph, trunk, show)
    title = _title(graph)
    graph_attrs = {
        "rankdir": "TB",
        "newrank": "true",
        "compound": "true",
        "nodesep": "0.18",
        "ranksep": "0.22",
        "fontname": FONT,
        "fontsize": "10",
        "labelloc": "t",
        "labeljust": "l",
        "label": "",  # the title and the legend of what is drawn: see legend_label
        "tooltip": graph.name,
    }
    node_attrs = {"fontname": FONT, "fontsize": "10", "shape": "box", "style": "rounded,filled", "height": "0.3",
                  "margin": "0.1,0.03", "color": "#37474F", "penwidth": "1"}
    edge_attrs = {"fontname": FONT, "fontsize": "8", "fontcolor": "#37474F", "color": EDGE_COLOR,
                  "arrowsize": "0.5", "penwidth": "1"}
    return Model(graph.name, graph_attrs, node_attrs, edge_attrs, nodes, scopes, edges,
                 [k for _, k in kids[None]], _legend_model(title, legend_keys), scope_by_path,
                 fmt_cost(_totals(graph)[0]))


def _tooltip(info: Mapping[str, Any]) -> str:
    parts = [info["title"]]
    if info.get("args"):
        parts.append(f"{info['op']}({info['args']})")
    elif info.get("op"):
        parts.append(str(info["op"]))
    if info.get("inputs"):
        parts.append(f"in {info['inputs']}")
    parts.append(f"out {info['shape']} | {_exact(info['params'])} params | {_exact(info['macs'])} MACs | "
                 f"RF {info['rf']}")
    parts += info.get("findings") or []
    return "\\n".join(_plain(p) for p in parts)


def _title(graph: Graph) -> str:
    shape = fmt_shape(graph.symbolic.input if graph.symbolic else graph.input_shape) if graph.input_shape else "?"
    params, macs = _totals(graph)
    return f"{graph.name}  ·  input {shape}  ·  {fmt_cost(params)} params  ·  {fmt_cost(macs)} MACs (eval)"


def _totals(graph: Graph) -> tuple[object, object]:
    """Total params and eval MACs: expressions in H and W for a symbolic input."""
    if graph.symbolic is None:
        return graph.total_params(), graph.eval_macs()
    from ..passes.symbolic import total

    return total(graph, "params"), total(graph, "macs", graph.eval_nodes())


LEGEND_ORDER = ("conv", "norm", "activation", "pool", "reshape", "linear", "regularize", "misc", "concat", "dense",
                "add", "mul", "block", "aux", "finding")


def _legend_cell(key: str) -> str:
    if key in FAMILY_NAMES:
        return f'<TD BGCOLOR="{FAMILY_COLORS[key]}" BORDER="1">{_h(FAMILY_NAMES[key])}</TD>'
    merge = FAMILY_COLORS["merge"]
    return {
        "concat": f'<TD BGCOLOR="{merge}" BORDER="1">concat \u25bd</TD>',
        "dense": f'<TD BGCOLOR="{merge}" BORDER="1">dense concat (double border)</TD>',
        "add": f'<TD BGCOLOR="{merge}" BORDER="1">add (+)</TD>',
        "mul": f'<TD BGCOLOR="{merge}" BORDER="1">gate (\u00d7)</TD>',
        "block": f'<TD BGCOLOR="{BLOCK_FILL}" BORDER="1" COLOR="{BLOCK_BORDER}"><B>collapsed block</B></TD>',
        "aux": f'<TD BORDER="1" COLOR="{AUX_COLOR}"><FONT COLOR="{AUX_COLOR}">aux head (training only)</FONT></TD>',
        "finding": f'<TD BORDER="1" COLOR="{FINDING_COLOR}"><FONT COLOR="{FINDING_COLOR}"><B>rule finding</B>'
                   "</FONT></TD>",
    }[key]


def legend_label(model: Model, keys: set[str]) -> str:
    """The graph label: title line plus a legend of the node kinds in ``keys`` (those drawn)."""
    cells = [c["cell"] for c in model.legend["items"] if c["key"] in keys]
    return model.legend["head"].replace("@SPAN@", str(max(len(cells), 1))) + "".join(cells) + model.legend["tail"]


def _legend_model(title: str, keys: set[str]) -> dict[str, Any]:
    return {
        "head": ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="3" CELLPADDING="3">'
                 f'<TR><TD COLSPAN="@SPAN@" ALIGN="LEFT"><FONT POINT-SIZE="13"><B>{_h(title)}</B></FONT></TD></TR><TR>'),
        "tail": "</TR></TABLE>>",
        "items": [{"key": k, "cell": _legend_cell(k)} for k in LEGEND_ORDER if k in keys],
    }


def _display_edges(graph: Graph, trunk: set[int], show: frozenset[str]) -> list[dict[str, Any]]:
    """IR edges as drawn, each with the shape of the tensor it carries (``label``) and a priority
    for where that shape is written (``prio``: 0 on the main path, 1 elsewhere).

    A dense concat whose inputs extend an earlier dense concat's inputs takes that concat as one
    input (the same tensor, concatenation being associative), so a dense block reads as a growing
    trunk instead of a quadratic fan of edges."""
    g = graph.g
    dense_by_inputs: dict[tuple[int, ...], int] = {}
    edges: list[dict[str, Any]] = []
    for v in graph.order():
        d = g.nodes[v]
        ins = graph.inputs(v)
        srcs: list[tuple[int, bool]] = [(u, False) for u in ins]
        if d["op"] == "concat" and d["args"].get("dense"):
            key = tuple(ins)
            for cut in range(len(ins) - 1, 1, -1):
                prev = dense_by_inputs.get(key[:cut])
                if prev is not None:
                    srcs = [(prev, True)] + [(u, False) for u in ins[cut:]]
                    break
            dense_by_inputs[key] = v
        for u, dense_trunk in srcs:
            attrs: dict[str, str] = {}
            if dense_trunk:
                attrs["penwidth"] = "2.5"
                attrs["weight"] = "4"
            side = u in trunk and v not in trunk
            if side:  # an aux head leaves the trunk sideways and does not pull it out of line
                attrs.update(style="dashed", color=AUX_COLOR, weight="0")
            elif u in trunk and v in trunk and len(ins) == 1 and g.out_degree(u) == 1:
                attrs["weight"] = "3"  # keep plain chains straight
            elif g.out_degree(u) > 1 and not dense_trunk:
                attrs["weight"] = "2"  # branches start right under their split, side by side
            edges.append({"src": u, "dst": v, "attrs": attrs,
                          "label": fmt_shape(_shown(g.nodes[u])) if "shapes" in show else "",
                          "prio": 0 if v in trunk else 1})
    return edges


# ---------------------------------------------------------------------------------------- views


def initial_open(model: Model, depth: int | None, expand: Sequence[str] = ()) -> set[str]:
    """Scope ids drawn as clusters for ``--depth``/``--expand`` (unknown paths: see :func:`check_expand`)."""
    opened = {s["id"] for s in model.scopes if depth is None or s["depth"] < depth}
    for path in expand:
        for s in model.scopes:
            p = s["path"]
            if p == path or p.startswith(path + ".") or path.startswith(p + "."):
                opened.add(s["id"])
    return opened


def check_expand(model: Model, graph: Graph, expand: Sequence[str]) -> list[Diagnostic]:
    """An E504 diagnostic for each ``--expand`` path that names no scope."""
    out = []
    for path in expand:
        if path not in model.scope_by_path:
            hint = did_you_mean(path, model.scope_by_path) or "expand a block instance or group path shown by " \
                                                               "'archdsl summary --depth N'"
            out.append(Diagnostic("E504", f"--expand {path!r}: no block or group has that path",
                                  Loc("<command line>", 1, 1), hint=hint))
    return out


def visible_map(model: Model, opened: set[str]) -> dict[str, str]:
    """Item id (``nID`` or scope id) -> the id drawn for it: itself, or its outermost closed scope."""
    rep: dict[str, str] = {}
    for n in model.nodes:
        r = n["id"]
        for sid in n["scopes"]:
            if sid not in opened:
                r = sid
                break
        rep[n["id"]] = r
    return rep


def drawn_items(model: Model, opened: set[str]) -> list[str]:
    """Ids of the nodes drawn for ``opened``: IR nodes (``nID``) and collapsed scopes, in DOT order."""
    by_id = {s["id"]: s for s in model.scopes}
    out: list[str] = []
    stack = list(reversed(model.roots))
    while stack:
        item = stack.pop()
        if item in by_id and item in opened:
            stack.extend(reversed(by_id[item]["children"]))
        else:
            out.append(item)
    return out


def to_dot(model: Model, opened: set[str], direction: str = "TB", tooltips: bool = True) -> str:
    """The DOT source of ``model`` with the scopes in ``opened`` drawn as clusters."""
    import graphviz

    by_id = {s["id"]: s for s in model.scopes}
    nodes = {n["id"]: n for n in model.nodes}
    gattrs = dict(model.graph_attrs, rankdir=direction)
    dot = graphviz.Digraph(name=model.name, graph_attr=gattrs, node_attr=model.node_attrs,
                           edge_attr=model.edge_attrs)

    def attrs_of(a: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in a.items() if tooltips or k != "tooltip"}

    keys: set[str] = set()

    def emit(container: Any, items: list[str]) -> None:
        for item in items:
            if item in nodes:
                container.node(item, _attributes=attrs_of(nodes[item]["attrs"]))
                keys.update(nodes[item]["legend"])
                continue
            s = by_id[item]
            if item in opened:
                sub = graphviz.Digraph(name=f"cluster_{item}", graph_attr=attrs_of(s["cluster"]))
                emit(sub, s["children"])
                container.subgraph(sub)
                keys.update(s["cluster_legend"])
            else:
                container.node(item, _attributes=attrs_of(s["collapsed"]))
                keys.update(s["legend"])

    emit(dot, model.roots)
    dot.graph_attr["label"] = legend_label(model, keys)
    seen = visible_edges(model, opened)
    # An edge into the first item of its innermost cluster ends at the cluster's border, above the
    # cluster's label, instead of crossing the label on its way to the node.
    enclosing: dict[str, list[str]] = {n["id"]: n["scopes"] for n in model.nodes}
    for s in model.scopes:
        enclosing[s["id"]] = _ancestors(s, by_id)
    for (a, b), attrs in seen.items():
        inner = [c for c in enclosing[b] if c in opened]
        if inner and _first_item(by_id[inner[-1]], by_id, opened) == b and inner[-1] not in _open_chain(a, enclosing,
                                                                                                      opened):
            attrs = dict(attrs, lhead=f"cluster_{inner[-1]}")
        dot.edge(a, b, _attributes=attrs)
    return dot.source


def visible_edges(model: Model, opened: set[str]) -> dict[tuple[str, str], dict[str, str]]:
    """The edges drawn for ``opened``, (from, to) drawn ids -> attributes, in first-seen order.

    Each tensor's shape (``label``) is written once, on the first visible edge that carries it
    along the main path (else the first one at all); edges inside a collapsed scope vanish."""
    rep = visible_map(model, opened)
    order: dict[tuple[str, str], int] = {}
    attrs_of_edge: dict[tuple[str, str], dict[str, str]] = {}
    best: dict[int, tuple[int, int, tuple[str, str]]] = {}
    label_of: dict[int, str] = {}
    for e in model.edges:
        key = (rep[f"n{e['src']}"], rep[f"n{e['dst']}"])
        if key[0] == key[1]:
            continue
        if key not in order:
            order[key] = len(order)
            attrs_of_edge[key] = dict(e["attrs"])
        cand = (e["prio"], order[key], key)
        if e["label"] and (e["src"] not in best or cand[:2] < best[e["src"]][:2]):
            best[e["src"]] = cand
            label_of[e["src"]] = e["label"]
    labels: dict[tuple[str, str], list[str]] = {}
    for src, (_, _, key) in sorted(best.items()):  # by tensor, so multi-tensor labels are deterministic
        if label_of[src] not in labels.setdefault(key, []):
            labels[key].append(label_of[src])
    return {k: dict(attrs_of_edge[k], label=", ".join(labels[k])) if labels.get(k) else attrs_of_edge[k]
            for k in order}


def _ancestors(s: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]) -> list[str]:
    out = []
    while s["parent"]:
        out.append(s["parent"])
        s = by_id[s["parent"]]
    return out[::-1]


def _first_item(s: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]], opened: set[str]) -> str:
    """The first thing drawn inside open scope ``s``: a node or a collapsed scope."""
    item = s["children"][0]
    while item in by_id and item in opened:
        item = by_id[item]["children"][0]
    return item


def _open_chain(item: str, enclosing: Mapping[str, list[str]], opened: set[str]) -> list[str]:
    return [c for c in enclosing[item] if c in opened]


# ---------------------------------------------------------------------------------------- rendering


class RenderError(Exception):
    """Rendering failed; ``diagnostic`` says why and how to fix it."""

    def __init__(self, diagnostic: Diagnostic, wrote: str | None = None) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.wrote = wrote


def find_dot() -> str | None:
    """The ``dot`` executable, or ``None`` when Graphviz is not installed."""
    return shutil.which("dot")


def run_dot(source: str, fmt: str, dot_exe: str | None = None) -> bytes:
    """Render DOT ``source`` to ``fmt`` bytes with the ``dot`` binary (raises :class:`RenderError`)."""
    exe = dot_exe or find_dot()
    if exe is None:
        raise RenderError(Diagnostic("E501", "Graphviz 'dot' was not found on PATH", Loc("<render>", 1, 1),
                                     hint=INSTALL_HINT))
    seconds = limits.current().dot_seconds
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True, check=False,
                              timeout=seconds)
    except subprocess.TimeoutExpired:
        raise RenderError(Diagnostic("E502", f"Graphviz 'dot' did not finish within {seconds} s",
                                     Loc("<render>", 1, 1),
                                     hint="collapse blocks with --depth N, or allow more time with "
                                          f"--limit dot_seconds={seconds * 4}")) from None
    except OSError as exc:
        raise RenderError(Diagnostic("E501", f"cannot run Graphviz 'dot' ({exe}): {exc.strerror or exc}",
                                     Loc("<render>", 1, 1), hint=INSTALL_HINT)) from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(Diagnostic("E502", f"Graphviz 'dot' failed (exit {proc.returncode}): "
                                     f"{err[-1] if err else 'no message'}", Loc("<render>", 1, 1),
                                     hint="report this as an archdsl bug, with the .dot file from "
                                          "'archdsl render ... -o OUT.dot'"))
    return proc.stdout


def format_for(out: str, fmt: str | None) -> str:
    """The output format: ``--format`` if given, else the output file's extension."""
    if fmt:
        return fmt
    ext = Path(out).suffix.lower().lstrip(".")
    if ext == "htm":
        ext = "html"
    if ext not in FORMATS:
        raise RenderError(Diagnostic("E503", f"cannot tell the output format from {out!r}",
                                     Loc("<command line>", 1, 1),
                                     hint=f"use an extension among {', '.join('.' + f for f in FORMATS)} "
                                          "or pass --format"))
    return ext


def render_graph(graph: Graph, out: str | os.PathLike, fmt: str | None = None, options: RenderOptions | None = None,
                 diags: Iterable[Diagnostic] | None = None, source_file: str = "",
                 notes: list[str] | None = None) -> str:
    """Draw ``graph`` to ``out`` (format from ``fmt`` or the extension); returns the format written.

    Raises :class:`RenderError` with a diagnostic on failure; when ``dot`` is missing the DOT
    source is written next to ``out`` (``OUT.dot``) first and ``RenderError.wrote`` names it.
    ``notes`` collects what the caller should tell (a Mermaid diagram too big for code hosts).
    """
    from ..io import write_atomic

    options = options or RenderOptions()
    fmt = format_for(str(out), fmt)
    model = build_model(graph, diags, options.show, source_file)
    bad = check_expand(model, graph, options.expand)
    if bad:
        raise RenderError(bad[0])
    opened = initial_open(model, options.depth, options.expand)
    if fmt == "mmd":  # text for Mermaid, laid out where it is shown: no dot, no node cap
        from .mermaid import size_note, to_mermaid

        text = to_mermaid(model, opened, options.direction)
        _write(out, text, write_atomic)
        note = size_note(model, opened, options.direction, text)
        if note and notes is not None:
            notes.append(note)
        return fmt
    if fmt != "dot":
        _check_drawn_size(model, opened, graph)
    source = to_dot(model, opened, options.direction)
    if fmt == "dot":
        _write(out, source, write_atomic)
        return fmt
    exe = find_dot()
    if exe is None:
        dot_path = str(Path(out).with_suffix(".dot"))
        if dot_path == str(out):
            dot_path = str(out) + ".dot"
        _write(dot_path, source, write_atomic)
        cmd_fmt = "svg" if fmt == "html" else fmt
        raise RenderError(Diagnostic(
            "E501", f"Graphviz 'dot' was not found on PATH; wrote the diagram source to {dot_path} instead",
            Loc("<render>", 1, 1),
            hint=f"{INSTALL_HINT}; then run: dot -T{cmd_fmt} {dot_path} -o {Path(out).with_suffix('.' + cmd_fmt)}"
                 + (" (or rerun this command for the HTML viewer)" if fmt == "html" else "")), wrote=dot_path)
    if fmt == "html":
        from .render_html import build_html

        svg = run_dot(to_dot(model, opened, options.direction, tooltips=False), "svg", exe)
        _write(out, build_html(model, opened, options.direction, svg.decode("utf-8")), write_atomic)
        return fmt
    data = run_dot(source, fmt, exe)
    if fmt == "svg":
        data = svg_fonts(data)
    _write(out, data, write_atomic)
    return fmt


def _check_drawn_size(model: Model, opened: set[str], graph: Graph) -> None:
    """Refuse (E505) a diagram with more nodes than the ``render_nodes`` limit before running ``dot``,
    whose layout time grows faster than linearly: a small spec can expand to a graph it would take
    Graphviz hours to lay out."""
    drawn = len(drawn_items(model, opened))
    cap = limits.current().render_nodes
    if drawn > cap:
        loc = graph.node(graph.input_node)["loc"] if graph.input_node is not None else Loc("<render>", 1, 1)
        raise RenderError(Diagnostic("E505", f"the diagram would have {drawn:,} nodes; the limit is {cap:,}", loc,
                                     hint="collapse blocks with --depth N, write OUT.dot (not laid out), or "
                                          f"raise the limit with --limit render_nodes={drawn}"))


def svg_fonts(svg: bytes) -> bytes:
    """Give SVG text a font fallback list (Graphviz writes the single family it measured with)."""
    return svg.replace(f'font-family="{FONT}"'.encode(), f'font-family="{FONT_FALLBACKS}"'.encode())


def _write(path: str | os.PathLike, data: str | bytes, write_atomic: Any) -> None:
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise RenderError(Diagnostic("E005", f"cannot write {path}: {exc.strerror or exc}",
                                     Loc(str(path), 1, 1))) from None


def model_json(model: Model) -> str:
    """The model as compact, deterministic JSON (for the viewer)."""
    return json.dumps(model.to_json(), ensure_ascii=False, separators=(",", ":"))
