"""IR -> standalone PyTorch source.

The generated file imports only ``torch`` and the standard library.  Its layout:

* one ``nn.Module`` class per block *variant* (see below), named after the spec block, with
  attributes named after the spec's labels, so module paths (and state_dict keys) are exactly the
  IR's paths;
* a top-level class named after the network; anonymous parameter-free layers become functional
  calls (``F.relu``, ``F.max_pool2d``...), labelled ones modules; scopes whose content is a plain
  chain become ``nn.Sequential``, other non-block scopes ``nn.ModuleDict`` namespaces whose forward
  code lives in the enclosing class;
* ``forward`` is straight-line tensor code with a ``# N x C x H x W`` comment after every step;
  ``torch.cat`` for concat, in-place ``+=`` / ``inplace=True`` only where autograd allows it;
* ``loss_fn(outputs, target)`` (label-smoothed cross-entropy plus weighted aux heads) and, when
  the spec declares ``init`` lines, ``init_weights(model)``.

Block classes and their constructor parameters.  Every instance of a block is first rendered on its
own with every literal marked as a *hole*; instances whose code is identical up to hole values
share a class, and the hole values that differ become constructor parameters: the input channel
count is called ``in_channels``, a value equal to one of the block's spec arguments (or a small
multiple of it, or a ``(v, v)`` pair) takes that argument's name, anything else gets a name from
where it is used (``branch_pool_out``).  This gives torchvision-style classes such as
``InceptionA(in_channels, pool_features)``.  Instances whose *structure* differs (a ResNet block
with a downsample branch and one without, stages of different depth) get classes of their own,
suffixed with what distinguishes them (``Bottleneck_downsample``) or, failing a short
description, a number (``ResLayer_2``).
"""

from __future__ import annotations

import ast
import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..diagnostics import Diagnostic, DiagnosticBag, Loc
from ..ir import Graph
from ..ops import OPS
from ..passes.settings import INIT_TARGETS, TrainingSettings, training_settings
from . import names as N
from .pyexpr import (
    INDENT,
    WIDTH,
    Attr,
    BinOp,
    Call,
    ChildClass,
    DictE,
    Expr,
    ExprError,
    Hole,
    ListE,
    Lit,
    Name,
    Starred,
    Sub,
    TupleE,
    flat,
    literal,
    render,
    shape_key,
    walk,
)

#: Ops whose modules hold parameters or buffers: always modules.
STATEFUL = frozenset({"conv2d", "batchnorm", "linear"})
#: Producers whose output may be overwritten in place: fresh tensors whose backward needs neither
#: their output nor (for the merges) their inputs' storage.
SAFE_PRODUCERS = frozenset({"conv2d", "batchnorm", "linear", "add", "concat", "scale", "maxpool", "avgpool",
                            "adaptive_avgpool", "adaptive_maxpool", "global_avgpool", "global_maxpool"})
#: Activations that can run in place, and the name of their flag.
INPLACE_OPS = frozenset({"relu", "relu6"})

_POSITIONAL_NAMES = {
    "nn.Conv2d": ("in_channels", "out_channels"),
    "nn.Linear": ("in_features", "out_features"),
    "nn.BatchNorm2d": ("num_features",),
    "nn.BatchNorm1d": ("num_features",),
    "nn.LocalResponseNorm": ("size",),
    "nn.AdaptiveAvgPool2d": ("output_size",),
    "nn.AdaptiveMaxPool2d": ("output_size",),
    "nn.Flatten": ("start_dim",),
}
#: Constructor / functional arguments that accept an int or an (h, w) pair.
_PAIRABLE = frozenset({"stride", "padding", "dilation"})
_LABEL_SUFFIX = re.compile(r"_\d+[a-z]?\Z")


class CodegenError(Exception):
    """The spec cannot be compiled to PyTorch; ``diagnostics`` says why and where."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("; ".join(f"{d.loc}: {d.message}" for d in diagnostics))
        self.diagnostics = diagnostics


# ------------------------------------------------------------------------------------ statements


@dataclass
class Assign:
    """``target = value`` (target: source text built from validated names)."""

    target: Expr
    value: Expr


@dataclass
class AugAdd:
    """``target += value``."""

    target: Expr
    value: Expr


@dataclass
class ExprStmt:
    """An expression evaluated for its effect."""

    value: Expr


@dataclass
class Comment:
    """A ``# N x C x H x W`` comment; ``shape`` is per instance and aggregated per class."""

    shape: tuple


@dataclass
class Text:
    """A fixed line of code (no spec content)."""

    text: str


@dataclass
class If:
    """``if cond:`` body ``else:`` orelse."""

    cond: str
    body: list
    orelse: list = field(default_factory=list)


@dataclass
class Return:
    """``return value``."""

    value: Expr


def _stmt_key(s: Any, child: Any = None) -> tuple:
    if isinstance(s, Assign):
        return ("=", shape_key(s.target, child), shape_key(s.value, child))
    if isinstance(s, AugAdd):
        return ("+=", shape_key(s.target, child), shape_key(s.value, child))
    if isinstance(s, ExprStmt):
        return ("e", shape_key(s.value, child))
    if isinstance(s, Comment):
        return ("#",)
    if isinstance(s, Text):
        return ("t", s.text)
    if isinstance(s, If):
        return ("if", s.cond, tuple(_stmt_key(b, child) for b in s.body),
                tuple(_stmt_key(b, child) for b in s.orelse))
    if isinstance(s, Return):
        return ("r", shape_key(s.value, child))
    raise ExprError(f"unknown statement {s!r}")


def _stmt_exprs(s: Any):
    if isinstance(s, (Assign, AugAdd)):
        yield s.target
        yield s.value
    elif isinstance(s, (ExprStmt, Return)):
        yield s.value
    elif isinstance(s, If):
        for b in s.body + s.orelse:
            yield from _stmt_exprs(b)


def _stmt_comments(s: Any):
    if isinstance(s, Comment):
        yield s
    elif isinstance(s, If):
        for b in s.body + s.orelse:
            yield from _stmt_comments(b)


@dataclass
class Method:
    """A method of a generated class."""

    name: str
    signature: str  # trusted text: "self, x: Tensor) -> Tensor"
    body: list


@dataclass
class Instance:
    """One block instance (or the network itself) rendered with holes."""

    path: str
    block: str | None
    loc: Loc | None
    base: str = "nn.Module"
    init: list = field(default_factory=list)
    methods: list[Method] = field(default_factory=list)
    bn_meta: list[tuple[str, str | None]] = field(default_factory=list)
    attrs: list[str] = field(default_factory=list)
    in_channels: int | None = None
    in_shape: tuple = ()
    args: dict = field(default_factory=dict)
    list_mode: bool = False
    needs_me: bool = False
    first: int = 0
    key: Any = None
    variant: Variant | None = None
    param_values: dict[str, Any] = field(default_factory=dict)

    def statements(self):
        """Every statement (init first, then the methods in order)."""
        yield from self.init
        for m in self.methods:
            yield from m.body


@dataclass
class Param:
    """A constructor parameter of a block class."""

    name: str
    values: list  # per instance
    annotation: str = ""
    forward: bool = False  # also used by forward code (stored as self.<name>)
    origin: str = ""  # in_channels, a spec argument, or a hole hint
    order: int = 0


@dataclass
class Variant:
    """One generated class: a block's instances that share their structure."""

    block: str
    key: Any
    instances: list[Instance]
    name: str = ""
    params: list[Param] = field(default_factory=list)


# ------------------------------------------------------------------------------------ the generator

VIRTUAL = -1  # the value ``torch.cat(inputs, 1)`` inside a dense layer's bottleneck


