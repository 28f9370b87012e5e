"""Grouping block instances into classes (variants) and inferring constructor parameters.

Every instance is first rendered on its own with every literal a hole.  Instances of one block
whose code is identical up to hole values (same structure key, see :func:`.model.scan_statements`)
share a class; a hole whose value differs between them becomes a constructor parameter
(:func:`infer_params`), named ``in_channels``, after the spec argument it equals (or a small multiple
of, or a ``(v, v)`` pair of), or after its hint.  Children are grouped before their parents, so a
nested block's constructor call (:func:`expand_children`) can pass its own parameters, which may
in turn vary between the parent's instances.
"""

from __future__ import annotations

from typing import Any

from .. import names as N
from ..pyexpr import Attr, BinOp, Call, Expr, ExprError, Hole, Lit, Name, TupleE, literal
from . import naming
from .model import Instance, Param, Variant, scan_statements
from .op_dispatch import pairable
from .tree import ModuleTree


def group_instances(instances: dict[str, Instance], order: list[str]) -> list[Variant]:
    """Variants of the block instances in ``order`` (children before parents), in order of their
    first instance; sets each instance's ``key`` and ``variant`` (the index of its variant)."""
    by_key: dict[Any, Variant] = {}
    variants: list[Variant] = []

    def child_key(scope: str) -> int:
        return instances[scope].variant

    for path in order:
        inst = instances[path]
        tokens = scan_statements(inst, child_key)
        inst.key = (inst.block, inst.base, inst.list_mode, inst.needs_me, tuple(inst.bn_meta), tokens)
        v = by_key.get(inst.key)
        if v is None:
            v = by_key[inst.key] = Variant(inst.block or "", inst.key, [], index=len(variants))
            variants.append(v)
        v.instances.append(inst)
        inst.variant = v.index
    return variants


def expand_children(tree: ModuleTree, inst: Instance, instances: dict[str, Instance],
                    variants: list[Variant]) -> None:
    """Resolve the nested block constructors of ``inst``: ``Variant(a, b, c=..., ...)`` with a
    hole for each of the child's parameter values (the first two positional)."""
    for slot in inst.child_classes:
        if slot.resolved is not None:
            continue
        child = instances[slot.scope]
        cv = variants[child.variant]
        hint = naming.child_hint(tree, slot.scope)
        holes = [Hole(child.param_values[p.name], f"{hint}_{p.name}") for p in cv.params]
        kwargs: list[tuple[str, Expr]] = [(p.name, h) for p, h in zip(cv.params[2:], holes[2:])]  # noqa: B905
        if child.needs_me:
            kwargs.append(("memory_efficient", Name("memory_efficient")))
        slot.resolved = Call(Name(cv.name), holes[:2], kwargs)


def resolve_literals(inst: Instance) -> None:
    """Every hole of ``inst`` (the network class) is its literal value."""
    for h, _ in inst.holes():
        h.resolved = Lit(h.value)


def infer_params(v: Variant, class_names: set[str]) -> None:
    """Resolve the holes of variant ``v``'s instances: a literal where all instances agree, else a
    constructor parameter (or an expression of one); sets ``v.params`` and each instance's
    ``param_values``.  ``class_names``: the generated classes (parameters must not shadow them)."""
    per_inst = [i.holes() for i in v.instances]
    n = len(per_inst[0])
    if any(len(h) != n for h in per_inst):
        raise ExprError(f"instances of block {v.block} disagree on their literals")
    first = v.instances[0]
    taken = set(N.GLOBALS) | {"self", "memory_efficient"} | {a for a in first.attrs if N.IDENT.match(a)}
    taken |= class_names
    params: list[Param] = []
    cache: dict[tuple, Expr] = {}
    for j in range(n):
        holes = [h[j][0] for h in per_inst]
        vals = [h.value for h in holes]
        if _all_same(vals):
            for h in holes:
                h.resolved = Lit(vals[0])
            continue
        fwd = per_inst[0][j][1]
        ck = (tuple(literal(x) for x in vals), fwd)
        if ck not in cache:
            cache[ck] = _param_expr(vals, v, params, taken, holes[0].hint, fwd)
        for h in holes:
            h.resolved = cache[ck]
    rank = {"in_channels": -1, **{a: k for k, a in enumerate(first.args)}}
    params.sort(key=lambda p: (rank.get(p.origin, len(rank)), p.order))
    v.params = params
    for idx, inst in enumerate(v.instances):
        inst.param_values = {p.name: p.values[idx] for p in params}


def _all_same(vals: list) -> bool:
    """Do all values equal the first, type included (``1`` is not ``True`` nor ``1.0``)?"""
    a = vals[0]
    t = type(a)
    for x in vals[1:]:
        if type(x) is not t or not a == x:
            return False
    return True


def _param_expr(vals: list, v: Variant, params: list[Param], taken: set[str], hint: str, fwd: bool) -> Expr:
    """The expression standing for a varying hole: a parameter, ``(p, p)``, ``p * k`` or
    ``in_channels // k``; adds the parameter to ``params`` when it is new."""
    pair_ok = pairable(hint)
    insts = v.instances

    def get(origin: str, values: list, pyname: str) -> Param:
        for p in params:
            if p.origin == origin:
                p.forward |= fwd
                return p
        name = N.python_name(pyname, taken)
        taken.add(name)
        p = Param(name, values, annotation(values), fwd, origin, len(params))
        params.append(p)
        return p

    def ref(p: Param) -> Expr:
        return Attr(Name("self"), p.name) if fwd else Name(p.name)

    in_vec = [i.in_channels for i in insts]
    ints = all(_is_int(x) for x in vals)
    arg_vals = {a: [i.args.get(a) for i in insts] for a in insts[0].args}
    for a, avals in arg_vals.items():
        if all(_same(x, y) for x, y in zip(vals, avals)):  # noqa: B905
            return ref(get(a, avals, a))
    if ints and vals == in_vec:
        return ref(get("in_channels", in_vec, "in_channels"))
    for a, avals in arg_vals.items():
        if pair_ok and all((_is_int(y) and x == (y, y)) or (isinstance(y, tuple) and x == y)
                           for x, y in zip(vals, avals)):  # noqa: B905
            return ref(get(a, avals, a))  # the op accepts an int or a pair
        if all(_is_int(y) for y in avals) and all(x == (y, y) for x, y in zip(vals, avals)):  # noqa: B905
            p = get(a, avals, a)
            return TupleE([ref(p), ref(p)])
    if ints:
        for a, avals in arg_vals.items():
            if all(_is_int(y) and y > 0 for y in avals) and all(x % y == 0 for x, y in zip(vals, avals)):  # noqa: B905
                ks = {x // y for x, y in zip(vals, avals)}  # noqa: B905
                if len(ks) == 1 and (k := ks.pop()) >= 2:
                    return BinOp(ref(get(a, avals, a)), "*", Lit(k))
        if all(_is_int(c) and c > 0 and x > 0 and c % x == 0 for x, c in zip(vals, in_vec)):  # noqa: B905
            ks = {c // x for x, c in zip(vals, in_vec)}  # noqa: B905
            if len(ks) == 1 and (k := ks.pop()) >= 2:
                return BinOp(ref(get("in_channels", in_vec, "in_channels")), "//", Lit(k))
    return ref(get(f"@{len(params)}", vals, hint or "value"))


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def annotation(values: list) -> str:
    """The type annotation of a constructor parameter taking ``values`` ("" when there is none)."""
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
