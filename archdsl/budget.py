"""Budgets: upper bounds on whole-network figures, declared in a spec or given on the command line.

A spec writes ``budget(params <= 5.5M, macs <= 600M, depth <= 60, activations <= 20M)`` (YAML:
``budget: {params: 5.5M, ...}``); ``--budget params<=5.5M`` (repeatable) adds a bound or replaces the
spec's bound of that figure.  After the shape and cost passes, a figure above its bound is an error
(E401) located at the clause that set the bound, with the measured value, the excess and where most
of it comes from; a figure within its bound is an info (I406) giving the margin.

The figures are the ones ``archdsl summary`` and ``archdsl sweep`` report:

* ``params``: parameters of the whole module, aux heads included (summary's ``params``);
* ``macs``: multiply-accumulates of one eval-mode forward at batch 1 (summary's ``MACs (eval)``);
* ``depth``: weight layers (conv2d, linear) on the longest input-to-main-output path
  (:func:`archdsl.metrics.depth`: ResNet-50 has 50, VGG-16 16);
* ``activations``: output elements of every layer at batch 1, summed
  (:func:`archdsl.metrics.activations`; 4 bytes each in float32).

A bound is a non-negative number, optionally with a unit (``K``, ``M``, ``G``: powers of 1000), or an
expression of the network's parameters and globals, evaluated like any other.  Nothing here imports
torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from . import ast as A
from . import metrics
from .ast import BUDGET_UNITS
from .diagnostics import INFO, WARNING, Diagnostic, DiagnosticBag, DiagnosticError, Loc, did_you_mean
from .expr import Value, evaluate, show
from .frontend.printer import bound as written_bound
from .ir import Graph, display_path
from .passes.shapes import activations as tensor_elements

#: The figures a budget may bound, in the order they are reported.
FIGURES = ("params", "macs", "depth", "activations")

#: Where ``--budget`` diagnostics point, as ``-p`` ones do.
COMMAND_LINE = "<command line>"

#: The codes of a budget's verdicts on a fully analyzed network (over, not measurable, within):
#: a caller that wants the figures of a network over its budget (``sweep``, ``summary``) treats an
#: E401 as a verdict, not as a failed analysis.
VERDICT_CODES = frozenset({"E401", "W405", "I406"})


@dataclass(frozen=True)
class Bound:
    """A checked budget clause: the figure, its limit, the limit as written and where it was written."""

    figure: str
    limit: int | float
    text: str
    loc: Loc


# ----------------------------------------------------------------------------- reading bounds


_CLI_HEAD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>|=)?\s*")


def parse_cli_budgets(pairs: Iterable[str]) -> tuple[A.BudgetItem, ...]:
    """``--budget params<=5.5M`` arguments as budget clauses located on the command line (column =
    position in the argument); a malformed one raises :class:`DiagnosticError`."""
    from .frontend.text import parse_text

    items = []
    for pair in pairs:
        m = _CLI_HEAD.match(pair)
        if m is None or m.group(2) is None:
            raise DiagnosticError(Diagnostic("E402", f"bad budget {pair!r}", Loc(COMMAND_LINE, 1, 1),
                                             hint="write --budget FIGURE<=BOUND, e.g. --budget params<=5.5M"))
        name, op = m.group(1), m.group(2)
        if op != "<=":
            raise DiagnosticError(Diagnostic(
                "E402", f"a budget is an upper bound: '{name} {op} ...' is not one",
                Loc(COMMAND_LINE, 1, m.start(2) + 1), hint=f"write --budget {name}<=BOUND"))
        value, unit = parse_text(pair[m.end():], COMMAND_LINE, start="bound_start", col_offset=m.end())
        items.append(A.BudgetItem(name, value, unit, Loc(COMMAND_LINE, 1, m.start(1) + 1)))
    return tuple(items)


def resolve_budget(spec_items: Sequence[A.BudgetItem], cli_items: Sequence[A.BudgetItem],
                   env: Mapping[str, Value], diags: DiagnosticBag) -> list[Bound]:
    """The bounds in force: the spec's, each replaced by the command line's bound of the same figure.

    Every clause is checked (E402 unknown figure, E403 a bound that is not a non-negative number,
    E404 a figure bounded twice in the same place); a bad clause is reported and left out."""
    merged = {b.figure: b for b in _bounds(spec_items, env, diags)}
    merged.update({b.figure: b for b in _bounds(cli_items, env, diags)})
    return sorted(merged.values(), key=lambda b: FIGURES.index(b.figure))


def _bounds(items: Sequence[A.BudgetItem], env: Mapping[str, Value], diags: DiagnosticBag) -> list[Bound]:
    seen: dict[str, A.BudgetItem] = {}
    out = []
    for item in items:
        if item.figure not in FIGURES:
            diags.error("E402", f"unknown budget figure '{item.figure}'", item.loc,
                        hint=did_you_mean(item.figure, FIGURES) or f"figures: {', '.join(FIGURES)}")
            continue
        if item.figure in seen:
            first = seen[item.figure].loc
            where = "earlier on the command line" if first.file == COMMAND_LINE else f"at {first}"
            diags.error("E404", f"budget for {item.figure} given twice", item.loc, hint=f"first given {where}")
            continue
        seen[item.figure] = item
        limit = _limit(item, env, diags)
        if limit is not None:
            out.append(Bound(item.figure, limit, written_bound(item), item.loc))
    return out


def _limit(item: A.BudgetItem, env: Mapping[str, Value], diags: DiagnosticBag) -> int | float | None:
    """The bound's value in full (unit applied); None, reported, when it is not a non-negative number."""
    try:
        value = evaluate(item.value, env)
    except DiagnosticError as exc:
        diags.add(exc.diagnostic)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        diags.error("E403", f"a budget bound must be a number, got {show(value)}", item.value.loc,
                    hint="write a count such as 5.5M, 600M or 60")
        return None
    if value < 0:
        diags.error("E403", f"a budget bound cannot be negative, got {show(value)}", item.value.loc,
                    hint="a budget is an upper bound on a count: 0 or more")
        return None
    if isinstance(value, float) and item.unit:
        # 0.1K is 100 exactly: scale the decimal as written, not its binary approximation
        scaled = Fraction(repr(value)) * BUDGET_UNITS[item.unit]
        return int(scaled) if scaled.denominator == 1 else float(scaled)
    value = value * BUDGET_UNITS.get(item.unit, 1)
    return int(value) if isinstance(value, float) and value.is_integer() else value


