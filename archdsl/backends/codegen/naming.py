"""Names in the generated code: local variables, hole hints and class names.

Identifier legality itself (keywords, builtins, names PyTorch reserves) is
:mod:`archdsl.backends.names`; this module decides *which* name a thing gets:

* forward variables are named after the spec labels of the chain that computes them
  (``branch3x3``), the merge they feed (``out`` / ``identity`` for the two sides of a residual add, ``scale`` for a gate)
  or the common prefix of a concat's inputs; a name is reused once its value is dead
  (:class:`VariableNames`);
* holes get a hint from their module path (``branch_pool_out``), which names a constructor
  parameter when the hole varies between instances;
* the network class, its aux-output named tuple and one class per block variant
  (``Bottleneck``, ``Bottleneck_downsample``, ``ResLayer_2``).
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from typing import TYPE_CHECKING

from ...ir import Graph
from .. import names as N
from .model import Instance, Variant
from .op_dispatch import MERGE_OPS

if TYPE_CHECKING:
    from .emit import ForwardPlan
    from .tree import Item, ModuleTree

#: A label's instance number (``conv_1``, ``block_2a``), dropped from variable names.
LABEL_SUFFIX = re.compile(r"_\d+[a-z]?\Z")
#: :func:`names.python_name` with nothing taken (memoized: labels repeat across instances).
_python_name = functools.lru_cache(maxsize=4096)(N.python_name)


# ------------------------------------------------------------------------------------ variables


class VariableNames:
    """Local variable names of one method: a base name is made legal, then numbered (``x_2``) while
    the value bound to it is still read after the step being written."""

    def __init__(self, reserved: set[str], last_use: dict[int, int], legal: dict[str, str]) -> None:
        self.reserved = reserved  # module-level names the method refers to
        self.last_use = last_use  # value -> index of the last step reading it
        self.bound: dict[str, int] = {}  # name -> value it holds now
        self._legal = legal  # cache: base -> legal base (``reserved`` is fixed per generator)

    def fresh(self, base: str, at: int) -> str:
        """A name for a value made at step ``at``: ``base`` unless it holds a value still needed."""
        legal = self._legal.get(base)
        if legal is None:
            legal = self._legal[base] = N.python_name(base, self.reserved)
        name, n = legal, 1
        while name in self.bound and self.last_use.get(self.bound[name], -1) > at:
            n += 1
            name = f"{legal}_{n}"
        return name


def base_name(tree: ModuleTree, plan: ForwardPlan, i: int) -> str:
    """The variable name (before legalizing and numbering) for the value of step ``i``."""
    it = plan.items[i]
    op = tree.opof[it[1]] if it[0] == "op" else "call"
    if op in MERGE_OPS:
        return _merge_name(plan, i)
    j = i
    name = label(tree, plan.cls, it)
    while True:  # follow the chain of single readers: a label on it, or the merge it feeds
        us = plan.uses.get(plan.values[j], [])
        if len(us) != 1 or plan.values[j] in plan.returns:
            break
        k = us[0]
        nxt = plan.items[k]
        nop = tree.opof[nxt[1]] if nxt[0] == "op" else "call"
        if nop == "add":
            return "out" if plan.ins_of[k].index(plan.values[j]) == 0 else "identity"
        if nop == "mul" and plan.ins_of[k].index(plan.values[j]) == 1:
            return "scale"  # the gate a squeeze-and-excitation multiplies its input by
        if nop == "concat" or len(plan.ins_of[k]) != 1:
            break
        j = k
        if name is None:
            name = label(tree, plan.cls, nxt)
    return LABEL_SUFFIX.sub("", name) if name else "out"


def _merge_name(plan: ForwardPlan, i: int) -> str:
    """A merge's result: ``x`` when returned, else its inputs' common prefix or its first input's."""
    if plan.values[i] in plan.returns:
        return "x"
    prefix = common_prefix([plan.var[v] for v in plan.ins_of[i] if v in plan.var])
    if prefix:
        return prefix
    first = plan.ins_of[i][0]
    if first in plan.var and max(plan.uses.get(first, [i])) == i and first not in plan.returns:
        return plan.var[first]
    return "out"


