"""Generated-code forms that come from the op registry, not from special cases in the generator.

An op's registry entry (:class:`archdsl.ops.OpSpec`) says how it appears in PyTorch: ``torch``, the
constructor of its module (``nn.GroupNorm(32, 256)`` or a helper class such as ``LayerNorm2d(96)``);
``functional``, the call applied to the input when it is not a module (an :class:`archdsl.ops.Fn`);
``parameter``, the value of a bare ``nn.Parameter`` attribute (layer scale); ``support``, the helper
definitions (:data:`archdsl.ops.SUPPORT`) the generated file must then contain.  This module turns
those descriptions into expression trees, with every literal a :class:`Hole` so that block
instances that differ only in values share a class.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

from ...ops import OPS, SUPPORT, TRAINING, Fn
from .. import names as N
from ..pyexpr import Attr, Call, Expr, ExprError, Hole, Lit, Name, Sub, TupleE

#: Prefix of a support definition's name in the generator's ``uses`` set.
SUPPORT_USE = "support:"


def fn_call(fn: Fn, x: Expr, hint: str, uses: set[str]) -> Expr:
    """``F.name(x, *args)`` / ``x.name(*args)`` / ``helper(x, *args)``, indexed when ``fn.index`` is set."""
    args = [_value(v, f"{hint}_arg{i}") for i, v in enumerate(fn.args)]
    kwargs = [(k, _value(v, f"{hint}_{k}")) for k, v in fn.kwargs]
    if fn.method:
        call: Expr = Call(Attr(x, fn.name), args, kwargs)
    else:
        call = Call(_callee(fn.name, uses), [x, *args], kwargs)
    if fn.index is not None:
        call = Sub(call, Hole(fn.index, f"{hint}_index"))
    return call


def _callee(name: str, uses: set[str]) -> Expr:
    module, _, attr = name.rpartition(".")
    if module:
        if module not in ("F", "torch"):
            raise ExprError(f"functional form {name!r} is not in F or torch")
        uses.add(module)
        return Attr(Name(module), attr)
    if name not in SUPPORT:
        raise ExprError(f"functional form {name!r} names no support definition")
    use_support(name, uses)
    return Name(name)


def _value(v: Any, hint: str) -> Expr:
    if v is TRAINING:
        return Attr(Name("self"), "training")
    return Hole(v, hint)


def parse_ctor(src: str) -> tuple[Expr, tuple, tuple]:
    """A registry constructor ``nn.Name(literal, ..., kw=literal)`` or ``Helper(...)`` (a name in
    :data:`SUPPORT`) -> (callee, positional values, keyword values)."""
    tree = ast.parse(src, mode="eval").body
    if not isinstance(tree, ast.Call):
        raise ExprError(f"unexpected torch emitter output: {src!r}")
    f = tree.func
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "nn" \
            and N.is_identifier(f.attr):
        callee: Expr = Attr(Name("nn"), f.attr)
    elif isinstance(f, ast.Name) and f.id in SUPPORT:
        callee = Name(f.id)
    else:
        raise ExprError(f"unexpected torch emitter output: {src!r}")
    if any(kw.arg is None or not N.is_identifier(kw.arg) for kw in tree.keywords):
        raise ExprError(f"unexpected keyword in torch emitter output: {src!r}")
    return (callee, tuple(ast.literal_eval(a) for a in tree.args),
            tuple((kw.arg, ast.literal_eval(kw.value)) for kw in tree.keywords))


def callee_name(callee: Expr) -> str:
    """``nn.Conv2d`` or ``LayerNorm2d``: the key of a constructor's positional-argument names."""
    return f"nn.{callee.attr}" if isinstance(callee, Attr) else callee.id


def parameter_value(op: str, args: Mapping, ins: Sequence[tuple], hint: str) -> Expr:
    """``nn.Parameter(torch.full((C, 1, 1), init))`` for a parameter op, its sizes and value as holes."""
    tree = ast.parse(OPS[op].parameter(args, ins), mode="eval").body
    return _literal_tree(tree, hint)


def _literal_tree(node: ast.expr, hint: str) -> Expr:
    """An expression of ``nn.``/``torch.`` calls over literals, every number a hole."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
            isinstance(node.func.value, ast.Name) and node.func.value.id in ("nn", "torch") and not node.keywords:
        return Call(Attr(Name(node.func.value.id), node.func.attr),
                    [_literal_tree(a, hint) for a in node.args])
    if isinstance(node, ast.Tuple):
        return TupleE([_literal_tree(e, hint) for e in node.elts])
    value = ast.literal_eval(node)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Hole(value, hint if isinstance(value, float) else f"{hint}_size")
    return Lit(value)


def use_support(name: str, uses: set[str]) -> None:
    """Record that the generated file needs support definition ``name``, the definitions it calls,
    and ``torch.nn.functional`` when it uses it."""
    if SUPPORT_USE + name in uses:
        return
    uses.add(SUPPORT_USE + name)
    src = SUPPORT[name]
    if "F." in src:
        uses.add("F")
    for other in SUPPORT:
        if other != name and f"{other}(" in src:
            use_support(other, uses)


def support_source(uses: set[str]) -> list[str]:
    """The support definitions in ``uses``, in :data:`SUPPORT` order (a class after the function it
    calls), as source lines."""
    out: list[str] = []
    for name, src in SUPPORT.items():
        if SUPPORT_USE + name in uses:
            out += ["", ""] + src.strip("\n").splitlines()
    return out