# ----------------------------------------------------------------------------- measuring


def _concrete(value: object) -> int | None:
    """``value`` as an int, or None when it is not a plain number (a figure that depends on a symbolic
    input size is an expression; such objects say whether they are a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if getattr(value, "is_number", False):
        try:
            return int(value)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return None
    return None


def _shaped(graph: Graph) -> bool:
    """True when every node has a shape (costs are known only then)."""
    return all(d.get("shape") is not None for _, d in graph.g.nodes(data=True))


def is_symbolic(graph: Graph) -> bool:
    """True when the graph was analyzed for a symbolic input size (``input 3xHxW``): its nodes carry
    shapes and costs as expressions in H and W (``sym_shape``, ``sym_costs``) beside the concrete
    ones computed at one representative size, which are then not the figures asked about."""
    if any(isinstance(d, str) for d in graph.input_shape or ()):
        return True
    return any(d.get("sym_costs") is not None for _, d in graph.g.nodes(data=True))


def symbolic_figures(graph: Graph) -> dict[str, object]:
    """params, macs and activations from the expressions of a symbolic analysis (None when a node
    has none): sums of expressions, numbers where the figure does not depend on the size."""
    from .passes.symbolic import product  # sympy: only for a symbolic analysis

    nodes = dict(graph.g.nodes(data=True))
    if any(d.get("sym_costs") is None or d.get("sym_shape") is None for d in nodes.values()):
        return dict.fromkeys(("params", "macs", "activations"))
    # product(), as summary's activations column: one term per grid, 256·⌊(H+1)/2⌋·⌊(W+1)/2⌋
    return {"params": sum(d["sym_costs"].params for d in nodes.values()),
            "macs": sum(nodes[n]["sym_costs"].macs for n in graph.eval_nodes()),
            "activations": sum(product(d["sym_shape"]) for d in nodes.values()
                               if d["op"] not in ("input", "output"))}


def measure(graph: Graph) -> dict[str, int | None]:
    """Each figure of an analyzed graph; None where it cannot be measured: a shape is unknown, or the
    figure depends on a symbolic input size."""
    depth = _concrete(metrics.depth(graph))  # layers: no shape changes them
    if not _shaped(graph):
        return {"params": None, "macs": None, "depth": depth, "activations": None}
    if is_symbolic(graph):
        sym = symbolic_figures(graph)
        return {"params": _concrete(sym["params"]), "macs": _concrete(sym["macs"]), "depth": depth,
                "activations": _concrete(sym["activations"])}
    return {"params": _concrete(graph.total_params()), "macs": _concrete(graph.eval_macs()), "depth": depth,
            "activations": _concrete(metrics.activations(graph))}


# ----------------------------------------------------------------------------- checking


def check_budgets(graph: Graph, bounds: Sequence[Bound]) -> list[Diagnostic]:
    """E401 for each figure above its bound, I406 (the margin) for each within it, W405 for each that
    cannot be measured; located at the clause that set the bound.  For ``archdsl sweep`` and the
    pipeline alike."""
    if not bounds:
        return []
    figures = measure(graph)
    out = []
    for b in bounds:
        value = figures[b.figure]
        if value is None:
            out.append(_unmeasured(graph, b))
        elif value > b.limit:
            out.append(_exceeded(graph, b, value))
        else:
            out.append(_met(b, value))
    return out


def _fmt(n: int | float) -> str:
    return f"{n:,}" if isinstance(n, int) else f"{n:,.6g}"


def _budget_text(b: Bound) -> str:
    """``5.5M``; an expression also with its value: ``2 * base (= 1,000)``."""
    return b.text if re.fullmatch(r"[0-9.]+[KMG]?", b.text) else f"{b.text} (= {_fmt(b.limit)})"


def _exceeded(graph: Graph, b: Bound, value: int) -> Diagnostic:
    verb = "exceeds" if b.figure == "depth" else "exceed"
    ratio = f" ({value / b.limit:.2f}x)" if b.limit else ""
    excess = value - b.limit
    return Diagnostic("E401", f"{b.figure} {value:,} {verb} the budget {_budget_text(b)} by {_fmt(excess)}{ratio}",
                      b.loc, hint=_where(graph, b.figure), evidence=_evidence(b, value))


def _met(b: Bound, value: int) -> Diagnostic:
    share = f", {value / b.limit:.0%} of it" if b.limit else ""
    return Diagnostic("I406", f"{b.figure} {value:,} within the budget {_budget_text(b)}{share} "
                      f"(margin {_fmt(b.limit - value)})", b.loc, severity=INFO, evidence=_evidence(b, value))


def _unmeasured(graph: Graph, b: Bound) -> Diagnostic:
    symbolic = _shaped(graph) and is_symbolic(graph)
    why = "it depends on the symbolic input size" if symbolic else "the input size is not known"
    return Diagnostic("W405", f"the {b.figure} budget cannot be checked: {why}", b.loc, severity=WARNING,
                      hint="pass a concrete input size, e.g. --input 3x224x224")


def _evidence(b: Bound, value: int) -> dict:
    """The figures behind a verdict, for ``--format json``."""
    return {"figure": b.figure, "value": value, "budget": b.limit}


# ----------------------------------------------------------------------------- where it comes from


def _scope(path: str) -> str:
    """The top-level scope a node belongs to (``layer4`` for ``layer4.1.conv2``; a top-level layer is its own)."""
    return path.partition("@")[0].split(".")[0] or path


def _parts(path: str) -> list[str]:
    """A node's scope path as a list (``layer1.0@add`` -> ``["layer1", "0"]``)."""
    return [p for p in path.partition("@")[0].split(".") if p] or [path]


