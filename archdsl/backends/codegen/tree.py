"""Module-tree recovery: how the IR's scopes become the generated classes and containers.

The IR is a flat graph whose nodes carry module paths (``features.denseblock1.denselayer1.conv1``)
and a scope.  :class:`ModuleTree` recovers the hierarchy PyTorch needs:

* the scope tree (parents, the *region* of nodes under each scope, children in creation order) and
  each scope's *role*: ``block`` (an instance of a spec block: a class of its own), ``seq`` (a plain
  chain: ``nn.Sequential``) or ``dict`` (an ``nn.ModuleDict`` namespace whose code lives in the
  enclosing class);
* which op nodes are modules (attributes) and which are functional calls or emit no code at all
  (pass-through identities, batch norms folded into the convolution before them);
* DenseNet *list mode*: dense layers that take the list of earlier features and concatenate them
  inside a checkpointable ``bottleneck`` method;
* the forward *items* of a class (op nodes and calls of child blocks / Sequential scopes), with the
  values they read and produce, and the batch-norm fold metadata.

Everything here is a function of the graph and the ``fold_bn`` flag; per-node answers are
memoized once the analysis is done.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any

from ...diagnostics import DiagnosticBag, Loc
from ...ir import Graph
from ...ops import OPS
from .. import names as N
from .op_dispatch import PARAMETER_OPS, SAFE_PRODUCERS, STATEFUL

#: :func:`names.module_name_problem` (memoized: labels repeat across instances).
_module_name_problem = functools.lru_cache(maxsize=4096)(N.module_name_problem)

#: A forward step of a class: ``("op", node id)`` or ``("call", scope path)``.
Item = tuple[str, Any]
#: A scope's child: ``("node", node id)`` or ``("scope", scope path)``.
Child = tuple[str, Any]


class ModuleTree:
    """The module hierarchy of one graph; call :meth:`analyze`, then :meth:`detect_list_mode`.

    Errors the PyTorch backend cannot get past (E330-E333) go to ``diags``.
    """

    def __init__(self, graph: Graph, *, fold_bn: bool = False, diags: DiagnosticBag | None = None,
                 source_name: str = "") -> None:
        self.graph = graph
        self.G = graph.g
        self.fold = fold_bn
        self.source_name = source_name
        self.diags = diags if diags is not None else DiagnosticBag()
        self._boundary: dict[str, tuple[set[int], set[int], bool]] = {}
        self._is_module: dict[int, bool] = {}
        self._alias: dict[int, int] = {}
        self._eff: dict[int, set[int]] = {}
        self._class_of: dict[int, str] = {}
        self._has_modules: dict[str, bool] = {}
        self._inplace: dict[int, bool] = {}
        self.list_mode: set[str] = set()
        self.absorbed: set[int] = set()
        self.bottleneck: dict[str, list[int]] = {}

    # ---------------------------------------------------------------- analysis
    def analyze(self) -> None:
        """Scopes, regions, roles, aliases and fold pairs."""
        self._index_graph()
        self._scope_tree()
        self._boundaries()
        keep = self._eval_nodes()
        self.aux_nodes = {n for n in self.nodes if n not in keep}
        self._fold_pairs()
        self._roles()

    def _index_graph(self) -> None:
        """Plain dicts of the graph: node data, op, inputs in order, consumers in id order."""
        self.nodes: dict[int, dict] = dict(self.G.nodes(data=True))
        self.opof: dict[int, str] = {n: d["op"] for n, d in self.nodes.items()}
        #: The concats of DenseNet dense blocks.
        self.dense_concats = {n for n, d in self.nodes.items() if d["op"] == "concat" and d["args"].get("dense")}
        # the adjacency dicts themselves (as rules/graphctx.py does): the views cost a call per edge
        pred_adj, succ_adj = self.G._pred, self.G._succ
        self.ins: dict[int, list[int]] = {}
        for n in self.nodes:
            p = pred_adj[n]
            # each input position holds one edge (Graph.add_node); its "index" is the position
            self.ins[n] = sorted(p, key=lambda u: p[u]["index"]) if len(p) > 1 else list(p)
        self.consumers: dict[int, list[int]] = {n: sorted(succ_adj[n]) for n in self.nodes}

    def _scope_tree(self) -> None:
        """Parents, each node's scope, regions, first nodes and ordered children of the scopes."""
        self.scopes = dict(self.graph.scopes)
        self.parent = {path: self.scope_parent(path) for path in self.scopes}
        self.node_scope: dict[int, str] = {}
        resolved: dict[str, str] = {}  # a node's scope attribute -> the nearest existing scope
        own: dict[str, list[int]] = defaultdict(list)  # scope -> the nodes directly in it
        for nid, d in self.nodes.items():
            raw = d["scope"] or ""
            sc = resolved.get(raw)
            if sc is None:
                sc = raw
                while sc and sc not in self.scopes:
                    sc = self.scope_parent(sc)
                resolved[raw] = sc
            self.node_scope[nid] = sc
            own[sc].append(nid)
        # a scope's region: its own nodes and its child scopes' regions (deepest scopes first)
        self.region: dict[str, set[int]] = defaultdict(set)
        for sc, nids in own.items():
            self.region[sc].update(nids)
        for path in sorted(self.scopes, key=lambda p: -p.count(".")):
            reg = self.region.get(path)
            if reg and path:
                self.region[self.parent[path]] |= reg
        self.first = {p: min(r) for p, r in self.region.items() if r}
        self.children: dict[str, list[Child]] = defaultdict(list)
        for nid, sc in self.node_scope.items():
            self.children[sc].append(("node", nid))
        for path in self.scopes:
            if path in self.first:
                self.children[self.parent[path]].append(("scope", path))
        for lst in self.children.values():
            lst.sort(key=lambda c: c[1] if c[0] == "node" else self.first[c[1]])

    def _chain(self, sc: str) -> list[str]:
        """``sc`` and its enclosing scopes up to the root ``""``."""
        out = [sc]
        while sc != "":
            sc = self.parent[sc]
            out.append(sc)
        return out

    def _boundaries(self) -> None:
        """:meth:`boundary` of every scope with nodes, from the edges that cross scopes: an edge
        u -> v enters the scopes that hold v but not u and leaves those that hold u but not v."""
        chains: dict[str, list[str]] = {}
        for sc in set(self.node_scope.values()):
            chains[sc] = self._chain(sc)
        holds = {sc: set(chain) for sc, chain in chains.items()}
        ins: dict[str, set[int]] = defaultdict(set)
        outs: dict[str, set[int]] = defaultdict(set)
        node_scope = self.node_scope
        crossing: dict[tuple[str, str], tuple[list[str], list[str]]] = {}  # (su, sv) -> (entered, left)
        for v, preds in self.ins.items():
            sv = node_scope[v]
            for u in preds:
                su = node_scope[u]
                if su == sv:
                    continue
                hit = crossing.get((su, sv))
                if hit is None:
                    above_u, above_v = holds[su], holds[sv]
                    hit = crossing[(su, sv)] = ([s for s in chains[sv] if s not in above_u],
                                                [s for s in chains[su] if s not in above_v])
                for s in hit[0]:
                    ins[s].add(u)
                for s in hit[1]:
                    outs[s].add(u)
        has_out = {s for q, op in self.opof.items() if op == "output" for s in chains[node_scope[q]]}
        for path in self.first:
            self._boundary[path] = (ins.get(path, set()), outs.get(path, set()), path in has_out)

    def _eval_nodes(self) -> set[int]:
        """Nodes an eval-mode forward computes (:meth:`Graph.eval_nodes`: the main output and its
        ancestors), on the plain input lists."""
        main = self.graph.outputs.get("main")
        if main is None:
            return set()
        keep = {main}
        stack = [main]
        while stack:
            for p in self.ins[stack.pop()]:
                if p not in keep:
                    keep.add(p)
                    stack.append(p)
        return keep

    def scope_parent(self, path: str) -> str:
        """The nearest enclosing scope of ``path`` ("" for the network)."""
        while "." in path:
            path = path.rsplit(".", 1)[0]
            if path in self.scopes:
                return path
        return ""

    def op(self, nid: int) -> str:
        """The op of node ``nid``."""
        return self.opof[nid]

    def data(self, nid: int) -> dict:
        """The attribute dict of node ``nid``."""
        return self.nodes[nid]

    def inputs(self, nid: int) -> list[int]:
        """The inputs of node ``nid`` in order (do not modify the list)."""
        return self.ins[nid]

    @staticmethod
    def leaf(path: str) -> str:
        """The last component of a module path."""
        return path.rsplit(".", 1)[-1]

    def _fold_pairs(self) -> None:
        """Each 2-D BN node -> the conv right before it whose output only it reads (else None)."""
        self.bn_partner: dict[int, int | None] = {}
        for nid, d in self.nodes.items():
            if d["op"] != "batchnorm" or len(d["shape"] or ()) != 3:
                continue
            (src,) = self.ins[nid]
            ok = self.opof[src] == "conv2d" and self.consumers[src] == [nid] and d["args"]["track_running_stats"]
            self.bn_partner[nid] = src if ok else None
        self.folded = {b for b, c in self.bn_partner.items() if c is not None} if self.fold else set()
        self.folded_convs = {self.bn_partner[b] for b in self.folded}

    def boundary(self, path: str) -> tuple[set[int], set[int], bool]:
        """(external inputs, exit nodes, contains an aux output) of a scope's region."""
        hit = self._boundary.get(path)
        if hit is None:
            reg = self.region[path]
            ins = {p for q in reg for p in self.ins[q] if p not in reg}
            outs = {q for q in reg if any(s not in reg for s in self.consumers[q])}
            has_out = any(self.opof[q] == "output" for q in reg)
            hit = self._boundary[path] = (ins, outs, has_out)
        return hit

    def _roles(self) -> None:
        """``role[path]``: block / seq / dict; ``seqblock``: blocks that are a numbered chain."""
        self.role: dict[str, str] = {}
        self.seqblock: set[str] = set()
        for path in sorted((p for p in self.scopes if p in self.first), key=lambda p: -p.count(".")):
            info = self.scopes[path]
            ins, outs, has_out = self.boundary(path)
            seq = self._sequential(path, ins, outs, has_out)
            if info.kind == "block":
                if has_out:
                    self.error("E331", f"aux head inside block '{info.block}' is not supported by the PyTorch "
                               "backend", info.loc, path, "tap the aux head at network level, after the block")
                elif len(ins) != 1 or len(outs) != 1:
                    self.error("E332", f"block instance '{path}' does not have a single input and output",
                               info.loc, path)
                self.role[path] = "block"
                names = [self.child_name(k, r) for k, r in self.children[path]]
                if seq and names == [str(i) for i in range(len(names))]:
                    self.seqblock.add(path)
            else:
                self.role[path] = "seq" if seq else "dict"

    def child_name(self, kind: str, ref: Any) -> str:
        """The attribute name of a scope's child (node or scope)."""
        return self.leaf(self.nodes[ref]["path"]) if kind == "node" else self.leaf(ref)

    def _sequential(self, path: str, ins: set[int], outs: set[int], has_out: bool) -> bool:
        """A plain chain of modules from the scope's single input to its single output."""
        if has_out or len(ins) != 1 or len(outs) != 1:
            return False
        kids = self.children[path]
        if not kids:
            return False
        prev = next(iter(ins))
        for kind, ref in kids:
            if kind == "node":
                # a bare parameter (layer scale) cannot be an element of nn.Sequential
                spec = OPS[self.opof[ref]]
                if spec.internal or spec.torch is None or self.is_parameter(ref) or self.ins[ref] != [prev]:
                    return False
                prev = ref
            else:
                if self.role.get(ref) not in ("block", "seq"):
                    return False
                cin, cout, _ = self.boundary(ref)
                if cin != {prev} or len(cout) != 1:
                    return False
                prev = next(iter(cout))
        return outs == {prev}

    # ---------------------------------------------------------------- per-node answers (memoized)
    def is_module(self, nid: int) -> bool:
        """True when the op node is an attribute (module) rather than a functional call."""
        hit = self._is_module.get(nid)
        if hit is None:
            hit = self._is_module[nid] = self._module_node(nid)
        return hit

    def is_parameter(self, nid: int) -> bool:
        """Is node ``nid`` a bare ``nn.Parameter`` of its module (a layer scale), not a module?"""
        return self.opof[nid] in PARAMETER_OPS

    def _module_node(self, nid: int) -> bool:
        op = self.opof[nid]
        if OPS[op].internal or nid in self.folded or self.is_parameter(nid) or OPS[op].torch is None:
            return False  # (``scale`` has no module form: it stays an expression even when labelled)
        if op in STATEFUL:
            return True
        parent = self.node_scope[nid]
        if parent and (self.role.get(parent) == "seq" or parent in self.seqblock):
            return True
        return self.nodes[nid]["label"] is not None

    def passthrough(self, nid: int) -> bool:
        """Nodes that emit no code and carry their input's value."""
        return nid in self.folded or (self.opof[nid] == "identity" and not self.is_module(nid))

    def alias(self, nid: int) -> int:
        """The node whose value ``nid`` carries (itself unless it is a pass-through)."""
        hit = self._alias.get(nid)
        if hit is None:
            hit = nid
            while hit >= 0 and self.passthrough(hit):
                hit = self.ins[hit][0]
            self._alias[nid] = hit
        return hit

    def eff_consumers(self, nid: int) -> set[int]:
        """Consumers of ``nid``'s value, looking through pass-through nodes (do not modify)."""
        hit = self._eff.get(nid)
        if hit is None:
            hit = set()
            for c in self.consumers[nid]:
                if self.passthrough(c):
                    hit |= self.eff_consumers(c)
                else:
                    hit.add(c)
            self._eff[nid] = hit
        return hit

    def class_of(self, nid: int) -> str:
        """The class whose code owns node ``nid`` (root "" or a block path)."""
        hit = self._class_of.get(nid)
        if hit is None:
            sc = self.node_scope[nid]
            while sc and self.role.get(sc) != "block":
                sc = self.parent[sc]
            hit = self._class_of[nid] = sc
        return hit

    def class_up(self, path: str) -> str:
        """The class enclosing scope ``path`` (root "" or a block path)."""
        sc = self.parent[path]
        while sc and self.role.get(sc) != "block":
            sc = self.parent[sc]
        return sc

    def exit_node(self, path: str) -> int:
        """The node whose value leaves scope ``path``."""
        return min(self.boundary(path)[1])

    def entry_node(self, path: str) -> int:
        """The node outside scope ``path`` whose value enters it."""
        return min(self.boundary(path)[0])

    def has_modules(self, path: str) -> bool:
        """Does scope ``path`` contain a module (so that it needs a container of its own)?"""
        hit = self._has_modules.get(path)
        if hit is None:
            hit = self._has_modules[path] = self._contains_module(path)
        return hit

    def _contains_module(self, path: str) -> bool:
        for kind, ref in self.children[path]:
            if kind == "node" and (self.is_module(ref) or self.is_parameter(ref)):
                return True
            if kind == "scope" and (self.role[ref] in ("block", "seq") or self.has_modules(ref)):
                return True
        return False

    def inplace_ok(self, nid: int) -> bool:
        """May ``nid`` overwrite its first input?  Only a fresh tensor made in the same class, read by
        ``nid`` alone, whose producer's backward does not need it."""
        hit = self._inplace.get(nid)
        if hit is None:
            hit = self._inplace[nid] = self._may_overwrite_input(nid)
        return hit

    def _may_overwrite_input(self, nid: int) -> bool:
        src = self.alias(self.ins[nid][0])
        if self.opof[src] not in SAFE_PRODUCERS or self.eff_consumers(src) != {nid}:
            return False
        cls = self.class_of(nid)
        if cls and (src not in self.region[cls] or src in self.absorbed):
            return False
        # a value entering a Sequential container or a block belongs to the code that called it
        scope = self.node_scope[nid]
        if scope and (self.role.get(scope) == "seq" or scope in self.seqblock) and src not in self.region[scope]:
            return False
        return True

    # ---------------------------------------------------------------- diagnostics
    def error(self, code: str, message: str, loc: Loc | None, path: str = "", hint: str = "") -> None:
        """Report an error at ``loc`` (the spec's first line when the node has no location)."""
        self.diags.error(code, message, loc or Loc(self.source_name or "<spec>", 1, 1), path, hint)

    def check_names(self) -> None:
        """Every module name is registrable by PyTorch; aux names are named-tuple fields."""
        for nid, d in self.nodes.items():
            if self.is_module(nid) or self.is_parameter(nid):  # a parameter is an attribute too
                self._check_module_name(d["path"], d["loc"])
        for path in self.scopes:
            if path in self.first and (self.role[path] in ("block", "seq") or self.has_modules(path)):
                self._check_module_name(path, self.scopes[path].loc)
        for name, out in self.graph.outputs.items():
            if name != "main" and (not N.is_identifier(name) or name.startswith("_")):
                self.error("E333", f"aux output name '{name}' cannot be a field of the output named tuple",
                           self.nodes[out]["loc"], hint="use an identifier that does not start with '_'")

    def _check_module_name(self, path: str, loc: Loc | None) -> None:
        parent = self.scope_parent(path)
        container = {"seq": "sequential", "dict": "dict"}.get(self.role.get(parent, ""), "module")
        problem = _module_name_problem(self.leaf(path), container)
        if problem:
            self.error("E330", f"'{self.leaf(path)}' cannot be a PyTorch module name: {problem}", loc, path,
                       "rename the layer (labels become attribute names and state_dict keys)")

    # ---------------------------------------------------------------- dense list mode
    def detect_list_mode(self) -> None:
        """Dense layers (fed by a DenseNet concat) whose body starts BN -> ReLU -> 1x1 conv take the
        list of earlier features and concatenate them inside, so the concat can be checkpointed."""
        self.list_mode = set()
        self.absorbed = set()
        self.bottleneck = {}
        self._inplace = {}  # depends on the absorbed concats
        for path, info in self.scopes.items():
            if info.kind != "block" or path not in self.first:
                continue
            ins, outs, has_out = self.boundary(path)
            if has_out or len(ins) != 1 or len(outs) != 1:
                continue
            exit_, entry = next(iter(outs)), next(iter(ins))
            feeds = set(self.ins[entry]) if self.dense_concat(entry) else {entry}
            if not any(self.dense_concat(c) and feeds <= set(self.ins[c]) for c in self.consumers[exit_]):
                continue  # not a layer of a dense block (its output must join its inputs in a concat)
            chain = self._bottleneck_chain(path, entry)
            if chain is None:
                continue
            self.list_mode.add(path)
            self.bottleneck[path] = chain
            if self.dense_concat(entry) and all(c in self.region[path] for c in self.consumers[entry]):
                self.absorbed.add(entry)

    def dense_concat(self, nid: int) -> bool:
        """Is ``nid`` the concat of a DenseNet dense block?"""
        return nid in self.dense_concats

    def _bottleneck_chain(self, path: str, entry: int) -> list[int] | None:
        """The BN -> ReLU -> 1x1 conv nodes a dense layer starts with (None if it does not)."""
        reg = self.region[path]
        firsts = [c for c in self.consumers[entry] if c in reg]
        if len(firsts) != 1 or self.class_of(firsts[0]) != path:
            return None
        bn = firsts[0]
        if self.opof[bn] != "batchnorm" or bn in self.folded:
            return None
        acts = self.consumers[bn]
        if len(acts) != 1 or self.opof[acts[0]] != "relu" or self.class_of(acts[0]) != path:
            return None
        convs = self.consumers[acts[0]]
        if len(convs) != 1 or self.opof[convs[0]] != "conv2d" or self.class_of(convs[0]) != path:
            return None
        if self.nodes[convs[0]]["args"]["kernel"] != (1, 1) or convs[0] in self.folded_convs:
            return None
        return [bn, acts[0], convs[0]]

    # ---------------------------------------------------------------- items of a class
    def class_items(self, cls: str) -> list[Item]:
        """Forward steps of class ``cls``: op nodes and calls of blocks / Sequential scopes."""
        items: list[Item] = []
        self._collect_items(cls, items)
        items.sort(key=lambda it: it[1] if it[0] == "op" else self.first[it[1]])
        return items

    def _collect_items(self, path: str, items: list[Item]) -> None:
        for kind, ref in self.children[path]:
            if kind == "node":
                if self.opof[ref] in ("input", "output") or self.passthrough(ref) or ref in self.absorbed:
                    continue
                items.append(("op", ref))
            elif self.role[ref] in ("block", "seq"):
                items.append(("call", ref))
            else:
                self._collect_items(ref, items)

    def created_blocks(self, cls: str) -> list[str]:
        """Block instances constructed by class ``cls`` (directly or inside its containers)."""
        out: list[str] = []
        self._collect_blocks(cls, out)
        return out

    def _collect_blocks(self, path: str, out: list[str]) -> None:
        for kind, ref in self.children[path]:
            if kind == "scope":
                if self.role[ref] == "block":
                    out.append(ref)
                else:
                    self._collect_blocks(ref, out)

    def item_nodes(self, item: Item) -> set[int]:
        """The nodes a forward step computes."""
        return {item[1]} if item[0] == "op" else self.region[item[1]]

    def item_value(self, item: Item) -> int:
        """The node whose value a forward step produces."""
        return item[1] if item[0] == "op" else self.alias(self.exit_node(item[1]))

    def item_inputs(self, item: Item) -> list[int]:
        """The values a forward step reads (a list-mode layer: the features of its absorbed concat)."""
        if item[0] == "op":
            return [self.alias(p) for p in self.ins[item[1]]]
        entry = self.entry_node(item[1])
        if entry in self.absorbed and item[1] in self.list_mode:
            return [self.alias(p) for p in self.ins[entry]]
        return [self.alias(entry)]

    @staticmethod
    def rel(cls: str, path: str) -> list[str]:
        """The components of module path ``path`` relative to class ``cls``."""
        return path[len(cls) + 1:].split(".") if cls else path.split(".")

    # ---------------------------------------------------------------- batch-norm metadata
    def bn_meta(self) -> dict[str, list[tuple[str, str | None]]]:
        """Per class path: (BN path, conv path or None) relative to that class, for fold_bn."""
        out: dict[str, list] = defaultdict(list)
        for bn, conv in sorted(self.bn_partner.items()):
            if bn in self.folded:
                continue
            owner = self.class_of(bn)
            if conv is not None:
                chain = [owner]
                while chain[-1]:
                    chain.append(self.class_up(chain[-1]))
                c = self.class_of(conv)
                while c not in chain:
                    c = self.class_up(c)
                owner = c
            bpath = ".".join(self.rel(owner, self.nodes[bn]["path"]))
            cpath = ".".join(self.rel(owner, self.nodes[conv]["path"])) if conv is not None else None
            out[owner].append((bpath, cpath))
        return out