def label(tree: ModuleTree, cls: str, it: Item) -> str | None:
    """The spec label of a step (its module name relative to ``cls``), when it has a usable one."""
    path = it[1] if it[0] == "call" else tree.nodes[it[1]]["path"]
    if "@" in path:
        return None
    parts = tree.rel(cls, path)
    if it[0] == "op" and tree.nodes[it[1]]["label"] is None:
        return None
    return parts[-1] if N.IDENT.match(parts[-1]) else None


def common_prefix(names: list[str]) -> str:
    """The shared start of two or more variable names (``branch`` of ``branch1x1, branch3x3``)."""
    if len(names) < 2:
        return ""
    p = names[0]
    for n in names[1:]:
        while not n.startswith(p):
            p = p[:-1]
    p = p.rstrip("_0123456789")
    p = LABEL_SUFFIX.sub("", p)
    return p if len(p) >= 3 and N.IDENT.match(p) else ""


def hint(tree: ModuleTree, cls: str, node: int) -> str:
    """The hint of the holes of a functional op: its path relative to ``cls``, or its op."""
    path = tree.nodes[node]["path"]
    words = [p for p in tree.rel(cls, path) if N.IDENT.match(p)] if "@" not in path else []
    return _python_name("_".join(words) if words else tree.opof[node])


# ------------------------------------------------------------------------------------ classes


def network_class_names(graph: Graph) -> tuple[str, str]:
    """The network class name and the name of its aux-outputs named tuple."""
    net = N.python_name(graph.name, N.GLOBALS | N.LOCALS)
    return net, N.python_name(f"{net}Outputs", N.GLOBALS | N.LOCALS | {net})


def name_variants(variants: list[Variant], root: Instance, net_class: str, outputs_class: str) -> None:
    """Set each variant's class name: the block's name for the variant with the fewest attributes,
    the others suffixed with their extra attributes (``Bottleneck_downsample``) or numbered."""
    taken = set(N.GLOBALS | N.LOCALS) | {net_class, outputs_class}
    # a block class named like a local variable of some forward (a block 'x', a label 'B') would
    # be shadowed there; forward code is rendered by now, so its names are known (instances of one
    # variant share their structure, names included)
    for inst in [*(v.instances[0] for v in variants), root]:
        taken |= inst.method_names
    by_block: dict[str, list[Variant]] = defaultdict(list)
    for v in variants:
        by_block[v.block].append(v)
    for block, vs in by_block.items():
        _name_block_variants(block, vs, taken)


def _name_block_variants(block: str, vs: list[Variant], taken: set[str]) -> None:
    base = N.python_name(block, taken)
    attrsets = [set(v.instances[0].attrs) for v in vs]
    smallest = min(range(len(vs)), key=lambda k: (len(attrsets[k]), vs[k].instances[0].first))
    vs[smallest].name = N.unique(base, taken)
    counter = 1
    for k, v in enumerate(vs):
        if k == smallest:
            continue
        extra = [a for a in v.instances[0].attrs if a not in attrsets[smallest]]
        cand = base + "_" + "_".join(extra)
        if 0 < len(extra) <= 2 and all(N.IDENT.match(e) and not e[0].isdigit() for e in extra) \
                and cand not in taken:
            v.name = N.unique(cand, taken)
            continue
        counter += 1
        while f"{base}_{counter}" in taken:
            counter += 1
        v.name = N.unique(f"{base}_{counter}", taken)


def child_hint(tree: ModuleTree, scope: str) -> str:
    """The hint of the holes of a nested block's constructor call (its attribute name)."""
    leaf = tree.leaf(scope)
    return _python_name(leaf) if not leaf.isdigit() else "block"


__all__ = ["LABEL_SUFFIX", "VariableNames", "base_name", "label", "common_prefix", "hint",
           "network_class_names", "name_variants", "child_hint"]