#: A scope holding at least this share of a figure is looked into for the hint.
_DOMINANT = 0.8


def _largest_scopes(graph: Graph, amounts: dict[int, int]) -> list[tuple[str, int]]:
    """The scope holding the largest share, then, while one holds most of it (``features`` holding
    all of MobileNetV2), the largest scope inside it: ``[(scope, amount), ...]``."""
    # in execution order: of two scopes holding as much, the first one run is named
    members = {nid: _parts(graph.node(nid)["path"]) for nid in graph.order() if nid in amounts}
    chain: list[tuple[str, int]] = []
    total = sum(amounts.values())
    for level in range(1, _SHOWN_LEVELS + 1):
        by_scope: dict[str, int] = {}
        for nid, parts in members.items():
            key = ".".join(parts[:level])
            by_scope[key] = by_scope.get(key, 0) + amounts[nid]
        scope = max(by_scope, key=by_scope.__getitem__)  # the first of equals: dicts keep insertion order
        chain.append((scope, by_scope[scope]))
        members = {n: p for n, p in members.items() if ".".join(p[:level]) == scope and len(p) > level}
        if by_scope[scope] < _DOMINANT * total or not members:
            break
    return chain


#: How many nested scopes the hint may name.
_SHOWN_LEVELS = 3


def _where(graph: Graph, figure: str) -> str:
    """The hint of an E401: the top-level scope holding most of the figure (and, when it holds most
    of it, the largest scope inside), and the largest layer."""
    if figure == "depth":
        return _depth_hint(graph)
    nodes = graph.eval_nodes() if figure == "macs" else set(graph.g.nodes)
    amounts: dict[int, int] = {}
    for nid in nodes:
        d = graph.node(nid)
        if d["op"] in ("input", "output"):
            continue
        amount = d["costs"].params if figure == "params" else d["costs"].macs if figure == "macs" else \
            tensor_elements(d["shape"])
        amounts[nid] = _concrete(amount) or 0
    total = sum(amounts.values())
    if not total:
        return ""
    chain = _largest_scopes(graph, amounts)
    text = "; within it, ".join(f"{display_path(scope)}: {n:,} ({n / total:.0%})" for scope, n in chain)
    top = max((n for n in graph.order() if n in amounts), key=amounts.__getitem__)
    layer = display_path(graph.node(top)["path"])
    if layer != display_path(chain[-1][0]):
        text += f"; the largest layer is {layer}: {amounts[top]:,} ({amounts[top] / total:.0%})"
    return "the largest share is " + text


def _depth_hint(graph: Graph) -> str:
    """Where the longest path's weight layers are, by top-level scope in path order:
    ``the longest path has 50 weight layers (conv2d, linear): conv1 1, layer1 9, ...``."""
    counts: dict[str, int] = {}
    for nid in metrics.longest_path(graph):
        key = display_path(_scope(graph.node(nid)["path"]))
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return ""
    shown = [f"{scope} {n}" for scope, n in counts.items()]
    more = len(shown) - _SHOWN_SCOPES
    listed = ", ".join(shown[:_SHOWN_SCOPES]) + (f" and {more} more" if more > 0 else "")
    return f"the longest path has {sum(counts.values())} weight layers (conv2d, linear): {listed}"


#: Scopes named in the depth hint before "and N more".
_SHOWN_SCOPES = 8
