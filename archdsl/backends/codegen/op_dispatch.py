"""Everything the generator does differently per op, in one place.

* which ops are always modules (:data:`STATEFUL`), may be overwritten in place
  (:data:`SAFE_PRODUCERS`), run in place (:data:`INPLACE_OPS`) or join several inputs
  (:data:`MERGE_OPS`);
* :func:`module_ctor`: the ``nn.X(...)`` (or support class) constructor of an op module, from the
  op registry's torch emitter, every literal a :class:`Hole`;
* :func:`functional`: the functional form (``F.relu(x)``...) of a parameter-free op that is not a
  module: the registry's ``functional`` entry when it has one (see :mod:`.forms`), else the forms
  below;
* :func:`reuses_first_input` and :func:`step_statement`: the forward statement of one step (block
  call, ``torch.cat``, ``+`` / ``+=``, scaling, module call or functional call).

Adding an op: give it a registry entry (``archdsl/ops.py``) with its ``torch`` constructor, its
``functional`` form (when it can be anonymous and parameter-free), or its ``parameter`` value (a bare
``nn.Parameter`` such as layer scale), and any ``support`` definitions; nothing here changes unless
it is a new kind of merge (a forward statement that is neither a module nor a functional call).  Variable naming
(:mod:`.naming`) calls the first input of an ``add`` "out" and the others "identity".
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from ...ops import OPS
from .. import names as N
from ..pyexpr import Attr, BinOp, Call, Expr, ExprError, Hole, ListE, Lit, Name
from .forms import callee_name, fn_call, parameter_value, parse_ctor, use_support
from .model import Assign, AugAdd, Stmt

if TYPE_CHECKING:
    from .emit import Emitter
    from .tree import Item, ModuleTree

#: Ops whose modules hold parameters or buffers: always modules.
STATEFUL = frozenset(name for name, spec in OPS.items() if spec.stateful)
#: Ops that are a bare ``nn.Parameter`` of the enclosing module (layer scale), not a module.
PARAMETER_OPS = frozenset(name for name, spec in OPS.items() if spec.parameter is not None)
#: Producers whose output may be overwritten in place: fresh tensors whose backward needs neither
#: their output nor (for the merges) their inputs' storage.
SAFE_PRODUCERS = frozenset({"conv2d", "batchnorm", "linear", "add", "concat", "scale", "maxpool", "avgpool",
                            "adaptive_avgpool", "adaptive_maxpool", "global_avgpool", "global_maxpool"})
#: Activations that can run in place, and the name of their flag.
INPLACE_OPS = frozenset({"relu", "relu6", "silu"})
#: Ops that join several inputs; a single-reader chain that ends in one names its values after it.
MERGE_OPS = frozenset({"concat", "add", "mul"})

#: Names of the positional constructor arguments of the modules the torch emitters produce.
POSITIONAL_NAMES = {
    "nn.Conv2d": ("in_channels", "out_channels"),
    "nn.Linear": ("in_features", "out_features"),
    "nn.BatchNorm2d": ("num_features",),
    "nn.BatchNorm1d": ("num_features",),
    "nn.LocalResponseNorm": ("size",),
    "nn.AdaptiveAvgPool2d": ("output_size",),
    "nn.AdaptiveMaxPool2d": ("output_size",),
    "nn.Flatten": ("start_dim",),
    "nn.LayerNorm": ("normalized_shape",),
    "LayerNorm2d": ("num_channels",),
    "nn.GroupNorm": ("num_groups", "num_channels"),
    "nn.ChannelShuffle": ("groups",),
    "StochasticDepth": ("p", "mode"),
    "Permute": ("dims",),
    "Chunk": ("chunks", "index"),
    "Split": ("sizes", "index"),
    "PadChannels": ("before", "after"),
}
#: Constructor / functional arguments that accept an int or an (h, w) pair.
PAIRABLE = frozenset({"stride", "padding", "dilation"})


def pairable(hint: str) -> bool:
    """Does the argument a hole hint names (``conv1_stride``) accept an int for an (h, w) pair?"""
    return hint.rsplit("_", 1)[-1] in PAIRABLE or hint.endswith("_kernel_size") or hint.endswith("_output_size")


# ------------------------------------------------------------------------------------ modules


def module_ctor(tree: ModuleTree, nid: int, uses: set[str]) -> Expr:
    """The constructor call of an op module, with a hole for every literal; records the support
    definitions it needs in ``uses``."""
    d = tree.nodes[nid]
    op = d["op"]
    args = dict(d["args"])
    if op in INPLACE_OPS:
        args["inplace"] = tree.inplace_ok(nid)
    if nid in tree.folded_convs:
        args["bias"] = True
    ins = [tree.nodes[p]["shape"] for p in tree.ins[nid]]
    callee, pos_vals, pos_names, kw_vals = _ctor_template(OPS[op].torch(args, ins))
    if isinstance(callee, Name):
        use_support(callee.id, uses)
    prefix = _label(tree, nid) + "_"
    return Call(callee, [Hole(v, prefix + what) for v, what in zip(pos_vals, pos_names)],  # noqa: B905
                [(k, Hole(v, prefix + k)) for k, v in kw_vals])


@functools.lru_cache(maxsize=4096)
def _ctor_template(src: str) -> tuple[Expr, tuple, tuple[str, ...], tuple]:
    """(callee, positional values, their hint suffixes, keyword values) of a registry constructor."""
    callee, pos_vals, kw_vals = parse_ctor(src)
    pos = POSITIONAL_NAMES.get(callee_name(callee), ())
    names = tuple(pos[i] if i < len(pos) else f"arg{i}" for i in range(len(pos_vals)))
    return callee, pos_vals, names, kw_vals


def parameter_ctor(tree: ModuleTree, nid: int) -> Expr:
    """``nn.Parameter(torch.full(...))``: the attribute value of a parameter op (layer scale)."""
    d = tree.nodes[nid]
    ins = [tree.nodes[p]["shape"] for p in tree.ins[nid]]
    return parameter_value(d["op"], d["args"], ins, _label(tree, nid))


def _label(tree: ModuleTree, nid: int) -> str:
    leaf = tree.leaf(tree.nodes[nid]["path"])
    return _python_name(leaf) if not leaf.isdigit() else tree.nodes[nid]["op"]


#: :func:`names.python_name` of a label (memoized: labels repeat across instances).
_python_name = functools.lru_cache(maxsize=4096)(N.python_name)


# ------------------------------------------------------------------------------------ functional forms


def functional(tree: ModuleTree, nid: int, x: Expr, inplace: bool, hint: str, uses: set[str]) -> Expr:
    """Functional form of a parameter-free op applied to ``x``; records the imports in ``uses``."""
    d = tree.nodes[nid]
    a, op = d["args"], d["op"]
    spec = OPS[op]
    if spec.functional is not None:
        return fn_call(spec.functional(a, [tree.nodes[p]["shape"] for p in tree.ins[nid]]), x, hint, uses)

    def h(v: Any, what: str) -> Hole:
        return Hole(_compact(v), f"{hint}_{what}")

    def fn(name: str, *args: Expr, **kw: Expr) -> Call:
        uses.add("F")
        return Call(Attr(Name("F"), name), list(args), list(kw.items()))

    if op in INPLACE_OPS:
        return fn(op, x, inplace=Lit(True)) if inplace else fn(op, x)
    if op == "leaky_relu":
        return fn("leaky_relu", x, h(a["negative_slope"], "negative_slope"))
    if op in ("sigmoid", "tanh"):
        return Call(Attr(Name("torch"), op), [x])
    if op == "gelu":
        return fn("gelu", x, approximate=Lit(a["approximate"])) if a["approximate"] != "none" else fn("gelu", x)
    if op == "hardswish":
        return fn(op, x)
    if op in ("maxpool", "avgpool"):
        return _pool(a, op, x, h, fn)
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        name = "adaptive_avg_pool2d" if op == "adaptive_avgpool" else "adaptive_max_pool2d"
        return fn(name, x, h(a["size"], "output_size"))
    if op in ("global_avgpool", "global_maxpool"):
        return fn("adaptive_avg_pool2d" if op == "global_avgpool" else "adaptive_max_pool2d", x, Lit(1))
    if op == "flatten":
        uses.add("torch")
        return Call(Attr(Name("torch"), "flatten"), [x, Lit(1)])
    if op in ("dropout", "dropout2d"):
        return fn(op, x, p=h(a["p"], "p"), training=Attr(Name("self"), "training"))
    if op == "lrn":
        return fn("local_response_norm", x, h(a["size"], "size"), alpha=h(a["alpha"], "alpha"),
                  beta=h(a["beta"], "beta"), k=h(a["k"], "k"))
    raise ExprError(f"no functional form for op {op}")


def _pool(a: dict, op: str, x: Expr, h, fn) -> Call:
    """``F.max_pool2d`` / ``F.avg_pool2d`` with the arguments that differ from the defaults."""
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


def _compact(v: Any) -> Any:
    if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1]:
        return v[0]
    return v


# ------------------------------------------------------------------------------------ forward steps


def reuses_first_input(tree: ModuleTree, node: int, op: str, ins: list[int], input_val: int | None) -> bool | None:
    """Op-specific answer to "may this step's result take over its first input's variable?":
    never for a concat, for an add when it can accumulate in place (``+=``); None when the
    generic rule applies (a single input that this step reads last)."""
    if op in ("concat", "mul"):
        return False
    if op == "add":
        return _add_inplace(tree, node, ins[0], input_val)
    return None


def _add_inplace(tree: ModuleTree, node: int, first: int, input_val: int | None) -> bool:
    """May ``first += rest`` compute this add?  Only on a fresh tensor of this class that no one
    else reads and whose producer's backward does not need it."""
    if first == input_val or first < 0 or tree.opof[first] not in SAFE_PRODUCERS:
        return False
    if tree.eff_consumers(first) != {node}:
        return False
    cls = tree.class_of(node)
    return not cls or first in tree.region[cls]


