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

#: The ops whose layers count towards :func:`depth`.
WEIGHT_OPS = frozenset(("conv2d", "linear"))


def depth(graph: Graph) -> int:
    """Weight layers (conv2d, linear) on the longest input-to-main-output path of the eval graph."""
    out = graph.outputs.get("main")
    if out is None:
        return 0
    on_path = graph.eval_nodes()
    longest: dict[int, int] = {}
    for nid in graph.order():  # topological: every input is counted before the node it feeds
        if nid not in on_path:
            continue
        here = 1 if graph.node(nid)["op"] in WEIGHT_OPS else 0
        longest[nid] = max((longest[p] for p in graph.inputs(nid) if p in longest), default=0) + here
    return longest.get(out, 0)


def activations(graph: Graph) -> int:
    """Output elements of every layer at batch 1 (input and output markers excluded), aux heads included."""
    return sum(tensor_elements(d["shape"]) for _, d in graph.g.nodes(data=True)
               if d["op"] not in ("input", "output"))