class Generator:
    """Turns one analyzed graph into source text; problems are collected in ``diags``."""

    def __init__(self, graph: Graph, *, source_name: str = "", fold_bn: bool = False,
                 settings: TrainingSettings | None = None) -> None:
        self.graph = graph
        self.G = graph.g
        self.fold = fold_bn
        self.source_name = source_name
        self.settings = settings if settings is not None else training_settings(graph)
        self.diags = DiagnosticBag()
        self.uses: set[str] = set()
        self._boundary: dict[str, tuple] = {}

    # ---------------------------------------------------------------- structure
    def analyze(self) -> None:
        """Scopes, regions, roles, aliases and fold pairs."""
        G = self.G
        self.scopes = dict(self.graph.scopes)
        self.parent = {path: self._scope_parent(path) for path in self.scopes}
        self.node_scope: dict[int, str] = {}
        for nid, d in G.nodes(data=True):
            sc = d["scope"] or ""
            while sc and sc not in self.scopes:
                sc = self._scope_parent(sc)
            self.node_scope[nid] = sc
        self.region: dict[str, set[int]] = defaultdict(set)
        for nid in G.nodes:
            sc = self.node_scope[nid]
            while True:
                self.region[sc].add(nid)
                if sc == "":
                    break
                sc = self.parent[sc]
        self.first = {p: min(r) for p, r in self.region.items() if r}
        self.children: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for nid in G.nodes:
            self.children[self.node_scope[nid]].append(("node", nid))
        for path in self.scopes:
            if path in self.first:
                self.children[self.parent[path]].append(("scope", path))
        for lst in self.children.values():
            lst.sort(key=lambda c: c[1] if c[0] == "node" else self.first[c[1]])
        self.consumers = {nid: sorted(G.succ[nid]) for nid in G.nodes}
        main = self.graph.outputs.get("main")
        keep = self.graph.eval_nodes() if main is not None else set()
        self.aux_nodes = {n for n in G.nodes if n not in keep}
        self._fold_pairs()
        self._roles()

    def _scope_parent(self, path: str) -> str:
        while "." in path:
            path = path.rsplit(".", 1)[0]
            if path in self.scopes:
                return path
        return ""

    def op(self, nid: int) -> str:
        return self.G.nodes[nid]["op"]

    def data(self, nid: int) -> dict:
        return self.G.nodes[nid]

    def inputs(self, nid: int) -> list[int]:
        return self.graph.inputs(nid)

    def leaf(self, path: str) -> str:
        return path.rsplit(".", 1)[-1]

    def _fold_pairs(self) -> None:
        """Each 2-D BN node -> the conv right before it whose output only it reads (else None)."""
        self.bn_partner: dict[int, int | None] = {}
        for nid in self.G.nodes:
            d = self.data(nid)
            if d["op"] != "batchnorm" or len(d["shape"] or ()) != 3:
                continue
            (src,) = self.inputs(nid)
            ok = self.op(src) == "conv2d" and self.consumers[src] == [nid] and d["args"]["track_running_stats"]
            self.bn_partner[nid] = src if ok else None
        self.folded = {b for b, c in self.bn_partner.items() if c is not None} if self.fold else set()
        self.folded_convs = {self.bn_partner[b] for b in self.folded}

    def passthrough(self, nid: int) -> bool:
        """Nodes that emit no code and carry their input's value."""
        return nid in self.folded or (self.op(nid) == "identity" and not self.is_module(nid))

    def alias(self, nid: int) -> int:
        while nid >= 0 and self.passthrough(nid):
            nid = self.inputs(nid)[0]
        return nid

    def eff_consumers(self, nid: int) -> set[int]:
        """Consumers of ``nid``'s value, looking through pass-through nodes."""
        out: set[int] = set()
        for c in self.consumers[nid]:
            if self.passthrough(c):
                out |= self.eff_consumers(c)
            else:
                out.add(c)
        return out

    def boundary(self, path: str) -> tuple[set[int], set[int], bool]:
        """(external inputs, exit nodes, contains an aux output) of a scope's region."""
        hit = self._boundary.get(path)
        if hit is None:
            reg = self.region[path]
            ins = {p for q in reg for p in self.G.pred[q] if p not in reg}
            outs = {q for q in reg if any(s not in reg for s in self.G.succ[q])}
            has_out = any(self.op(q) == "output" for q in reg)
            hit = self._boundary[path] = (ins, outs, has_out)
        return hit

    def _roles(self) -> None:
        self.role: dict[str, str] = {}
        self.seqblock: set[str] = set()
        for path in sorted((p for p in self.scopes if p in self.first), key=lambda p: -p.count(".")):
            info = self.scopes[path]
            ins, outs, has_out = self.boundary(path)
            seq = self._sequential(path, ins, outs, has_out)
            if info.kind == "block":
                if has_out:
                    self._error("E331", f"aux head inside block '{info.block}' is not supported by the PyTorch "
                                "backend", info.loc, path, "tap the aux head at network level, after the block")
                elif len(ins) != 1 or len(outs) != 1:
                    self._error("E332", f"block instance '{path}' does not have a single input and output",
                                info.loc, path)
                self.role[path] = "block"
                names = [self._child_name(k, r) for k, r in self.children[path]]
                if seq and names == [str(i) for i in range(len(names))]:
                    self.seqblock.add(path)
            else:
                self.role[path] = "seq" if seq else "dict"

    def _child_name(self, kind: str, ref: Any) -> str:
        return self.leaf(self.data(ref)["path"]) if kind == "node" else self.leaf(ref)

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
                if OPS[self.op(ref)].internal or self.inputs(ref) != [prev]:
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

    def is_module(self, nid: int) -> bool:
        """True when the op node is an attribute (module) rather than a functional call."""
        op = self.op(nid)
        if OPS[op].internal or nid in self.folded:
            return False
        if op in STATEFUL:
            return True
        parent = self.node_scope[nid]
        if parent and (self.role.get(parent) == "seq" or parent in self.seqblock):
            return True
        return self.data(nid)["label"] is not None

    def exit_node(self, path: str) -> int:
        return min(self.boundary(path)[1])

    def entry_node(self, path: str) -> int:
        return min(self.boundary(path)[0])

    def has_modules(self, path: str) -> bool:
        for kind, ref in self.children[path]:
            if kind == "node" and self.is_module(ref):
                return True
            if kind == "scope" and (self.role[ref] in ("block", "seq") or self.has_modules(ref)):
                return True
        return False

    def class_of(self, nid: int) -> str:
        """The class whose code owns node ``nid`` (root "" or a block path)."""
        sc = self.node_scope[nid]
        while sc and self.role.get(sc) != "block":
            sc = self.parent[sc]
        return sc

    def _class_up(self, path: str) -> str:
        sc = self.parent[path]
        while sc and self.role.get(sc) != "block":
            sc = self.parent[sc]
        return sc

    # ---------------------------------------------------------------- diagnostics and names
    def _error(self, code: str, message: str, loc: Loc | None, path: str = "", hint: str = "") -> None:
        self.diags.error(code, message, loc or Loc(self.source_name or "<spec>", 1, 1), path, hint)

    def check_names(self) -> None:
        """Every module name is registrable by PyTorch; aux names are named-tuple fields."""
        for nid, d in self.G.nodes(data=True):
            if self.is_module(nid):
                self._check_module_name(d["path"], d["loc"])
        for path in self.scopes:
            if path in self.first and (self.role[path] in ("block", "seq") or self.has_modules(path)):
                self._check_module_name(path, self.scopes[path].loc)
        for name, out in self.graph.outputs.items():
            if name != "main" and (not N.is_identifier(name) or name.startswith("_")):
                self._error("E333", f"aux output name '{name}' cannot be a field of the output named tuple",
                            self.data(out)["loc"], hint="use an identifier that does not start with '_'")

    def _check_module_name(self, path: str, loc: Loc | None) -> None:
        parent = self._scope_parent(path)
        container = {"seq": "sequential", "dict": "dict"}.get(self.role.get(parent, ""), "module")
        problem = N.module_name_problem(self.leaf(path), container)
        if problem:
            self._error("E330", f"'{self.leaf(path)}' cannot be a PyTorch module name: {problem}", loc, path,
                        "rename the layer (labels become attribute names and state_dict keys)")

    # ---------------------------------------------------------------- dense list mode
    def detect_list_mode(self) -> None:
        """Dense layers (fed by a DenseNet concat) whose body starts BN -> ReLU -> 1x1 conv take the
        list of earlier features and concatenate them inside, so the concat can be checkpointed."""
        self.list_mode: set[str] = set()
        self.absorbed: set[int] = set()
        self.bottleneck: dict[str, list[int]] = {}
        for path, info in self.scopes.items():
            if info.kind != "block" or path not in self.first:
                continue
            ins, outs, has_out = self.boundary(path)
            if has_out or len(ins) != 1 or len(outs) != 1:
                continue
            exit_, entry = next(iter(outs)), next(iter(ins))
            feeds = set(self.inputs(entry)) if self._dense_concat(entry) else {entry}
            if not any(self._dense_concat(c) and feeds <= set(self.inputs(c)) for c in self.consumers[exit_]):
                continue  # not a layer of a dense block (its output must join its inputs in a concat)
            chain = self._bottleneck_chain(path, entry)
            if chain is None:
                continue
            self.list_mode.add(path)
            self.bottleneck[path] = chain
            if self._dense_concat(entry) and all(c in self.region[path] for c in self.consumers[entry]):
                self.absorbed.add(entry)

    def _dense_concat(self, nid: int) -> bool:
        return self.op(nid) == "concat" and bool(self.data(nid)["args"].get("dense"))

    def _bottleneck_chain(self, path: str, entry: int) -> list[int] | None:
        reg = self.region[path]
        firsts = [c for c in self.consumers[entry] if c in reg]
        if len(firsts) != 1 or self.class_of(firsts[0]) != path:
            return None
        bn = firsts[0]
        if self.op(bn) != "batchnorm" or bn in self.folded:
            return None
        acts = self.consumers[bn]
        if len(acts) != 1 or self.op(acts[0]) != "relu" or self.class_of(acts[0]) != path:
            return None
        convs = self.consumers[acts[0]]
        if len(convs) != 1 or self.op(convs[0]) != "conv2d" or self.class_of(convs[0]) != path:
            return None
        if self.data(convs[0])["args"]["kernel"] != (1, 1) or convs[0] in self.folded_convs:
            return None
        return [bn, acts[0], convs[0]]

    # ---------------------------------------------------------------- expressions
    def module_ctor(self, nid: int) -> Expr:
        """The constructor call of an op module, with a hole for every literal."""
        d = self.data(nid)
        args = dict(d["args"])
        if d["op"] in INPLACE_OPS:
            args["inplace"] = self.inplace_ok(nid)
        if nid in self.folded_convs:
            args["bias"] = True
        ins = [self.data(p)["shape"] for p in self.inputs(nid)]
        src = OPS[d["op"]].torch(args, ins)
        func, pos_vals, kw_vals = _parse_call(src)
        pos = _POSITIONAL_NAMES.get(f"nn.{func}", ())
        label = N.python_name(self.leaf(d["path"])) if not self.leaf(d["path"]).isdigit() else d["op"]
        call = Call(Attr(Name("nn"), func))
        for i, v in enumerate(pos_vals):
            call.args.append(Hole(v, f"{label}_{pos[i] if i < len(pos) else f'arg{i}'}"))
        for k, v in kw_vals:
            call.kwargs.append((k, Hole(v, f"{label}_{k}")))
        return call

    def functional(self, nid: int, x: Expr, inplace: bool, hint: str) -> Expr | None:
        """Functional form of a parameter-free op applied to ``x``."""
        d = self.data(nid)
        a, op = d["args"], d["op"]

        def h(v: Any, what: str) -> Hole:
            return Hole(_compact(v), f"{hint}_{what}")

        def fn(name: str, *args: Expr, **kw: Expr) -> Call:
            self.uses.add("F")
            return Call(Attr(Name("F"), name), list(args), list(kw.items()))

        if op in ("relu", "relu6"):
            return fn(op, x, inplace=Lit(True)) if inplace else fn(op, x)
        if op == "leaky_relu":
            return fn("leaky_relu", x, h(a["negative_slope"], "negative_slope"))
        if op in ("sigmoid", "tanh"):
            return Call(Attr(Name("torch"), op), [x])
        if op == "gelu":
            return fn("gelu", x, approximate=Lit(a["approximate"])) if a["approximate"] != "none" else fn("gelu", x)
        if op in ("silu", "hardswish"):
            return fn(op, x)
        if op in ("maxpool", "avgpool"):
            kw: dict[str, Expr] = {"kernel_size": h(a["kernel"], "kernel_size"),
                                   "stride": h(a["stride"] if a["stride"] is not None else a["kernel"], "stride")}
            if a["padding"] != (0, 0):
                kw["padding"] = h(a["padding"], "padding")
            if op == "maxpool" and a["dilation"] != (1, 1):
                kw["dilation"] = h(a["dilation"], "dilation")
            if a["ceil_mode"]:
                kw["ceil_mode"] = Lit(True)
            if op == "avgpool" and not a["count_include_pad"]:
                kw["count_include_pad"] = Lit(False)
            return fn("max_pool2d" if op == "maxpool" else "avg_pool2d", x, **kw)
        if op in ("adaptive_avgpool", "adaptive_maxpool"):
            name = "adaptive_avg_pool2d" if op == "adaptive_avgpool" else "adaptive_max_pool2d"
            return fn(name, x, h(a["size"], "output_size"))
        if op in ("global_avgpool", "global_maxpool"):
            return fn("adaptive_avg_pool2d" if op == "global_avgpool" else "adaptive_max_pool2d", x, Lit(1))
        if op == "flatten":
            self.uses.add("torch")
            return Call(Attr(Name("torch"), "flatten"), [x, Lit(1)])
        if op in ("dropout", "dropout2d"):
            return fn(op, x, p=h(a["p"], "p"), training=Attr(Name("self"), "training"))
        if op == "lrn":
            return fn("local_response_norm", x, h(a["size"], "size"), alpha=h(a["alpha"], "alpha"),
                      beta=h(a["beta"], "beta"), k=h(a["k"], "k"))
        raise ExprError(f"no functional form for op {op}")

    def inplace_ok(self, nid: int) -> bool:
        """May ``nid`` overwrite its first input?  Only a fresh tensor made in the same class, read by
        ``nid`` alone, whose producer's backward does not need it."""
        src = self.alias(self.inputs(nid)[0])
        if self.op(src) not in SAFE_PRODUCERS or self.eff_consumers(src) != {nid}:
            return False
        cls = self.class_of(nid)
        if cls and (src not in self.region[cls] or src in self.absorbed):
            return False
        # a value entering a Sequential container or a block belongs to the code that called it
        scope = self.node_scope[nid]
        if scope and (self.role.get(scope) == "seq" or scope in self.seqblock) and src not in self.region[scope]:
            return False
        return True

    # ---------------------------------------------------------------- items of a class
    def class_items(self, cls: str) -> list[tuple[str, Any]]:
        """Forward steps of class ``cls``: op nodes and calls of blocks / Sequential scopes."""
        items: list[tuple[str, Any]] = []

        def visit(path: str) -> None:
            for kind, ref in self.children[path]:
                if kind == "node":
                    if self.op(ref) in ("input", "output") or self.passthrough(ref) or ref in self.absorbed:
                        continue
                    items.append(("op", ref))
                elif self.role[ref] in ("block", "seq"):
                    items.append(("call", ref))
                else:
                    visit(ref)

        visit(cls)
        items.sort(key=lambda it: it[1] if it[0] == "op" else self.first[it[1]])
        return items

    def created_blocks(self, cls: str) -> list[str]:
        """Block instances constructed by class ``cls`` (directly or inside its containers)."""
        out: list[str] = []

        def visit(path: str) -> None:
            for kind, ref in self.children[path]:
                if kind == "scope":
                    if self.role[ref] == "block":
                        out.append(ref)
                    else:
                        visit(ref)

        visit(cls)
        return out

    def item_nodes(self, item: tuple[str, Any]) -> set[int]:
        return {item[1]} if item[0] == "op" else self.region[item[1]]

    def item_value(self, item: tuple[str, Any]) -> int:
        return item[1] if item[0] == "op" else self.alias(self.exit_node(item[1]))

    def item_inputs(self, item: tuple[str, Any]) -> list[int]:
        if item[0] == "op":
            return [self.alias(p) for p in self.inputs(item[1])]
        entry = self.entry_node(item[1])
        if entry in self.absorbed and item[1] in self.list_mode:
            return [self.alias(p) for p in self.inputs(entry)]
        return [self.alias(entry)]

    def rel(self, cls: str, path: str) -> list[str]:
        return path[len(cls) + 1:].split(".") if cls else path.split(".")

    def access(self, cls: str, path: str) -> Expr:
        """``self.a.b``; ``self[0]`` in Sequential blocks; getattr / subscripts for other names."""
        e: Expr = Name("self")
        for i, part in enumerate(self.rel(cls, path)):
            if i == 0 and cls in self.seqblock:
                e = Sub(e, Lit(int(part)))
            elif N.attribute_ok(part):
                e = Attr(e, part)
            elif i == 0:
                e = Call(Name("getattr"), [e, Lit(part)])
            else:
                e = Sub(e, Lit(part))
        return e

    # ---------------------------------------------------------------- __init__
    def ctor(self, kind: str, ref: Any) -> Expr:
        """Constructor expression of a child: op module, block or Sequential scope."""
        if kind == "node":
            return self.module_ctor(ref)
        if self.role[ref] == "block":
            return ChildClass(ref)
        kids = [(k, r) for k, r in self.children[ref]
                if not (k == "node" and (OPS[self.op(r)].internal or r in self.folded))]
        names = [self._child_name(k, r) for k, r in kids]
        exprs = [self.ctor(k, r) for k, r in kids]
        if names == [str(i) for i in range(len(names))]:
            return Call(Attr(Name("nn"), "Sequential"), exprs)
        self.uses.add("OrderedDict")
        pairs = ListE([TupleE([Lit(n), e]) for n, e in zip(names, exprs)])  # noqa: B905
        return Call(Attr(Name("nn"), "Sequential"), [Call(Name("OrderedDict"), [pairs])])

    def init_stmts(self, inst: Instance, cls: str) -> None:
        if cls in self.seqblock:
            kids = [(k, r) for k, r in self.children[cls]
                    if not (k == "node" and (OPS[self.op(r)].internal or r in self.folded))]
            inst.base = "nn.Sequential"
            inst.attrs = [self._child_name(k, r) for k, r in kids]
            inst.init.append(ExprStmt(Call(Attr(Call(Name("super")), "__init__"),
                                           [self.ctor(k, r) for k, r in kids])))
            return

        def visit(path: str) -> None:
            for kind, ref in self.children[path]:
                if kind == "node":
                    if not self.is_module(ref):
                        continue
                    self._assign(inst, cls, self.data(ref)["path"], self.ctor(kind, ref))
                elif self.role[ref] in ("block", "seq"):
                    self._assign(inst, cls, ref, self.ctor(kind, ref))
                elif self.has_modules(ref):
                    self._assign(inst, cls, ref, Call(Attr(Name("nn"), "ModuleDict")))
                    visit(ref)

        visit(cls)

    def _assign(self, inst: Instance, cls: str, path: str, value: Expr) -> None:
        parts = self.rel(cls, path)
        if len(parts) == 1:
            inst.attrs.append(parts[0])
        holder = self.access(cls, path.rsplit(".", 1)[0]) if len(parts) > 1 else Name("self")
        if N.attribute_ok(parts[-1]):
            inst.init.append(Assign(Attr(holder, parts[-1]), value))
        else:
            inst.init.append(ExprStmt(Call(Attr(holder, "add_module"), [Lit(parts[-1]), value])))

    # ---------------------------------------------------------------- forward
    def forward(self, inst: Instance, cls: str) -> None:
        items = self.class_items(cls)
        values = [self.item_value(it) for it in items]
        ins_of = [self.item_inputs(it) for it in items]
        bottleneck = self.bottleneck.get(cls) if inst.list_mode else None
        if bottleneck:
            ins_of[[it[1] for it in items].index(bottleneck[0])] = [VIRTUAL]
            input_val: int | None = VIRTUAL
        elif cls:
            input_val = self.alias(self.entry_node(cls))
        else:
            input_val = self.graph.input_node
        if cls:
            returns = {self.alias(self.exit_node(cls))}
        else:
            returns = {self.alias(self.inputs(o)[0]) for o in self.graph.outputs.values()}
        uses: dict[int, list[int]] = defaultdict(list)
        for i, vs in enumerate(ins_of):
            for v in vs:
                if i not in uses[v]:
                    uses[v].append(i)
        last_use = {v: max(us) for v, us in uses.items()}
        for v in returns:
            last_use[v] = len(items) + 1
        var: dict[int, str] = {}
        bound: dict[str, int] = {}
        # locals must not shadow the module-level names forward refers to (the outputs class)
        reserved = set(N.GLOBALS) | {"self", "inputs", self.net_class, self.outputs_class}

        def fresh(base: str, at: int) -> str:
            base = N.python_name(base, reserved)
            name, n = base, 1
            while name in bound and last_use.get(bound[name], -1) > at:
                n += 1
                name = f"{base}_{n}"
            return name

        var[input_val] = "x"
        bound["x"] = input_val
        ctx = _Ctx(cls, items, values, ins_of, uses, var, returns)
        # DenseNet feature lists: list inputs that grow one tensor at a time share one list variable
        needs = [tuple(ins_of[i]) if (it[0] == "call" and it[1] in self.list_mode)
                 or (it[0] == "op" and self._dense_concat(it[1])) else None for i, it in enumerate(items)]
        lists = _FeatureLists(needs, var, bound, last_use, fresh)
        main: list = []
        bn_body: list = []
        if not bottleneck:
            main.append(Comment(self.data(input_val)["shape"]))
        if bottleneck:
            self.uses.add("torch")
            bn_body += [Assign(Name("x"), Call(Attr(Name("torch"), "cat"), [Name("inputs"), Lit(1)])),
                        Comment(self.data(self.entry_node(cls))["shape"])]
        aux_run: list | None = None
        for i, it in enumerate(items):
            val, ins = values[i], ins_of[i]
            node = it[1] if it[0] == "op" else None
            op = self.op(node) if node is not None else "call"
            listed = it[0] == "call" and it[1] in self.list_mode
            # the output's name: continue the input's variable when this step is its only reader
            cont = None
            if op == "add":
                if self._add_inplace(node, ins[0], input_val):
                    cont = ins[0]
            elif op != "concat" and len(ins) == 1 and not listed:
                u = ins[0]
                if u in var and u not in returns and uses.get(u) and max(uses[u]) == i and (
                        uses[u] == [i] or not self._ends_in_merge(ctx, i)):
                    cont = u
            name = var[cont] if cont is not None else fresh(self._base_name(ctx, i), i)
            xs = [Name(var[v]) for v in ins]
            pre: list = []
            seq: Expr = lists.expr(i, pre) if needs[i] is not None else ListE(xs)
            if it[0] == "call":
                stmt: Any = Assign(Name(name), Call(self.access(cls, it[1]), [seq if listed else xs[0]]))
            elif op == "concat":
                self.uses.add("torch")
                stmt = Assign(Name(name), Call(Attr(Name("torch"), "cat"), [seq, Lit(1)]))
            elif op == "add":
                if cont is not None:
                    stmt = AugAdd(Name(name), _sum(xs[1:]))
                else:
                    stmt = Assign(Name(name), _sum(xs))
            elif op == "scale":
                factor = Hole(float(self.data(node)["args"]["factor"]), "scale")
                stmt = Assign(Name(name), BinOp(xs[0], "*", factor))
            elif self.is_module(node):
                stmt = Assign(Name(name), Call(self.access(cls, self.data(node)["path"]), [xs[0]]))
            else:
                inplace = op in INPLACE_OPS and self.inplace_ok(node)
                stmt = Assign(Name(name), self.functional(node, xs[0], inplace, self._hint(cls, node)))
            var[val] = name
            bound[name] = val
            step = pre + [stmt, Comment(self.data(val)["shape"])]
            if bottleneck and node in bottleneck:
                bn_body.extend(step)
                if node == bottleneck[-1]:
                    bn_body.append(Return(Name("x")))
                    self.uses.add("checkpoint")
                    main.append(If(
                        "self.memory_efficient and any(t.requires_grad for t in inputs)",
                        [Assign(Name("x"), Call(Name("checkpoint"), [Attr(Name("self"), "bottleneck"),
                                                                     Starred(Name("inputs"))],
                                                [("use_reentrant", Lit(False))]))],
                        [Assign(Name("x"), Call(Attr(Name("self"), "bottleneck"), [Starred(Name("inputs"))]))]))
                    main.append(Comment(self.data(val)["shape"]))
                continue
            if not cls and all(n in self.aux_nodes for n in self.item_nodes(it)):
                if aux_run is None:
                    aux_run = []
                    main.append(If("self.training", aux_run))
                aux_run.extend(step)
            else:
                aux_run = None
                main.extend(step)
        if cls:
            main.append(Return(Name(var[self.alias(self.exit_node(cls))])))
            if bottleneck:
                inst.methods.append(Method("bottleneck", "self, *inputs: Tensor) -> Tensor", bn_body))
                inst.methods.append(Method("forward", "self, inputs: list[Tensor]) -> Tensor", main))
            else:
                inst.methods.append(Method("forward", "self, x: Tensor) -> Tensor", main))
            return
        outs = self.graph.outputs
        main_val = self.alias(self.inputs(outs["main"])[0])
        ret = "Tensor"
        if len(outs) > 1:
            fields = [Name(var[self.alias(self.inputs(o)[0])]) for o in outs.values()]
            main.append(If("self.training", [Return(Call(Name(self.outputs_class), fields))]))
            ret = f"Tensor | {self.outputs_class}"
        main.append(Return(Name(var[main_val])))
        inst.methods.append(Method("forward", f"self, x: Tensor) -> {ret}", main))

    def _ends_in_merge(self, ctx: _Ctx, i: int) -> bool:
        """Does the single-reader chain starting at item ``i`` end in a concat or add?"""
        j = i
        while True:
            us = ctx.uses.get(ctx.values[j], [])
            if len(us) != 1 or ctx.values[j] in ctx.returns:
                return False
            nxt = ctx.items[us[0]]
            if nxt[0] == "op" and self.op(nxt[1]) in ("concat", "add"):
                return True
            if len(ctx.ins_of[us[0]]) != 1:
                return False
            j = us[0]

    def _add_inplace(self, node: int, first: int, input_val: int | None) -> bool:
        if first == input_val or first < 0 or self.op(first) not in SAFE_PRODUCERS:
            return False
        if self.eff_consumers(first) != {node}:
            return False
        cls = self.class_of(node)
        return not cls or first in self.region[cls]

    def _hint(self, cls: str, node: int) -> str:
        path = self.data(node)["path"]
        words = [p for p in self.rel(cls, path) if N.IDENT.match(p)] if "@" not in path else []
        return N.python_name("_".join(words) if words else self.op(node))

    def _label(self, cls: str, it: tuple[str, Any]) -> str | None:
        path = it[1] if it[0] == "call" else self.data(it[1])["path"]
        if "@" in path:
            return None
        parts = self.rel(cls, path)
        if it[0] == "op" and self.data(it[1])["label"] is None:
            return None
        return parts[-1] if N.IDENT.match(parts[-1]) else None

    def _base_name(self, ctx: _Ctx, i: int) -> str:
        it = ctx.items[i]
        op = self.op(it[1]) if it[0] == "op" else "call"
        if op in ("concat", "add"):
            if ctx.values[i] in ctx.returns:
                return "x"
            prefix = _common_prefix([ctx.var[v] for v in ctx.ins_of[i] if v in ctx.var])
            if prefix:
                return prefix
            first = ctx.ins_of[i][0]
            if first in ctx.var and max(ctx.uses.get(first, [i])) == i and first not in ctx.returns:
                return ctx.var[first]
            return "out"
        j = i
        label = self._label(ctx.cls, it)
        while True:
            us = ctx.uses.get(ctx.values[j], [])
            if len(us) != 1 or ctx.values[j] in ctx.returns:
                break
            k = us[0]
            nxt = ctx.items[k]
            nop = self.op(nxt[1]) if nxt[0] == "op" else "call"
            if nop == "add":
                return "out" if ctx.ins_of[k].index(ctx.values[j]) == 0 else "identity"
            if nop == "concat" or len(ctx.ins_of[k]) != 1:
                break
            j = k
            if label is None:
                label = self._label(ctx.cls, nxt)
        return _LABEL_SUFFIX.sub("", label) if label else "out"

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
                    chain.append(self._class_up(chain[-1]))
                c = self.class_of(conv)
                while c not in chain:
                    c = self._class_up(c)
                owner = c
            bpath = ".".join(self.rel(owner, self.data(bn)["path"]))
            cpath = ".".join(self.rel(owner, self.data(conv)["path"])) if conv is not None else None
            out[owner].append((bpath, cpath))
        return out

    # ---------------------------------------------------------------- instances and variants
    def instance(self, cls: str, meta: dict) -> Instance:
        info = self.scopes.get(cls)
        inst = Instance(cls, info.block if info else None, info.loc if info else None)
        inst.first = self.first.get(cls, 0)
        if cls:
            entry = self.entry_node(cls)
            inst.in_channels = self.data(entry if entry in self.absorbed else self.alias(entry))["shape"][0]
            inst.args = dict(info.args)
            inst.list_mode = cls in self.list_mode
            inst.in_shape = self.data(entry if entry in self.absorbed else self.alias(entry))["shape"]
        else:
            inst.in_shape = self.graph.input_shape
        self.init_stmts(inst, cls)
        self.forward(inst, cls)
        inst.bn_meta = list(meta.get(cls, []))
        inst.needs_me = inst.list_mode or any(self.instances[c].needs_me for c in self.created_blocks(cls))
        return inst

    def build(self) -> None:
        meta = self.bn_meta()
        self.instances: dict[str, Instance] = {}
        order: list[str] = []

        def make(path: str) -> None:
            if path in self.instances:
                return
            for child in self.created_blocks(path):
                make(child)
            self.instances[path] = self.instance(path, meta)
            order.append(path)

        for path in self.created_blocks(""):
            make(path)
        self.root = self.instance("", meta)
        # group instances by structure (children are keyed before their parents)
        by_key: dict[Any, Variant] = {}
        self.variant_order: list[Variant] = []
        for path in order:
            inst = self.instances[path]
            inst.key = self._key(inst)
            v = by_key.get(inst.key)
            if v is None:
                v = by_key[inst.key] = Variant(inst.block or "", inst.key, [])
                self.variant_order.append(v)
            v.instances.append(inst)
            inst.variant = v
        self._name_variants()
        for v in self.variant_order:  # children come first in this order
            for inst in v.instances:
                self._expand_children(inst)
            self._params(v)
        self._expand_children(self.root)
        for h, _ in self._holes(self.root):
            h.resolved = Lit(h.value)

    def _key(self, inst: Instance) -> Any:
        child = lambda scope: self.instances[scope].key  # noqa: E731
        return (inst.block, inst.base, inst.list_mode, inst.needs_me, tuple(inst.bn_meta),
                tuple(_stmt_key(s, child) for s in inst.init),
                tuple((m.name, m.signature, tuple(_stmt_key(s, child) for s in m.body)) for m in inst.methods))

    def _expand_children(self, inst: Instance) -> None:
        for s in inst.statements():
            for e in _stmt_exprs(s):
                for sub in walk(e):
                    if isinstance(sub, ChildClass) and sub.resolved is None:
                        child = self.instances[sub.scope]
                        cv = child.variant
                        hint = N.python_name(self.leaf(sub.scope)) if not self.leaf(sub.scope).isdigit() else "block"
                        holes = [Hole(child.param_values[p.name], f"{hint}_{p.name}") for p in cv.params]
                        kwargs = [(p.name, h) for p, h in zip(cv.params[2:], holes[2:])]  # noqa: B905
                        if child.needs_me:
                            kwargs.append(("memory_efficient", Name("memory_efficient")))
                        sub.resolved = Call(Name(cv.name), holes[:2], kwargs)

    def _holes(self, inst: Instance) -> list[tuple[Hole, bool]]:
        out = []
        for s in inst.init:
            for e in _stmt_exprs(s):
                out.extend((h, False) for h in walk(e) if isinstance(h, Hole))
        for m in inst.methods:
            for s in m.body:
                for e in _stmt_exprs(s):
                    out.extend((h, True) for h in walk(e) if isinstance(h, Hole))
        return out

    def _params(self, v: Variant) -> None:
        per_inst = [self._holes(i) for i in v.instances]
        n = len(per_inst[0])
        if any(len(h) != n for h in per_inst):
            raise ExprError(f"instances of block {v.block} disagree on their literals")
        first = v.instances[0]
        taken = set(N.GLOBALS) | {"self", "memory_efficient"} | {a for a in first.attrs if N.IDENT.match(a)}
        taken |= {vv.name for vv in self.variant_order} | {self.net_class, self.outputs_class}
        params: list[Param] = []
        cache: dict[tuple, Expr] = {}
        for j in range(n):
            vals = [h[j][0].value for h in per_inst]
            fwd = per_inst[0][j][1]
            if all(_same(vals[0], x) for x in vals[1:]):
                for h in per_inst:
                    h[j][0].resolved = Lit(vals[0])
                continue
            ck = (tuple(literal(x) for x in vals), fwd)
            if ck not in cache:
                cache[ck] = self._param_expr(vals, v, params, taken, per_inst[0][j][0].hint, fwd)
            for h in per_inst:
                h[j][0].resolved = cache[ck]
        rank = {"in_channels": -1, **{a: k for k, a in enumerate(first.args)}}
        params.sort(key=lambda p: (rank.get(p.origin, len(rank)), p.order))
        v.params = params
        for idx, inst in enumerate(v.instances):
            inst.param_values = {p.name: p.values[idx] for p in params}

    def _param_expr(self, vals: list, v: Variant, params: list[Param], taken: set[str], hint: str,
                    fwd: bool) -> Expr:
        pairable = hint.rsplit("_", 1)[-1] in _PAIRABLE or hint.endswith("_kernel_size") \
            or hint.endswith("_output_size")
        insts = v.instances

        def get(origin: str, values: list, pyname: str) -> Param:
            for p in params:
                if p.origin == origin:
                    p.forward |= fwd
                    return p
            name = N.python_name(pyname, taken)
            taken.add(name)
            p = Param(name, values, _annotation(values), fwd, origin, len(params))
            params.append(p)
            return p

        def ref(p: Param) -> Expr:
            return Attr(Name("self"), p.name) if fwd else Name(p.name)

        def is_int(x: Any) -> bool:
            return isinstance(x, int) and not isinstance(x, bool)

        in_vec = [i.in_channels for i in insts]
        ints = all(is_int(x) for x in vals)
        arg_vals = {a: [i.args.get(a) for i in insts] for a in insts[0].args}
        for a, avals in arg_vals.items():
            if all(_same(x, y) for x, y in zip(vals, avals)):  # noqa: B905
                return ref(get(a, avals, a))
        if ints and vals == in_vec:
            return ref(get("in_channels", in_vec, "in_channels"))
        for a, avals in arg_vals.items():
            if pairable and all((is_int(y) and x == (y, y)) or (isinstance(y, tuple) and x == y)
                                for x, y in zip(vals, avals)):  # noqa: B905
                return ref(get(a, avals, a))  # the op accepts an int or a pair
            if all(is_int(y) for y in avals) and all(x == (y, y) for x, y in zip(vals, avals)):  # noqa: B905
                p = get(a, avals, a)
                return TupleE([ref(p), ref(p)])
        if ints:
            for a, avals in arg_vals.items():
                if all(is_int(y) and y > 0 for y in avals) and all(x % y == 0 for x, y in zip(vals, avals)):  # noqa: B905
                    ks = {x // y for x, y in zip(vals, avals)}  # noqa: B905
                    if len(ks) == 1 and (k := ks.pop()) >= 2:
                        return BinOp(ref(get(a, avals, a)), "*", Lit(k))
            if all(is_int(c) and c > 0 and x > 0 and c % x == 0 for x, c in zip(vals, in_vec)):  # noqa: B905
                ks = {c // x for x, c in zip(vals, in_vec)}  # noqa: B905
                if len(ks) == 1 and (k := ks.pop()) >= 2:
                    return BinOp(ref(get("in_channels", in_vec, "in_channels")), "//", Lit(k))
        return ref(get(f"@{len(params)}", vals, hint or "value"))

    def _method_names(self) -> set[str]:
        """Every name the rendered methods (forward, bottleneck) of every class refer to."""
        out: set[str] = set()
        # instances of one variant share their structure, names included (shape_key keeps them)
        for inst in [*(v.instances[0] for v in self.variant_order), self.root]:
            for m in inst.methods:
                for s in m.body:
                    out.update(e.id for x in _stmt_exprs(s) for e in walk(x) if isinstance(e, Name))
        return out

    def _name_variants(self) -> None:
        taken = set(N.GLOBALS | N.LOCALS)
        self.net_class = N.python_name(self.graph.name, taken)
        taken.add(self.net_class)
        self.outputs_class = N.python_name(f"{self.net_class}Outputs", taken)
        taken.add(self.outputs_class)
        # a block class named like a local variable of some forward (a block 'x', a label 'B') would
        # be shadowed there; forward code is rendered by now, so its names are known
        taken |= self._method_names()
        by_block: dict[str, list[Variant]] = defaultdict(list)
        for v in self.variant_order:
            by_block[v.block].append(v)
        for block, vs in by_block.items():
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

    # ---------------------------------------------------------------- rendering
    def source(self) -> str:
        body: list[str] = []
        for v in self.variant_order:
            body += ["", ""] + self._render_class(v.name, v.instances, v.params, v.block)
        aux = [n for n in self.graph.outputs if n != "main"]
        if aux:
            self.uses.add("NamedTuple")
            body += ["", "", f"class {self.outputs_class}(NamedTuple):",
                     f'{INDENT}"""Train-mode outputs of ``{self.net_class}``: main logits, then each aux head."""',
                     "", f"{INDENT}{self.main_field}: Tensor"]
            body += [f"{INDENT}{name}: Tensor" for name in aux]
        body += ["", ""] + self._render_class(self.net_class, [self.root], [], None)
        body += self._render_loss(aux)
        if self.settings.init:
            body += self._render_init()
        return "\n".join(self._header() + self._imports() + body) + "\n"

    def _header(self) -> list[str]:
        params = ", ".join(f"{_plain(k)}={_safe_literal(v)}" for k, v in self.graph.params.items())
        out = [f"# Generated by archdsl {__version__} from {_safe_literal(self.source_name)}; do not edit.",
               f"# Network {_plain(self.graph.name)}({params}), "
               f"input N x {' x '.join(map(str, self.graph.input_shape))}."]
        if self.fold:
            out.append("# Inference build: batch norms that follow a convolution are folded into it.")
        return out + [""]

    def _imports(self) -> list[str]:
        std = []
        if "OrderedDict" in self.uses:
            std.append("from collections import OrderedDict")
        if "NamedTuple" in self.uses:
            std.append("from typing import NamedTuple")
        third = ["import torch"]
        if "F" in self.uses:
            third.append("import torch.nn.functional as F")
        third.append("from torch import Tensor, nn")
        if "checkpoint" in self.uses:
            third.append("from torch.utils.checkpoint import checkpoint")
        out = (std + [""] if std else []) + third
        return out + ["", f"INPUT_SHAPE = {literal(tuple(self.graph.input_shape))}"]

    def _render_stmts(self, stmts: list, indent: int, comments: list[str], counter: list[int]) -> list[str]:
        out: list[str] = []
        pad = INDENT * indent
        for s in stmts:
            if isinstance(s, Comment):
                out.append(f"{pad}# {comments[counter[0]]}")
                counter[0] += 1
            elif isinstance(s, Assign):
                out += render(f"{flat(s.target)} = ", s.value, "", indent)
            elif isinstance(s, AugAdd):
                out += render(f"{flat(s.target)} += ", s.value, "", indent)
            elif isinstance(s, ExprStmt):
                out += render("", s.value, "", indent)
            elif isinstance(s, Return):
                out += render("return ", s.value, "", indent)
            elif isinstance(s, Text):
                out.append(f"{pad}{s.text}")
            elif isinstance(s, If):
                out.append(f"{pad}if {s.cond}:")
                out += self._render_stmts(s.body, indent + 1, comments, counter)
                if s.orelse:
                    out.append(f"{pad}else:")
                    out += self._render_stmts(s.orelse, indent + 1, comments, counter)
        return out

    def _render_class(self, name: str, insts: list[Instance], params: list[Param], block: str | None) -> list[str]:
        inst = insts[0]
        lines = [f"class {name}({inst.base}):"]
        if block is None:
            out_shape = self.data(self.graph.main_output)["shape"]
            doc = (f"Network ``{_plain(self.graph.name)}``: N x {' x '.join(map(str, self.graph.input_shape))} -> "
                   f"N x {' x '.join(map(str, out_shape))}.")
        else:
            doc = f"Spec block ``{_plain(block)}``, used at {_plain(insts[0].path)}."
            for k in range(len(insts), 0, -1):  # as many instance paths as fit on the line
                more = f" and {len(insts) - k} more" if k < len(insts) else ""
                cand = f"Spec block ``{_plain(block)}``, used at {_plain(', '.join(i.path for i in insts[:k]))}{more}."
                if len(cand) + 10 <= WIDTH or k == 1:
                    doc = cand
                    break
        lines += [f'{INDENT}"""{doc}"""', ""]
        if inst.bn_meta:
            items = TupleE([TupleE([Lit(b), Lit(c)]) for b, c in inst.bn_meta])
            lines.append(f"{INDENT}# Batch norms and the convolution each folds into (None: no conv right before it).")
            lines += render("archdsl_bn = ", items, "", 1)
            lines.append("")
        sig = ["self"] + [f"{p.name}: {p.annotation}" if p.annotation else p.name for p in params]
        if inst.needs_me:
            sig.append("memory_efficient: bool = False")
        lines += self._def_lines("__init__", sig, "None")
        if inst.base == "nn.Module":
            lines.append(f"{INDENT * 2}super().__init__()")
        else:
            lines += self._render_stmts(inst.init[:1], 2, [], [0])
        lines += [f"{INDENT * 2}self.{p.name} = {p.name}" for p in params if p.forward]
        if inst.list_mode:
            lines.append(f"{INDENT * 2}self.memory_efficient = memory_efficient")
        if inst.base == "nn.Module":
            lines += self._render_stmts(inst.init, 2, [], [0])
        if block is None and self.settings.init:
            lines.append(f"{INDENT * 2}init_weights(self)")
        comments = self._comment_texts(insts, params)
        counter = [0]
        for m in inst.methods:
            lines += ["", f"{INDENT}def {m.name}({m.signature}:"]
            lines += self._render_stmts(m.body, 2, comments, counter)
        return lines

    def _comment_texts(self, insts: list[Instance], params: list[Param]) -> list[str]:
        per = []
        for inst in insts:
            per.append([c.shape for m in inst.methods for s in m.body for c in _stmt_comments(s)])
        ins = [inst.in_shape for inst in insts]
        return [_shape_comment([p[k] for p in per], ins, params) for k in range(len(per[0]))]

    def _def_lines(self, name: str, sig: list[str], ret: str) -> list[str]:
        one = f"{INDENT}def {name}({', '.join(sig)}) -> {ret}:"
        if len(one) <= WIDTH:
            return [one]
        return [f"{INDENT}def {name}(", *[f"{INDENT * 2}{s}," for s in sig], f"{INDENT}) -> {ret}:"]

    def _render_loss(self, aux: list[str]) -> list[str]:
        eps = literal(float(self.settings.label_smoothing))
        self.uses.add("F")
        lines = ["", "", f"LABEL_SMOOTHING = {eps}"]
        if aux:
            weights = DictE([(Lit(n), Lit(float(self.graph.aux_weights.get(n, 1.0)))) for n in aux])
            lines += render("AUX_WEIGHTS = ", weights, "", 0)
        ret = f"Tensor | {self.outputs_class}" if aux else "Tensor"
        lines += ["", "", f"def loss_fn(outputs: {ret}, target: Tensor) -> Tensor:"]
        ce = "F.cross_entropy({}, target, label_smoothing=eps)"
        if not aux:
            return lines + [f'{INDENT}"""Cross-entropy with label smoothing LABEL_SMOOTHING."""',
                            f"{INDENT}eps = LABEL_SMOOTHING", f"{INDENT}return {ce.format('outputs')}"]
        lines += [f'{INDENT}"""Label-smoothed cross-entropy of the main output plus AUX_WEIGHTS x each aux head\'s.',
                  "", f"{INDENT}In eval mode the model returns the main output alone and so does the loss.",
                  f'{INDENT}"""',
                  f"{INDENT}eps = LABEL_SMOOTHING",
                  f"{INDENT}if isinstance(outputs, Tensor):",
                  f"{INDENT * 2}return {ce.format('outputs')}",
                  f"{INDENT}loss = {ce.format('outputs.' + self.main_field)}",
                  f"{INDENT}for name, weight in AUX_WEIGHTS.items():",
                  f"{INDENT * 2}aux = getattr(outputs, name)",
                  f"{INDENT * 2}loss = loss + weight * {ce.format('aux')}"]
        return lines + [f"{INDENT}return loss"]

    def _render_init(self) -> list[str]:
        lines = ["", "", "def init_weights(model: nn.Module) -> None:",
                 f'{INDENT}"""Initialize parameters as the spec\'s ``init`` lines declare."""',
                 f"{INDENT}for m in model.modules():"]
        for k, rule in enumerate(self.settings.init):
            lines.append(f"{INDENT * 2}{'if' if k == 0 else 'elif'} isinstance(m, {INIT_TARGETS[rule.target]}):")
            body: list[str] = []
            if rule.func is not None:
                call = Call(Attr(Attr(Name("nn"), "init"), rule.func), [Attr(Name("m"), "weight")],
                            [(key, Lit(val)) for key, val in rule.kwargs.items()])
                if rule.target == "batchnorm":
                    body += [f"{INDENT * 3}if m.weight is not None:"] + render("", call, "", 4)
                else:
                    body += render("", call, "", 3)
            if rule.bias is not None:
                body += [f"{INDENT * 3}if m.bias is not None:",
                         f"{INDENT * 4}nn.init.constant_(m.bias, {literal(rule.bias)})"]
            lines += body or [f"{INDENT * 3}pass"]
        return lines

    # ---------------------------------------------------------------- driver
    def run(self) -> str:
        self.analyze()
        self.check_names()
        if self.diags.has_errors:
            raise CodegenError(self.diags.sorted())
        self.detect_list_mode()
        aux = [n for n in self.graph.outputs if n != "main"]
        self.main_field = next((f for f in ("logits", "main", "main_logits") if f not in aux), None) \
            or N.unique("main_logits", set(aux))
        self._name_variants_early()
        self.build()
        if self.diags.has_errors:
            raise CodegenError(self.diags.sorted())
        return self.source()

    def _name_variants_early(self) -> None:
        # the network and outputs class names are needed while rendering forward
        self.net_class = N.python_name(self.graph.name, N.GLOBALS | N.LOCALS)
        self.outputs_class = N.python_name(f"{self.net_class}Outputs", N.GLOBALS | N.LOCALS | {self.net_class})


@dataclass
class _Ctx:
    cls: str
    items: list
    values: list
    ins_of: list
    uses: dict
    var: dict
    returns: set


class _FeatureLists:
    """``feats = [x]; ...; feats.append(y)`` for list inputs that extend an earlier one."""

    def __init__(self, needs: list, var: dict, bound: dict, last_use: dict, fresh) -> None:
        self.needs, self.var, self.bound, self.last_use, self.fresh = needs, var, bound, last_use, fresh
        self.live: list[list] = []  # [name, content, pseudo value id]
        self.next_id = -2

    def _future(self, i: int, prefix: tuple) -> list[tuple]:
        return [n for n in self.needs[i + 1:] if n is not None and n[:len(prefix)] == prefix]

    def expr(self, i: int, pre: list) -> Expr:
        need = self.needs[i]
        for entry in self.live:
            name, content, pid = entry
            if self.last_use.get(pid, -1) < i or need[:len(content)] != content:
                continue
            if any(n[:len(need)] != need for n in self._future(i, content)):
                continue  # a later reader still needs the shorter list
            for v in need[len(content):]:
                pre.append(ExprStmt(Call(Attr(Name(name), "append"), [Name(self.var[v])])))
            entry[1] = need
            self._extend_life(entry, i)
            return Name(name)
        if any(len(n) > len(need) for n in self._future(i, need)):
            pid = self.next_id
            self.next_id -= 1
            self.last_use[pid] = i
            name = self.fresh("feats", i)
            self.bound[name] = pid
            pre.append(Assign(Name(name), ListE([Name(self.var[v]) for v in need])))
            entry = [name, need, pid]
            self.live.append(entry)
            self._extend_life(entry, i)
            return Name(name)
        return ListE([Name(self.var[v]) for v in need])

    def _extend_life(self, entry: list, i: int) -> None:
        later = [j for j in range(i + 1, len(self.needs))
                 if self.needs[j] is not None and self.needs[j][:len(entry[1])] == entry[1]]
        self.last_use[entry[2]] = max([i] + later)


@functools.lru_cache(maxsize=4096)
def _parse_call(src: str) -> tuple[str, tuple, tuple]:
    """``nn.Name(literal, ..., kw=literal)`` from the op registry -> (Name, args, kwargs)."""
    tree = ast.parse(src, mode="eval").body
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Attribute)
            and isinstance(tree.func.value, ast.Name) and tree.func.value.id == "nn"
            and N.is_identifier(tree.func.attr)):
        raise ExprError(f"unexpected torch emitter output: {src!r}")
    if any(kw.arg is None or not N.is_identifier(kw.arg) for kw in tree.keywords):
        raise ExprError(f"unexpected keyword in torch emitter output: {src!r}")
    return (tree.func.attr, tuple(ast.literal_eval(a) for a in tree.args),
            tuple((kw.arg, ast.literal_eval(kw.value)) for kw in tree.keywords))


