"""The graph IR: a networkx ``DiGraph`` of ops with module paths, locations and nesting.

Node keys are integers in creation order (so iteration is deterministic); every node carries
``op``, resolved ``args``, ``path`` (the module path, the future state_dict prefix; internal
nodes use ``scope@kind`` paths that can never collide with a module, shown to users as
``scope.<kind>`` by :func:`display_path`), ``loc`` and ``scope``
(the innermost enclosing scope path).  Edge attribute ``index`` orders a node's inputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .diagnostics import Loc
from .ops import OPS, Costs, Shape


def display_path(path: str) -> str:
    """A node path as every user-facing output writes it: an internal node's ``scope@kind`` as
    ``scope.<kind>`` (``<kind>`` at the top level); a module path unchanged.

    The ``@`` form stays the IR's key (it can never collide with a module name and code generation
    relies on it); summaries, diagrams and diagnostics show this one notation.
    """
    if "@" not in path:
        return path
    scope, _, kind = path.partition("@")
    return f"{scope}.<{kind}>" if scope else f"<{kind}>"


@dataclass
class ScopeInfo:
    """A named scope: a block instance, a labelled group/combinator, or a repeat iteration."""

    path: str
    kind: str  # "block", "group", "concat", "residual", "repeat", "dense", "shortcut", "aux"
    block: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    loc: Loc | None = None


@dataclass
class Graph:
    """The elaborated network: the DiGraph plus outputs, scopes and network-level metadata."""

    name: str
    input_shape: Shape | None
    g: nx.DiGraph = field(default_factory=nx.DiGraph)
    outputs: dict[str, int] = field(default_factory=dict)
    aux_weights: dict[str, float] = field(default_factory=dict)
    scopes: dict[str, ScopeInfo] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    settings: list[dict[str, Any]] = field(default_factory=list)
    input_node: int | None = None
    paths: dict[str, int] = field(default_factory=dict)
    #: For a symbolic input (``input 3xHxW``): an :class:`archdsl.passes.symbolic.SymbolicInfo` (the
    #: input as written, its domain); ``input_shape`` is then the representative size the concrete
    #: passes ran at, and nodes carry ``sym_shape`` and ``sym_costs``.
    symbolic: Any = None

    # ------------------------------------------------------------------ building
    def add_node(self, op: str, args: dict[str, Any], path: str, loc: Loc, scope: str, inputs: list[int],
                 label: str | None = None) -> int:
        """Add an op node fed by ``inputs`` (in order) and return its id."""
        nid = self.g.number_of_nodes()
        self.g.add_node(nid, op=op, args=args, path=path, loc=loc, scope=scope, label=label,
                        shape=None, costs=Costs(), rf=None)
        for i, src in enumerate(inputs):
            self.g.add_edge(src, nid, index=i)
        if len(set(inputs)) < len(inputs):
            # A DiGraph keeps one edge per pair: x + x or cat([x, x]) would silently become x.
            # validate_graph reports it (E117).
            self.g.nodes[nid]["repeated_input"] = True
        self.paths.setdefault(path, nid)
        return nid

    # ------------------------------------------------------------------ queries
    def node(self, nid: int) -> dict[str, Any]:
        """The attribute dict of node ``nid``."""
        return self.g.nodes[nid]

    def inputs(self, nid: int) -> list[int]:
        """Predecessors of ``nid`` in input order."""
        preds = self.g.pred[nid]
        return sorted(preds, key=lambda p: preds[p]["index"])

    def order(self) -> list[int]:
        """Nodes in a deterministic topological order.

        Elaboration only ever wires a new node to existing ones, so creation order is already
        topological; that is checked in O(E) and the general sort is kept for hand-built graphs.
        """
        if all(u < v for u, v in self.g.edges):
            return list(self.g.nodes)
        return list(nx.lexicographical_topological_sort(self.g))

    def module_nodes(self) -> Iterator[int]:
        """Nodes that are modules (not inputs, outputs or merges), in creation order."""
        for nid, data in self.g.nodes(data=True):
            if not OPS[data["op"]].internal:
                yield nid

    def by_path(self, path: str) -> int | None:
        """The node with module path ``path``, if any."""
        return self.paths.get(path)

    @property
    def main_output(self) -> int | None:
        """The node feeding the main output."""
        out = self.outputs.get("main")
        if out is None:
            return None
        preds = self.inputs(out)
        return preds[0] if preds else None

    def total_params(self) -> int:
        """Parameters PyTorch will count for the whole module (aux heads included)."""
        return sum(d["costs"].params for _, d in self.g.nodes(data=True))

    def eval_nodes(self) -> set[int]:
        """Nodes computed by an eval-mode forward: ancestors of the main output."""
        out = self.outputs.get("main")
        if out is None:
            return set()
        return nx.ancestors(self.g, out) | {out}

    def eval_macs(self) -> int:
        """MACs of the eval-mode forward (aux heads excluded)."""
        return sum(self.g.nodes[n]["costs"].macs for n in self.eval_nodes())
