"""Structural checks on the IR: cycles and nodes that never reach an output."""

from __future__ import annotations

import networkx as nx

from ..diagnostics import Diagnostic, DiagnosticBag
from ..ir import Graph


def validate_graph(graph: Graph, diags: DiagnosticBag) -> None:
    """Report cycles (E120) and unused nodes (W121) in the graph."""
    if not nx.is_directed_acyclic_graph(graph.g):
        cycle = nx.find_cycle(graph.g)
        first = graph.node(cycle[0][0])
        chain = " -> ".join(graph.node(u)["path"] for u, _ in cycle) + f" -> {first['path']}"
        diags.add(Diagnostic("E120", f"cycle in the network graph: {chain}", first["loc"], path=first["path"]))
        return
    if diags.has_errors:
        return  # nodes orphaned by a construct that failed: a consequence of an error already reported
    live: set[int] = set()
    for out in graph.outputs.values():
        live |= nx.ancestors(graph.g, out) | {out}
    for nid, data in graph.g.nodes(data=True):
        if nid not in live and data["op"] != "output":
            diags.add(Diagnostic("W121", f"'{data['path']}' does not contribute to any output", data["loc"],
                                 severity="warning", path=data["path"],
                                 hint="remove it or connect it to an output"))