def _sum(xs: list[Expr]) -> Expr:
    total = xs[0]
    for e in xs[1:]:
        total = BinOp(total, "+", e)
    return total


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _compact(v: Any) -> Any:
    if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1]:
        return v[0]
    return v


def _annotation(values: list) -> str:
    if all(isinstance(x, bool) for x in values):
        return "bool"
    if all(isinstance(x, int) and not isinstance(x, bool) for x in values):
        return "int"
    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values):
        return "float"
    if all(isinstance(x, str) for x in values):
        return "str"
    if all(isinstance(x, tuple) and len(x) == 2 and all(isinstance(y, int) for y in x) for x in values):
        return "tuple[int, int]"
    if all((isinstance(x, int) and not isinstance(x, bool))
           or (isinstance(x, tuple) and len(x) == 2 and all(isinstance(y, int) for y in x)) for x in values):
        return "int | tuple[int, int]"
    return ""


def _common_prefix(names: list[str]) -> str:
    if len(names) < 2:
        return ""
    p = names[0]
    for n in names[1:]:
        while not n.startswith(p):
            p = p[:-1]
    p = p.rstrip("_0123456789")
    p = _LABEL_SUFFIX.sub("", p)
    return p if len(p) >= 3 and N.IDENT.match(p) else ""


def _shape_comment(shapes: list[tuple], ins: list[tuple], params: list[Param]) -> str:
    """``N x C x H x W`` over a class's instances: numbers where they agree, else symbols
    (a constructor parameter's name for channels, ``H``/``W`` relative to the class input)."""
    dims = []
    for k in range(len(shapes[0])):
        vals = [s[k] for s in shapes]
        if all(v == vals[0] for v in vals):
            dims.append(str(vals[0]))
            continue
        if k == 0:
            match = next((p.name for p in params if p.values == vals), None)
            dims.append(match or "C")
            continue
        sym = "H" if k == 1 else "W"
        base = [s[k] if len(s) > k else None for s in ins]
        if vals == base:
            dims.append(sym)
            continue
        for f in (2, 3, 4):
            if all(b is not None and v in (b // f, -(-b // f)) for v, b in zip(vals, base)):  # noqa: B905
                dims.append(f"{sym}/{f}")
                break
        else:
            dims.append(sym + "'")
    return "N x " + " x ".join(dims)


#: Text that may appear verbatim in a comment or a docstring: printable ASCII without ``"`` or ``\``.
_PLAIN = re.compile(r'[ !#-\[\]-~]*\Z')


def _plain(text: str) -> str:
    """Spec-derived ``text`` (a network named after its file, a block, a module path) for a comment
    or a docstring: verbatim when it is plain, else escaped with ``ascii`` and ``"`` written
    ``\\x22``, so that no newline, backslash or quote can end the comment or docstring early."""
    if _PLAIN.match(text):
        return text
    return ascii(text).replace('"', "\\x22")


def _safe_literal(v: Any) -> str:
    try:
        text = literal(v)
    except ExprError:
        text = ascii(v)
    return text if text.isascii() and text.isprintable() else ascii(text)


def generate(graph: Graph, *, source_name: str = "", fold_bn: bool = False,
             settings: TrainingSettings | None = None, check: bool = True) -> str:
    """Python source for ``graph`` (raises :class:`CodegenError` with diagnostics).

    With ``check`` (the default) the text is parsed with ``ast.parse`` before it is returned;
    the runtime, which parses it anyway before executing it, passes ``check=False``.
    """
    gen = Generator(graph, source_name=source_name, fold_bn=fold_bn, settings=settings)
    src = gen.run()
    if check:
        check_source(src, source_name)  # the generated text must be valid Python before anyone sees it
    return src


#: Builtins generated code never calls; a reference to one means spec text leaked into code.
FORBIDDEN_NAMES = frozenset({"eval", "exec", "compile", "__import__", "open", "globals", "locals", "vars",
                             "breakpoint", "input", "setattr", "delattr", "exit", "quit", "help"})


def check_source(src: str, source_name: str = "") -> ast.Module:
    """Parse generated ``src`` and refuse anything a generator bug could let through: a syntax error,
    or a reference to a builtin such as ``eval`` or ``__import__`` (raises :class:`CodegenError`)."""
    loc = Loc(source_name or "<spec>", 1, 1)
    try:
        tree = ast.parse(src)
    except SyntaxError as exc:
        raise CodegenError([Diagnostic("E399", f"internal error: generated code does not parse: {exc.msg} "
                                       f"(generated line {exc.lineno})", loc)]) from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            raise CodegenError([Diagnostic("E399", f"internal error: generated code refers to {node.id!r} "
                                           f"(generated line {node.lineno})", loc)])
    return tree