def step_statement(em: Emitter, cls: str, item: Item, name: str, xs: list[Expr], seq: Expr | None,
                   continued: bool) -> Stmt:
    """The statement computing forward step ``item`` of class ``cls`` into variable ``name``.

    ``xs`` are its input variables, ``seq`` the list expression of a DenseNet feature list (None:
    ``[a, b, ...]`` of ``xs``), ``continued`` whether ``name`` is already its first input's.
    """
    tree = em.tree
    kind, ref = item
    if kind == "call":
        arg = (seq if seq is not None else ListE(xs)) if ref in tree.list_mode else xs[0]
        return Assign(em.name(name), Call(em.access(cls, ref), [arg]))
    op = tree.opof[ref]
    if op == "concat":
        em.uses.add("torch")
        return Assign(em.name(name), Call(Attr(Name("torch"), "cat"), [seq if seq is not None else ListE(xs), Lit(1)]))
    if op == "add":
        return AugAdd(em.name(name), _sum(xs[1:])) if continued else Assign(em.name(name), _sum(xs))
    if op == "scale":
        factor = Hole(float(tree.nodes[ref]["args"]["factor"]), "scale")
        return Assign(Name(name), BinOp(xs[0], "*", factor))
    if op == "mul":  # gate: the input times the gate computed from it
        return Assign(Name(name), BinOp(xs[0], "*", xs[1]))
    if tree.is_parameter(ref):
        return Assign(Name(name), BinOp(_parameter_access(em, cls, tree.nodes[ref]["path"]), "*", xs[0]))
    if tree.is_module(ref):
        return Assign(em.name(name), Call(em.access(cls, tree.nodes[ref]["path"]), [xs[0]]))
    inplace = op in INPLACE_OPS and tree.inplace_ok(ref)
    return Assign(Name(name), functional(tree, ref, xs[0], inplace, em.hint(cls, ref), em.uses))


def _parameter_access(em: Emitter, cls: str, path: str) -> Expr:
    """``self.layer_scale`` / ``getattr(self.block, "1")``: a parameter is an attribute of its module,
    never an item of the ``nn.ModuleDict`` or ``nn.Sequential`` holding it."""
    parts = em.tree.rel(cls, path)
    holder = em.access(cls, path.rsplit(".", 1)[0]) if len(parts) > 1 else Name("self")
    if N.attribute_ok(parts[-1]):
        return Attr(holder, parts[-1])
    return Call(Name("getattr"), [holder, Lit(parts[-1])])


def _sum(xs: list[Expr]) -> Expr:
    total = xs[0]
    for e in xs[1:]:
        total = BinOp(total, "+", e)
    return total


__all__ = ["STATEFUL", "PARAMETER_OPS", "SAFE_PRODUCERS", "INPLACE_OPS", "MERGE_OPS", "POSITIONAL_NAMES", "PAIRABLE",
           "pairable", "module_ctor", "parameter_ctor", "functional", "reuses_first_input",
           "step_statement"]
