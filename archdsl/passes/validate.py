"""Structural checks on the IR: merges of a tensor with itself, cycles, nodes that never reach an output."""

from __future__ import annotations

import networkx as nx

from ..diagnostics import Diagnostic, DiagnosticBag
from ..ir import Graph, display_path

#: Why a merge node would take one tensor twice (see Graph.add_node's ``repeated_input``).
_REPEATED_INPUT = {
    "add": "residual adds its input to itself: the body and the shortcut both pass it through unchanged",
    "concat": "concat takes the same tensor twice: two branches (or dense layers) pass their input through "
              "unchanged",
}


def validate_graph(graph: Graph, diags: DiagnosticBag) -> None:
    """Report merges of a tensor with itself (E117), cycles (E120) and unused nodes (W121)."""
    # After an error (a duplicate layer name, say) the wiring itself may be its consequence.
    for data in graph.g.nodes.values() if not diags.has_errors else ():
        if data.get("repeated_input"):
            message = _REPEATED_INPUT.get(data["op"], f"{data['op']} takes the same tensor twice")
            diags.add(Diagnostic("E117", message, data["loc"], path=display_path(data["path"]),
                                 hint="an empty body or branch is the identity; put a layer in it"))
    if not nx.is_directed_acyclic_graph(graph.g):
        cycle = nx.find_cycle(graph.g)
        first = graph.node(cycle[0][0])
        chain = " -> ".join(display_path(graph.node(u)["path"]) for u, _ in cycle + [cycle[0]])
        diags.add(Diagnostic("E120", f"cycle in the network graph: {chain}", first["loc"],
                             path=display_path(first["path"])))
        return
    if diags.has_errors:
        return  # nodes orphaned by a construct that failed: a consequence of an error already reported
    live: set[int] = set()
    for out in graph.outputs.values():
        live |= nx.ancestors(graph.g, out) | {out}
    for nid, data in graph.g.nodes(data=True):
        if nid not in live and data["op"] != "output":
            shown = display_path(data["path"])
            diags.add(Diagnostic("W121", f"'{shown}' does not contribute to any output", data["loc"],
                                 severity="warning", path=shown,
                                 hint="remove it or connect it to an output"))
