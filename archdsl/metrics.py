"""Whole-network figures beyond the totals of :mod:`archdsl.report`: depth and activation memory.

One definition of each, shared by ``archdsl sweep`` and anything else that reports or budgets them:

* **depth**: the number of weight layers (``conv2d``, ``linear``) on the longest path from the
  input to the main output, over the eval-mode graph (aux heads are not on it).  A residual's
  shortcut does not shorten it: the longest path goes through the body.  It is the figure the design
  rules call "weight layers on the longest path" (``archdsl.rules.graphctx.Ctx.depths``).
* **activations**: the elements of every layer's output tensor at batch 1, summed over the rows of
  ``archdsl summary`` (the ``activations`` column of ``summary --format json``, aux heads
  included): what a training step keeps for the backward pass, before any in-place or
  checkpointing saving.  Multiply by 4 for float32 bytes.

Nothing here imports torch.
"""

from __future__ import annotations

from .ir import Graph
from .passes.shapes import activations as tensor_elements

#: The ops whose layers count towards :func:`depth` (the design rules count the same ones).
WEIGHT_OPS = frozenset(("conv2d", "linear"))


def depth(graph: Graph) -> int:
    """Weight layers (conv2d, linear) on the longest input-to-main-output path of the eval graph."""
    return len(longest_path(graph))


def longest_path(graph: Graph) -> list[int]:
    """The weight layers (conv2d, linear) on a longest input-to-main-output path of the eval graph,
    in order (the budget's depth hint names their scopes)."""
    on_path = graph.eval_nodes()
    best: dict[int, tuple[int, int | None]] = {}  # node -> (weight layers up to it, predecessor)
    for nid in graph.order():  # topological: every input is counted before the node it feeds
        if nid not in on_path:
            continue
        preds = [p for p in graph.inputs(nid) if p in best]
        prev = max(preds, key=lambda p: best[p][0], default=None)
        here = 1 if graph.node(nid)["op"] in WEIGHT_OPS else 0
        best[nid] = ((best[prev][0] if prev is not None else 0) + here, prev)
    layers = []
    node = graph.outputs.get("main")
    while node is not None and node in best:
        if graph.node(node)["op"] in WEIGHT_OPS:
            layers.append(node)
        node = best[node][1]
    return layers[::-1]


def activations(graph: Graph) -> int:
    """Output elements of every layer at batch 1 (input and output markers excluded), aux heads included."""
    return sum(tensor_elements(d["shape"]) for _, d in graph.g.nodes(data=True)
               if d["op"] not in ("input", "output"))
