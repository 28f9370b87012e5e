"""``archdsl transform --factorize``: n x n convs -> stacked 3x3 or 1 x n + n x 1, at the AST level.

How a conv is rewritten depends on the line that fixed its kernel size (its *site*):

* a bare ``conv2d(out, 5, padding = 2)`` with a literal kernel: the conv is replaced by the factors,
  with copies of the spec's own unit (the batchnorm/activation calls that follow the conv; a ``relu``
  when none follows) between them -> conv-BN-ReLU-conv;
* a call of a *unit block* (a block whose body is one ``conv2d`` with ``out``/kernel/``padding``
  parameters followed by BN/activations, like ``BasicConv2d``) with a literal kernel: the call is
  replaced by one call of the same block per factor, so the block's BN and ReLU sit between them.

Sites inside a block definition are shared by every instance of that block.  When every instance
gets the same rewrite, the definition is rewritten (the intermediate width becomes a ``let`` of the
block's parameters when the widths come from them, else a literal).  When instances differ
(asymmetric factorization applies only on medium grids, so a block used on 28x28, 14x14 and 7x7 grids
needs it for the 14x14 instances only), the block is cloned per variant, named for what it does
(``InceptionAsym``; the variant left as written keeps the name), and the calls of the instances that
need the variant are retargeted -- the per-grid module types of Inception v3.
Where neither is possible the site is left alone and a note says why (one per site); ``rewritable``
and ``left_alone`` answer, for an analysed spec and without elaborating anything, which convs a
``--factorize`` kind would rewrite and why the others are left alone -- what the R3xx rules need to
name only commands that apply.

The rewritten AST is elaborated again before anything is written: every rewritten node must keep
its output shape and receptive field, every other node its shape.  A site whose rewrite does not
verify is left alone (its reason: what failed) and the rest is planned and verified again, so it
never blocks the other sites; ``rewritable`` only plans, so it cannot foresee such a site.  The output is the spec's own
text with the rewritten calls and blocks spliced in (``splice``), so untouched lines and every
comment stay as written; it must parse back to the rewritten AST and analyse to the same totals.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import ast as A
from ..diagnostics import Diagnostic, DiagnosticError, Loc, SourceCache
from ..expr import evaluate
from ..ops import OPS, PUBLIC_OPS
from ..rules.factorization import ASYM, STACK, Plan, plan, stack_qualifies
from ..rules.graphctx import count, macs, pct
from .splice import BlockEdit, Edits, Source, SpliceError, splice

SYNTH = "<transform>"
UNIT_OPS = frozenset(n for n, s in PUBLIC_OPS.items() if s.family in ("norm", "activation"))
GATE_ACTS = frozenset(("sigmoid", "hardsigmoid"))
CONV_PARAMS = OPS["conv2d"].param_names


class TransformError(Exception):
    """A bad option or a rewrite that failed verification."""


# ---------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Kinds:
    """Which factorizations to apply: stacked 3x3 for these kernel sizes; asymmetric (``asym``) for odd
    n x n from 5 on medium grids, from 3 too with ``asym3``."""

    sizes: frozenset[int]
    asym: bool
    asym3: bool = False

    @property
    def asym_min(self) -> int:
        """The smallest kernel ``asym`` rewrites."""
        return 3 if self.asym3 else 5


def parse_kinds(text: str | None) -> Kinds:
    """``"5x5,7x7,asym"`` -> Kinds (``asym3``: asymmetric for 3x3 convs too)."""
    if not text:
        raise TransformError("nothing to do: pass --factorize[=5x5,7x7,asym]")
    sizes, asym, asym3 = set(), False, False
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if part in ("asym", "asym3"):
            asym, asym3 = True, asym3 or part == "asym3"
            continue
        a, sep, b = part.partition("x")
        if not sep or not a.isdigit() or a != b or int(a) < 5 or int(a) % 2 == 0:
            raise TransformError(f"unknown factorization {part!r}: use NxN with odd N >= 5 (5x5, 7x7), asym "
                                 f"or asym3")
        sizes.add(int(a))
    return Kinds(frozenset(sizes), asym, asym3)


def describe_kinds(kinds: Kinds, grid: tuple[int, int]) -> str:
    """What the kinds rewrite, in words (for "nothing to rewrite")."""
    parts = []
    if kinds.sizes:
        sizes = " or ".join(f"{n}x{n}" for n in sorted(kinds.sizes))
        parts.append(f"a {sizes} conv with stride 1, dilation 1, groups 1 (stacked 3x3)")
    if kinds.asym:
        parts.append(f"an odd n x n conv, n >= {kinds.asym_min}, with stride 1, dilation 1, groups 1, on an input "
                     f"grid within {grid[0]}..{grid[1]} (asym)")
    return "; ".join(parts)


def parse_grid(text: str) -> tuple[int, int]:
    """``"12..20"`` (also ``12-20``, ``12,20``) -> (12, 20)."""
    for sep in ("..", "-", ","):
        if sep in text:
            lo, _, hi = text.partition(sep)
            if lo.strip().isdigit() and hi.strip().isdigit() and 0 < int(lo) <= int(hi):
                return int(lo), int(hi)
    raise TransformError(f"--grid expects LO..HI such as 12..20, got {text!r}")


# ---------------------------------------------------------------------------------- AST index


@dataclass
class CallInfo:
    """Where a Call sits: its owning block (None = the network body) and the file."""

    call: A.Call
    owner: str | None
    file: str


def _index_calls(spec: A.SpecFile, blocks: dict[str, Any]) -> dict[Loc, CallInfo]:
    out: dict[Loc, CallInfo] = {}
    for el in A.iter_elements(spec.body):
        if isinstance(el, A.Call):
            out[el.loc] = CallInfo(el, None, el.loc.file)
    for name, bdef in blocks.items():
        for el in A.iter_elements(bdef.block.body):
            if isinstance(el, A.Call):
                out.setdefault(el.loc, CallInfo(el, name, el.loc.file))
    return out


def _is_literal(e: A.Expr) -> bool:
    if isinstance(e, A.Num):
        return True
    return isinstance(e, A.ListExpr) and all(isinstance(x, A.Num) for x in e.items)


def _arg(call: A.Call, names: Sequence[str], name: str) -> tuple[int, A.Arg] | None:
    """The argument bound to parameter ``name`` (positional or keyword), with its index in ``call.args``."""
    pos = 0
    for i, a in enumerate(call.args):
        if a.name is None:
            if pos < len(names) and names[pos] == name:
                return i, a
            pos += 1
        elif a.name == name:
            return i, a
    return None


@dataclass(frozen=True)
class Unit:
    """A unit block: one conv2d driven by the block's parameters, then BN/activations."""

    name: str
    params: tuple[str, ...]
    out_param: str
    kernel_param: str
    padding_param: str | None
    padding_default: Any


def _unit(block: A.Block, env: dict) -> Unit | None:
    elems: list[A.Element] = []
    for st in block.body:
        if not isinstance(st, A.Chain):
            return None
        elems.extend(st.elements)
    if not elems or not all(isinstance(e, A.Call) for e in elems):
        return None
    conv, rest = elems[0], elems[1:]
    if conv.name != "conv2d" or any(e.name not in UNIT_OPS for e in rest):
        return None
    params = tuple(p.name for p in block.params)
    out = _arg(conv, CONV_PARAMS, "out")
    ker = _arg(conv, CONV_PARAMS, "kernel")
    pad = _arg(conv, CONV_PARAMS, "padding")
    if out is None or ker is None or not isinstance(out[1].value, A.Name) or not isinstance(ker[1].value, A.Name):
        return None
    if out[1].value.id not in params or ker[1].value.id not in params:
        return None
    pad_param, pad_default = None, 0
    if pad is not None:
        v = pad[1].value
        if isinstance(v, A.Name) and v.id in params:
            pad_param = v.id
            p = next(p for p in block.params if p.name == v.id)
            try:
                pad_default = evaluate(p.default, env) if p.default is not None else None
            except DiagnosticError:
                return None
        elif isinstance(v, A.Str) and v.value == "same":
            pad_default = "same"
        else:
            return None
    return Unit(block.name, params, out[1].value.id, ker[1].value.id, pad_param, pad_default)


# ---------------------------------------------------------------------------------- planning


@dataclass
class Instance:
    """One conv node of the analysed graph and what it should become."""

    node: int
    mode: str | None
    plan: Plan | None
    owner_instance: str | None      # path of the enclosing instance of the site's owner block
    elem_scope: str | None          # the unit instance's scope path (unit sites)


@dataclass
class Site:
    """A Call that fixes a conv's kernel: a bare conv2d or a unit-block call."""

    loc: Loc
    kind: str                       # "conv" or "unit"
    call: A.Call
    owner: str | None
    unit: Unit | None
    instances: list[Instance] = field(default_factory=list)


@dataclass
class Rewrite:
    """One rewritten instance, for the report (``path``: the unit's scope or the conv; ``conv_path``:
    the conv node's path, as diagnostics show it)."""

    path: str
    mode: str
    kernel: tuple[int, int]
    factors: list[str]
    site: Loc
    params_before: int = 0
    params_after: int = 0
    macs_before: int = 0
    macs_after: int = 0
    conv_path: str = ""


@dataclass
class Result:
    """What ``factorize`` did; ``left``: conv path -> why a qualifying conv was left alone."""

    spec: A.SpecFile
    rewrites: list[Rewrite]
    notes: list[str]
    before: Any = None
    after: Any = None
    left: dict[str, str] = field(default_factory=dict)
    edits: Edits = field(default_factory=Edits)
    what: str = ""


# ---------------------------------------------------------------------------------- reasons

_LET = "to let `archdsl transform` rewrite it"


def _why_expression() -> str:
    return f"its kernel size comes from an expression; write it as a literal {_LET}"


def _why_not_unit(block: str) -> str:
    return (f"its kernel size is a parameter of block {block}, which is not a conv unit (one conv2d, then "
            f"batchnorm/activations); write the kernel as a literal in {block} {_LET}")


def _why_unit_call(block: str) -> str:
    return f"its kernel size comes from an expression in the call of {block}; write it as a literal {_LET}"


def _why_imported(site: Loc) -> str:
    return f"defined in {site.file}:{site.line} (an imported file); copy the block into the spec {_LET}"


def _why_aux() -> str:
    return (f"it is an aux head's whole element and cannot become a chain; wrap it in a group, "
            f"`aux name: {{ conv2d(...) }}`, {_LET}")


def _why_narrow(k: int, cin: int, cout: int, mid: int, least: int) -> str:
    return (f"it has {min(cin, cout)} channel{'s' if min(cin, cout) != 1 else ''} on one side (fewer than {least}): "
            f"its factors would meet in a {mid}-channel bottleneck, not an equivalent of the {k}x{k} conv (the "
            f"rules do not suggest it either); factorize it by hand if you want it anyway")


def _why_unverified(problem: str) -> str:
    return f"its rewrite did not verify ({problem}); rewrite it by hand"


def _why_mixed() -> str:
    return ("its instances need different rewrites (different grids or widths); write them as separate calls "
            f"{_LET}")


def _why_unclonable(owner: str) -> str:
    return (f"the instances of block {owner} need different rewrites, and a clone of the block needs every call of "
            f"{owner} in the spec, each making instances of one variant; call it once per variant {_LET}")


def _why_mid(reason: str) -> str:
    return f"{reason}; rewrite it by hand"


_WHY_UNKNOWN = "left alone"


@dataclass
class _Book:
    """Which conv nodes qualify (node -> mode) and why the ones left alone are (node -> (site, reason))."""

    qualifying: dict[int, str] = field(default_factory=dict)
    left: dict[int, tuple[Loc, str]] = field(default_factory=dict)

    def leave(self, insts: Iterable[Instance], site: Loc, reason: str) -> None:
        """Record ``reason`` for the qualifying instances (the first reason given wins)."""
        for i in insts:
            if i.mode is not None:
                self.left.setdefault(i.node, (site, reason))


def _owner_instance(graph, path: str, block: str | None) -> str | None:
    if block is None:
        return None
    p = path
    while "." in p:
        p = p.rsplit(".", 1)[0]
        info = graph.scopes.get(p)
        if info is not None and info.kind == "block" and info.block == block:
            return p
    return None


def _mode(kinds: Kinds, args: dict, ins: tuple | None, out: tuple | None, grid: tuple[int, int]) -> str | None:
    """The rewrite a conv qualifies for: asym on medium grids (the R302 domain, from ``asym_min``), else
    stacked 3x3 (R301) for the requested sizes."""
    if kinds.asym and _asym_ok(args, ins, out, grid, kinds.asym_min):
        return ASYM
    if stack_qualifies(args, ins, out, set(kinds.sizes)):
        return STACK
    return None


def _asym_ok(args: dict, ins: tuple | None, out: tuple | None, grid: tuple[int, int], min_k: int) -> bool:
    """Odd n x n (n >= ``min_k``), stride 1, undilated, ungrouped, input grid within ``grid``."""
    if ins is None or out is None or len(ins) != 3:
        return False
    kh, kw = args["kernel"]
    if kh != kw or kh < min_k or kh % 2 == 0:
        return False
    if args["stride"] != (1, 1) or args["dilation"] != (1, 1) or args["groups"] != 1:
        return False
    return grid[0] <= ins[1] <= grid[1] and grid[0] <= ins[2] <= grid[1]


def _aux_heads(stmts: Sequence[A.Stmt], out: set[Loc]) -> set[Loc]:
    """Locations of the calls that are an ``aux`` statement's own element (they cannot become a chain)."""
    for st in stmts:
        if isinstance(st, A.Aux):
            if isinstance(st.element, A.Call):
                out.add(st.element.loc)
            for body in A.element_bodies(st.element):
                _aux_heads(body, out)
        elif isinstance(st, A.If):
            _aux_heads(st.then, out)
            _aux_heads(st.orelse or (), out)
        elif isinstance(st, A.Chain):
            for el in st.elements:
                for body in A.element_bodies(el):
                    _aux_heads(body, out)
    return out


def _site_of(res, data: dict, calls: dict[Loc, CallInfo], units: dict[str, Unit | None]
             ) -> tuple[Loc, str, Unit | None, str | None] | str:
    """The call fixing a conv's kernel: (location, "conv" or "unit", the unit, the unit instance's
    scope); else why there is none."""
    info = calls.get(data["loc"])
    if info is None:
        return _why_expression()
    ker = _arg(info.call, CONV_PARAMS, "kernel")
    if ker is not None and _is_literal(ker[1].value):
        return data["loc"], "conv", None, None
    scope = res.graph.scopes.get(data["scope"])
    if scope is None or scope.kind != "block" or scope.block not in res.blocks:
        return _why_expression()
    if scope.block not in units:
        bdef = res.blocks[scope.block]
        units[scope.block] = _unit(bdef.block, dict(bdef.env))
    unit = units[scope.block]
    ucall = calls.get(scope.loc) if scope.loc is not None else None
    if unit is None or ucall is None:
        return _why_not_unit(scope.block)
    uk = _arg(ucall.call, unit.params, unit.kernel_param)
    if uk is None or not _is_literal(uk[1].value):
        return _why_unit_call(scope.block)
    return scope.loc, "unit", unit, scope.path


def _collect_sites(res, kinds: Kinds, grid: tuple[int, int], book: _Book,
                   skip: dict[Loc, str] | None = None) -> dict[Loc, Site]:
    """The sites of the qualifying convs, each with its instances; ``skip``: site location -> why it is
    left alone (sites whose rewrite did not verify)."""
    from ..rules.checks.factorize import MIN_FACTOR_CHANNELS

    skip = skip or {}
    graph, main_file = res.graph, res.file
    calls = _index_calls(res.spec, res.blocks)
    heads = _aux_heads(res.spec.body, set())
    for bdef in res.blocks.values():
        _aux_heads(bdef.block.body, heads)
    units: dict[str, Unit | None] = {}
    sites: dict[Loc, Site] = {}
    for n, data in graph.g.nodes(data=True):
        if data["op"] != "conv2d" or data["shape"] is None:
            continue
        preds = graph.inputs(n)
        ins = graph.node(preds[0])["shape"] if preds else None
        a, out = data["args"], data["shape"]
        k = a["kernel"]
        if k[0] != k[1] or k[0] < 3:
            continue   # never a candidate: no site needed
        mode = _mode(kinds, a, ins, out, grid)
        if mode is not None:
            book.qualifying[n] = mode
        inst = Instance(n, mode, plan(mode, a, ins, out) if mode is not None else None, None, None)
        if inst.plan is not None and min(ins[0], out[0]) < MIN_FACTOR_CHANNELS:
            # a 1-channel attention map, a conv on the raw image: the rules' domain leaves them out too; the
            # instance stays in its site as one needing no rewrite (a block's other instances may need one)
            book.leave([inst], data["loc"], _why_narrow(k[0], ins[0], out[0], inst.plan.mid, MIN_FACTOR_CHANNELS))
            inst = Instance(n, None, None, None, None)
        found = _site_of(res, data, calls, units)
        if isinstance(found, str):
            book.leave([inst], data["loc"], found)
            continue
        site_loc, kind, unit, elem_scope = found
        site_info = calls[site_loc]
        if site_info.file != main_file:
            book.leave([inst], site_loc, _why_imported(site_loc))
            continue
        if site_loc in heads:
            book.leave([inst], site_loc, _why_aux())
            continue
        if site_loc in skip:
            book.leave([inst], site_loc, skip[site_loc])
            continue
        site = sites.get(site_loc)
        if site is None:
            site = sites[site_loc] = Site(site_loc, kind, site_info.call, site_info.owner, unit)
        inst.owner_instance = _owner_instance(graph, data["path"], site.owner)
        inst.elem_scope = elem_scope
        site.instances.append(inst)
    return sites


def _top_variant(ss: list[Site], book: _Book) -> list[tuple[dict, list[str]]]:
    """The network body's one variant: each site's mode, None where its instances disagree."""
    modes: dict[Loc, str | None] = {}
    for s in ss:
        ms = {i.mode for i in s.instances}
        if len(ms) == 1:
            modes[s.loc] = ms.pop()
        else:
            modes[s.loc] = None
            book.leave(s.instances, s.loc, _why_mixed())
    return [(modes, [])]


def _variants(res, sites: dict[Loc, Site], book: _Book) -> dict[str | None, list[tuple[dict, list[str]]]]:
    """Per owner block: [(site loc -> mode for this variant, owner-instance paths using it)].

    The first variant keeps the block's name; the others become clones.  Top-level sites (owner None)
    get one variant.
    """
    by_owner: dict[str | None, list[Site]] = {}
    for s in sites.values():
        by_owner.setdefault(s.owner, []).append(s)
    out: dict[str | None, list[tuple[dict, list[str]]]] = {}
    for owner, ss in by_owner.items():
        ss.sort(key=lambda s: (s.loc.line, s.loc.col))
        out[owner] = _top_variant(ss, book) if owner is None else _block_variants(res, owner, ss, book)
    return out


def _block_variants(res, owner: str, ss: list[Site], book: _Book) -> list[tuple[dict, list[str]]]:
    """The variants of one block: instances grouped by the rewrites they need, merged where a call
    cannot be retargeted to a clone."""
    graph = res.graph
    vec: dict[str, dict[Loc, str | None]] = {}
    order: list[str] = []
    mixed: set[tuple[str, Loc]] = set()
    for s in ss:
        for inst in s.instances:
            key = inst.owner_instance or ""
            if key not in vec:
                vec[key] = {}
                order.append(key)
            prev = vec[key].get(s.loc, inst.mode)
            if prev != inst.mode:
                mixed.add((key, s.loc))
            vec[key][s.loc] = inst.mode if prev == inst.mode else None
    calls_of = {p: graph.scopes[p].loc if p in graph.scopes else None for p in order}
    retargetable = all(loc is not None and loc.file == res.file for loc in calls_of.values())
    _merge(vec, order, calls_of, retargetable)
    sites = {s.loc: s for s in ss}
    for p in order:
        for loc, m in vec[p].items():
            if m is None:
                why = _why_mixed() if (p, loc) in mixed else _why_unclonable(owner)
                book.leave([i for i in sites[loc].instances if (i.owner_instance or "") == p], loc, why)
    variants: list[tuple[dict, list[str]]] = []
    for p in order:
        for v in variants:
            if v[0] == vec[p]:
                v[1].append(p)
                break
        else:
            variants.append((vec[p], [p]))
    return variants


def _merge(vec: dict[str, dict[Loc, str | None]], order: list[str], calls_of: dict[str, Loc | None],
           retargetable: bool) -> None:
    """Give the instances made by one call (or, when some call cannot be retargeted, all instances)
    the rewrites they share; a site where they differ gets None."""
    while True:
        groups: dict[Loc | None, set[tuple]] = {}
        for p in order:
            groups.setdefault(calls_of[p], set()).add(tuple(sorted(vec[p].items(), key=lambda kv: (
                kv[0].line, kv[0].col))))
        conflict = [loc for loc, vs in groups.items() if len(vs) > 1]
        if retargetable and not conflict:
            return
        targets = order if not retargetable else [p for p in order if calls_of[p] in conflict]
        merged: dict[Loc, str | None] = {}
        for p in targets:
            for loc, m in vec[p].items():
                merged[loc] = m if merged.get(loc, m) == m else None
        for p in targets:
            vec[p] = dict(merged)
        if not retargetable:
            return


# ---------------------------------------------------------------------------------- AST building


def _synth(counter: list[int]) -> Loc:
    counter[0] += 1
    return Loc(SYNTH, counter[0], 1)


def _num(v: Any) -> A.Expr:
    if isinstance(v, (tuple, list)):
        if v[0] == v[1]:
            return A.Num(v[0])
        return A.ListExpr(tuple(A.Num(x) for x in v))
    if isinstance(v, str):
        return A.Str(v)
    return A.Num(v)


def _with_args(call: A.Call, names: Sequence[str], values: dict[str, A.Expr]) -> tuple[A.Arg, ...]:
    args = list(call.args)
    for name, val in values.items():
        hit = _arg(call, names, name)
        if hit is not None:
            i, a = hit
            args[i] = A.Arg(a.name, val, a.loc)
        else:
            args.append(A.Arg(name, val))
    return tuple(args)


@dataclass
class SiteRewrite:
    """How one site is rewritten in one variant."""

    mode: str
    mid: A.Expr
    plan: Plan                      # of the first instance (kernel shapes and paddings are the same for all)
    labels: list[str | None]
    unit_copies: list[A.Call] = field(default_factory=list)   # bare sites: BN/activation between factors


def _mid_expr(site: Site, insts: list[Instance], owner_env: dict[str, dict], lets: dict[str, A.Let],
              body: Sequence[A.Stmt], block_params: Sequence[str], units: dict[str, Unit],
              book: _Book) -> A.Expr | None:
    """The intermediate width: a ``let`` over the block's parameters (``2 * cin * cout // (cin + cout)``)
    when the widths come from them, checked against every instance; else a literal when every instance
    agrees."""
    mids = {i.plan.mid for i in insts}
    names = site.unit.params if site.kind == "unit" else CONV_PARAMS
    out_arg = _arg(site.call, names, site.unit.out_param if site.kind == "unit" else "out")
    ein = _input_expr(site, body, units)
    if out_arg is None or ein is None:
        if len(mids) == 1:
            return A.Num(mids.pop())
        book.leave(insts, site.loc, _why_mid("its instances need different intermediate widths and the input "
                                             "width has no expression here"))
        return None
    eout = out_arg[1].value
    if len(mids) == 1 and not (_names(ein) | _names(eout)) & set(block_params):
        return A.Num(mids.pop())            # literal widths (or the network's own): a literal says it plainly
    expr = A.BinOp("//", A.BinOp("*", A.BinOp("*", A.Num(2), ein), eout), A.BinOp("+", ein, eout))
    for inst in insts:
        env = owner_env.get(inst.owner_instance or "", {})
        try:
            ok = evaluate(expr, env) == inst.plan.mid
        except DiagnosticError:
            ok = False
        if not ok:
            if len(mids) == 1:
                return A.Num(mids.pop())
            book.leave(insts, site.loc, _why_mid("its intermediate width has no expression in the block's "
                                                 "parameters"))
            return None
    base = f"{eout.id}_mid" if isinstance(eout, A.Name) else f"{site.call.label or 'conv'}_mid"
    name, k = base, 2
    taken = set(block_params) | set(lets)
    while name in taken:
        name, k = f"{base}{k}", k + 1
    lets[name] = A.Let(name, expr)
    return A.Name(name)


def _names(e: Any) -> set[str]:
    """The names an expression reads (each expression node's operands spelled out: no reflection)."""
    if isinstance(e, A.Name):
        return {e.id}
    if isinstance(e, (tuple, list)):
        return set().union(*(_names(x) for x in e)) if e else set()
    parts: tuple = ()
    if isinstance(e, A.ListExpr):
        parts = e.items
    elif isinstance(e, A.BinOp):
        parts = (e.left, e.right)
    elif isinstance(e, A.UnaryOp):
        parts = (e.operand,)
    elif isinstance(e, A.IfExp):
        parts = (e.cond, e.then, e.orelse)
    elif isinstance(e, A.Index):
        parts = (e.obj, e.index)
    elif isinstance(e, A.FuncCall):
        parts = tuple(e.args)
    return _names(parts) if parts else set()


def _input_expr(site: Site, body: Sequence[A.Stmt], units: dict[str, Unit]) -> A.Expr | None:
    """An expression for the channels entering the site: the out argument of the conv before it."""
    prev = _previous_call(site.loc, body)
    while prev is not None and prev.name in UNIT_OPS:
        prev = _previous_call(prev.loc, body)
    if prev is None:
        return None
    if prev.name == "conv2d":
        hit = _arg(prev, CONV_PARAMS, "out")
        return hit[1].value if hit else None
    unit = units.get(prev.name)
    if unit is not None:
        hit = _arg(prev, unit.params, unit.out_param)
        return hit[1].value if hit else None
    return None



def _previous_call(loc: Loc, body: Sequence[A.Stmt]) -> A.Call | None:
    """The element right before the Call at ``loc`` in dataflow order within its sequence."""
    def search(stmts: Sequence[A.Stmt]) -> tuple[bool, A.Call | None]:
        last: A.Element | None = None
        for st in stmts:
            if isinstance(st, A.Chain):
                for el in st.elements:
                    if isinstance(el, A.Call) and el.loc == loc:
                        return True, last if isinstance(last, A.Call) else None
                    found, res = _search_el(el)
                    if found:
                        return True, res
                    last = el
            elif isinstance(st, A.If):
                for b in (st.then, st.orelse or ()):
                    found, res = search(b)
                    if found:
                        return True, res
            elif isinstance(st, A.Aux):
                found, res = _search_el(st.element)
                if found:
                    return True, res
        return False, None

    def _search_el(el: A.Element) -> tuple[bool, A.Call | None]:
        if isinstance(el, (A.Group, A.Gate, A.Repeat, A.Dense)):
            return search(el.body)
        if isinstance(el, A.Concat):
            for st in el.body:
                found, res = search((st,))
                if found:
                    return True, res
        if isinstance(el, A.Residual):
            found, res = search(el.body)
            if found:
                return True, res
            if el.shortcut is not None:
                return search(el.shortcut.body)
        return False, None

    return search(body)[1]


def _new_calls(site: Site, rw: SiteRewrite, counter: list[int]) -> tuple[list[A.Call], list[Loc], Loc]:
    """The replacement elements for one site (factors, with unit copies between them for bare convs),
    their synthetic locations and the final factor's location."""
    out: list[A.Call] = []
    layers = rw.plan.layers
    names = site.unit.params if site.kind == "unit" else CONV_PARAMS
    out_name = site.unit.out_param if site.kind == "unit" else "out"
    ker_name = site.unit.kernel_param if site.kind == "unit" else "kernel"
    pad_name = site.unit.padding_param if site.kind == "unit" else "padding"
    pad_default = site.unit.padding_default if site.kind == "unit" else 0
    orig_out = _arg(site.call, names, out_name)[1].value
    locs: list[Loc] = []
    final = site.loc
    for i, la in enumerate(layers):
        values: dict[str, A.Expr] = {ker_name: _num(la.kernel)}
        values[out_name] = rw.mid if i < len(layers) - 1 else orig_out
        pad = la.padding
        has_pad = pad_name is not None and _arg(site.call, names, pad_name) is not None
        default = (pad_default, pad_default) if isinstance(pad_default, int) else pad_default
        if pad_name is not None and (has_pad or pad != default):
            values[pad_name] = _num(pad)
        if site.kind == "conv" and i < len(layers) - 1 and rw.unit_copies and rw.unit_copies[0].name == "batchnorm":
            # the copied batchnorm cancels a bias (R401): only the last factor keeps the original's setting
            bias = _arg(site.call, CONV_PARAMS, "bias")
            if bias is None or not (isinstance(bias[1].value, A.Const) and bias[1].value.value is False):
                values["bias"] = A.Const(False)
        final = _synth(counter)
        locs.append(final)
        out.append(A.Call(site.call.name, _with_args(site.call, names, values), rw.labels[i], final,
                          site.call.inline))
        if site.kind == "conv" and i < len(layers) - 1:
            for u in rw.unit_copies:
                loc = _synth(counter)
                locs.append(loc)
                out.append(dataclasses.replace(u, label=f"{u.label}_{i + 1}" if u.label else None, loc=loc))
    return out, locs, final


def _unit_after(site_loc: Loc, body: Sequence[A.Stmt]) -> list[A.Call]:
    """The BN/activation calls right after a bare conv (same chain, or the next statements of a
    sequential body; a concat's statements are parallel branches)."""

    def collect(stmts: Sequence[A.Stmt], sequential: bool = True) -> list[A.Call] | None:
        for j, st in enumerate(stmts):
            if isinstance(st, A.Chain):
                for i, el in enumerate(st.elements):
                    if isinstance(el, A.Call) and el.loc == site_loc:
                        rest: list[A.Element] = list(st.elements[i + 1:])
                        if not rest and sequential:
                            for nxt in stmts[j + 1:]:
                                if not isinstance(nxt, A.Chain):
                                    break
                                rest.extend(nxt.elements)
                        out = []
                        for r in rest:
                            if isinstance(r, A.Call) and r.name in UNIT_OPS:
                                out.append(r)
                            else:
                                break
                        return out
                    for sub in A.element_bodies(el):
                        got = collect(sub, not isinstance(el, A.Concat))
                        if got is not None:
                            return got
            elif isinstance(st, A.If):
                for b in (st.then, st.orelse or ()):
                    got = collect(b)
                    if got is not None:
                        return got
            elif isinstance(st, A.Aux):
                for sub in A.element_bodies(st.element):
                    got = collect(sub)
                    if got is not None:
                        return got
        return None

    return collect(body) or []


def _rewrite_body(stmts: Sequence[A.Stmt], repl: dict[Loc, list[A.Call]], retarget: dict[Loc, str]) -> tuple:
    out: list[A.Stmt] = []
    for st in stmts:
        if isinstance(st, A.Chain):
            els: list[A.Element] = []
            for el in st.elements:
                if isinstance(el, A.Call) and el.loc in repl:
                    els.extend(repl[el.loc])
                else:
                    els.append(_rewrite_el(el, repl, retarget))
            out.append(dataclasses.replace(st, elements=tuple(els)))
        elif isinstance(st, A.If):
            out.append(dataclasses.replace(st, then=_rewrite_body(st.then, repl, retarget),
                                           orelse=None if st.orelse is None else
                                           _rewrite_body(st.orelse, repl, retarget)))
        elif isinstance(st, A.Aux):
            out.append(dataclasses.replace(st, element=_rewrite_el(st.element, repl, retarget)))
        else:
            out.append(st)
    return tuple(out)


def _rewrite_el(el: A.Element, repl: dict[Loc, list[A.Call]], retarget: dict[Loc, str]) -> A.Element:
    if isinstance(el, A.Call):
        return dataclasses.replace(el, name=retarget[el.loc]) if el.loc in retarget else el
    if isinstance(el, (A.Group, A.Concat, A.Gate, A.Repeat, A.Dense)):
        return dataclasses.replace(el, body=_rewrite_body(el.body, repl, retarget))
    if isinstance(el, A.Residual):
        sc = el.shortcut
        if sc is not None:
            sc = dataclasses.replace(sc, body=_rewrite_body(sc.body, repl, retarget))
        return dataclasses.replace(el, body=_rewrite_body(el.body, repl, retarget), shortcut=sc)
    return el


def _labels_in(stmts: Sequence[A.Stmt]) -> set[str]:
    return {el.label for el in A.iter_elements(stmts) if getattr(el, "label", None)}


def _factor_labels(label: str | None, n: int, taken: set[str]) -> list[str | None]:
    if label is None:
        return [None] * n
    out = []
    for i in range(n):
        name, k = f"{label}_{i + 1}", 0
        while name in taken:
            k += 1
            name = f"{label}_{i + 1}{'abcdefghij'[k % 10]}"
        taken.add(name)
        out.append(name)
    return out


# ---------------------------------------------------------------------------------- the transform


@dataclass
class Replacement:
    """One site rewritten in one variant: the old instances it covers and the synthetic Calls replacing it."""

    site: Site
    instances: list[Instance]
    locs: list[Loc]
    final: Loc


@dataclass
class Outcome:
    """A planned rewrite: the new AST, what replaces what, the same as text edits, and the convs that
    qualify (node -> mode) or are left alone (node -> (site, reason))."""

    spec: A.SpecFile
    replacements: list[Replacement]
    edits: Edits
    qualifying: dict[int, str]
    left: dict[int, tuple[Loc, str]]

    @property
    def rewritten(self) -> set[int]:
        """The conv nodes the rewrite replaces."""
        return {i.node for r in self.replacements for i in r.instances}


class _Build:
    """Builds the rewritten bodies of one plan; records the replacements and text edits as it goes."""

    def __init__(self, res, sites: dict[Loc, Site], book: _Book) -> None:
        self.res, self.sites, self.book = res, sites, book
        self.units = {name: u for name, bdef in res.blocks.items()
                      if (u := _unit(bdef.block, dict(bdef.env))) is not None}
        self.counter = [0]
        self.replacements: list[Replacement] = []
        self.owner_env: dict[str, dict] = {"": dict(res.graph.params)}
        for p, info in res.graph.scopes.items():
            if info.kind == "block" and info.block in res.blocks:
                self.owner_env[p] = {**res.blocks[info.block].env, **info.args}

    def body(self, owner: str | None, body: Sequence[A.Stmt], modes: dict[Loc, str | None], users: list[str],
             params: Sequence[str]) -> tuple[tuple, list[A.Let], dict[Loc, list[A.Call]]]:
        """One variant of a body: (new statements, new lets, site location -> replacing calls)."""
        repl: dict[Loc, list[A.Call]] = {}
        lets: dict[str, A.Let] = {}
        taken = _labels_in(body)
        for loc, mode in sorted(modes.items(), key=lambda kv: (kv[0].line, kv[0].col)):
            if mode is None:
                continue
            site = self.sites[loc]
            insts = sorted((i for i in site.instances if i.mode == mode
                            and (owner is None or (i.owner_instance or "") in users)), key=lambda i: i.node)
            if not insts:
                continue
            mid = _mid_expr(site, insts, self.owner_env, lets, body, params, self.units, self.book)
            if mid is None:
                continue
            labels = _factor_labels(site.call.label, len(insts[0].plan.layers), taken)
            rw = SiteRewrite(mode, mid, insts[0].plan, labels)
            if site.kind == "conv":
                # a gate's squashing function (sigmoid) is not the unit's non-linearity: not copied
                unit = [u for u in _unit_after(loc, body) if u.name not in GATE_ACTS]
                if not any(PUBLIC_OPS[u.name].family == "activation" for u in unit):
                    unit = unit + [A.Call("relu", ())]
                rw.unit_copies = unit
            calls, locs, final = _new_calls(site, rw, self.counter)
            repl[loc] = calls
            self.replacements.append(Replacement(site, insts, locs, final))
        return _rewrite_body(body, repl, {}), list(lets.values()), repl


def plan_rewrite(res, kinds: Kinds, grid: tuple[int, int], skip: dict[Loc, str] | None = None) -> Outcome:
    """Plan and build the rewritten AST of an analysed spec (no elaboration); ``skip``: site location ->
    why it is left alone."""
    book = _Book()
    sites = _collect_sites(res, kinds, grid, book, skip)
    variants = _variants(res, sites, book)
    spec, graph = res.spec, res.graph
    build = _Build(res, sites, book)
    edits = Edits()
    existing = {b.name for b in spec.blocks} | set(res.blocks) | set(PUBLIC_OPS)
    new_bodies: dict[str, tuple] = {}
    clones: dict[str, list[A.Block]] = {}
    for b in spec.blocks:
        params = [p.name for p in b.params]
        built = []
        for modes, users in variants.get(b.name, ()):
            body, lets, repl = build.body(b.name, b.body, modes, users, params)
            built.append((tuple(lets) + body, lets, repl, modes, users))
        # the block's name goes to the variant left as written (its calls stay as they are), else to the
        # first; every other variant is a clone named for what it does (``InceptionAsym``)
        keep = next((vi for vi, v in enumerate(built) if not v[2]), 0)
        for vi, (body, lets, repl, modes, users) in enumerate(built):
            if vi == keep:
                edits.blocks.append(BlockEdit(b, b.name, repl, lets))
                new_bodies[b.name] = body
                continue
            if not repl:
                continue        # nothing rewritten either: the same body as the original, under its name
            name = _clone_name(b.name, {modes[loc] for loc in repl}, existing)
            edits.blocks.append(BlockEdit(b, name, repl, lets))
            clones.setdefault(b.name, []).append(A.Block(name, b.params, body, b.loc))
            for u in users:
                edits.retarget[graph.scopes[u].loc] = name
    top_modes = variants.get(None, [({}, [])])[0][0]
    top_body, edits.top_lets, edits.top_repl = build.body(None, spec.body, top_modes, [], [])
    retarget = edits.retarget
    blocks_out: list[A.Block] = []
    for b in spec.blocks:
        blocks_out.append(dataclasses.replace(b, body=_rewrite_body(new_bodies.get(b.name, b.body), {}, retarget)))
        for c in clones.get(b.name, []):
            blocks_out.append(dataclasses.replace(c, body=_rewrite_body(c.body, {}, retarget)))
    new = dataclasses.replace(spec, blocks=tuple(blocks_out), body=_rewrite_body(top_body, {}, retarget),
                              lets=spec.lets + tuple(edits.top_lets))
    return Outcome(new, build.replacements, edits, book.qualifying, book.left)


def _clone_name(base: str, modes: set[str | None], existing: set[str]) -> str:
    """``base`` + what the clone's rewrites do: ``Asym`` (1 x n + n x 1), ``Stack`` (stacked 3x3), both."""
    suffix = ("Stack" if STACK in modes else "") + ("Asym" if ASYM in modes else "")
    name, k = f"{base}{suffix}", 2
    while name in existing:
        name, k = f"{base}{suffix}{k}", k + 1
    existing.add(name)
    return name


def factorize(res, kinds: Kinds, grid: tuple[int, int]) -> tuple[A.SpecFile, list[Replacement], list[str]]:
    """Plan and build the rewritten AST: (new spec, replacements, notes)."""
    out = plan_rewrite(res, kinds, grid)
    return out.spec, out.replacements, site_notes(res, out)


def site_notes(res, out: Outcome) -> list[str]:
    """One note per site left alone: the convs it covers and why."""
    groups: dict[tuple[Loc, str], list[str]] = {}
    rewritten = out.rewritten
    for n in sorted(out.left):
        if n in rewritten:
            continue
        site, why = out.left[n]
        groups.setdefault((site, why), []).append(res.graph.node(n)["path"])
    return [f"{_paths(paths)}: {why}" for (_, why), paths in groups.items()]


def _paths(paths: list[str]) -> str:
    if len(paths) == 1:
        return paths[0]
    if len(paths) <= 3:
        return ", ".join(paths[:-1]) + f" and {paths[-1]}"
    return ", ".join(paths[:3]) + f" and {len(paths) - 3} more"


# ---------------------------------------------------------------------------------- API for the rules

_CACHE: dict[int, dict[tuple, Outcome]] = {}


def _kinds_of(kind: str | Kinds) -> Kinds:
    return kind if isinstance(kind, Kinds) else parse_kinds(kind)


def outcome(res, kind: str | Kinds, grid: tuple[int, int] | None = None) -> Outcome | None:
    """The planned rewrite of an analysed spec for ``--factorize=KIND`` (cached per analysis); None
    when the spec did not analyse (errors other than rule findings, which ``--strict`` may raise)."""
    if res.graph is None or res.spec is None or any(d.is_error and not d.code.startswith("R") for d in res.diags):
        return None
    from ..rules.config import OPTIONS

    kinds, grid = _kinds_of(kind), tuple(grid or OPTIONS["grid"].default)
    per = _CACHE.get(id(res))
    if per is None:
        per = _CACHE[id(res)] = {}
        weakref.finalize(res, _CACHE.pop, id(res), None)
    key = (kinds, grid)
    if key not in per:
        per[key] = plan_rewrite(res, kinds, grid)
    return per[key]


def rewritable(res, kind: str | Kinds, grid: tuple[int, int] | None = None) -> frozenset[str]:
    """The paths of the conv nodes (as diagnostics show them) that ``archdsl transform --factorize=KIND``
    rewrites in this analysed spec; ``grid`` is the medium range of ``asym`` (default: the rules' grid)."""
    out = outcome(res, kind, grid)
    if out is None:
        return frozenset()
    return frozenset(res.graph.node(n)["path"] for n in out.rewritten)


def left_alone(res, kind: str | Kinds, grid: tuple[int, int] | None = None) -> dict[str, str]:
    """Conv path -> why ``archdsl transform --factorize=KIND`` leaves that qualifying conv alone (a phrase
    a hint can show, ending with what lets the transform rewrite it)."""
    out = outcome(res, kind, grid)
    return {} if out is None else _left_paths(res, out)


def _left_paths(res, out: Outcome) -> dict[str, str]:
    rewritten = out.rewritten
    return {res.graph.node(n)["path"]: out.left.get(n, (None, _WHY_UNKNOWN))[1]
            for n in sorted(out.qualifying) if n not in rewritten}


def why_not(res, kind: str | Kinds, grid: tuple[int, int] | None, path: str) -> str | None:
    """Why the conv at ``path`` is not rewritten by ``--factorize=KIND`` although it qualifies; None when
    it is rewritten or does not qualify."""
    return left_alone(res, kind, grid).get(path)


# ---------------------------------------------------------------------------------- verification


def elaborate(spec: A.SpecFile, file: str, overrides: dict, search_paths: tuple[str, ...]):
    """Analyse an AST as if it were the file ``file`` (imports resolve relative to it)."""
    from ..pipeline import Analysis, _run, gc_paused

    res = Analysis(file)
    res.spec = spec
    with gc_paused():
        try:
            _run(res, dict(overrides), None, search_paths)
        except DiagnosticError as exc:
            res.diags.add(exc.diagnostic)
    return res


def _occurrences(graph) -> dict[Loc, list[list[int]]]:
    """For every synthetic location: the node groups created from it, in graph order (one per instance)."""
    by_scope: dict[str, Loc] = {p: info.loc for p, info in graph.scopes.items()
                                if info.loc is not None and info.loc.file == SYNTH and info.kind == "block"}
    occ: dict[Loc, dict[str, list[int]]] = {}
    for n in graph.order():
        d = graph.node(n)
        if d["loc"].file == SYNTH:
            occ.setdefault(d["loc"], {})[f"#{n}"] = [n]
            continue
        scope = d["scope"]
        while scope:
            if scope in by_scope:
                occ.setdefault(by_scope[scope], {}).setdefault(scope, []).append(n)
                break
            scope = scope.rsplit(".", 1)[0] if "." in scope else ""
    return {loc: sorted(groups.values(), key=min) for loc, groups in occ.items()}


@dataclass
class Matched:
    """One rewritten instance: old nodes replaced, new nodes replacing them, and the report row."""

    old_nodes: list[int]
    new_nodes: list[int]
    old_out: int
    new_out: int
    row: Rewrite


def match(old, new, replacements: list[Replacement]) -> tuple[list[Matched], list[str]]:
    """Pair every old instance with its replacement in the new graph."""
    matched, problems = _match(old, new, replacements)
    return matched, [p for _, p in problems]


def _match(old, new, replacements: list[Replacement]) -> tuple[list[Matched], list[tuple[Loc | None, str]]]:
    """``match``, with each problem's site location."""
    og, ng = old.graph, new.graph
    occ = _occurrences(ng)
    out: list[Matched] = []
    problems: list[tuple[Loc | None, str]] = []
    for rep in replacements:
        for k, inst in enumerate(rep.instances):
            od = og.node(inst.node)
            if inst.elem_scope:
                old_nodes = [m for m in og.order() if og.node(m)["path"].startswith(inst.elem_scope + ".")]
            else:
                old_nodes = [inst.node]
            new_nodes: list[int] = []
            for loc in rep.locs:
                groups = occ.get(loc, [])
                if k >= len(groups):
                    problems.append((rep.site.loc, f"{od['path']}: its replacement was not found"))
                    break
                new_nodes.extend(groups[k])
            else:
                final = occ[rep.final][k]
                if inst.elem_scope:
                    old_out, new_out = max(old_nodes), max(final)
                else:
                    old_out, new_out = inst.node, final[0]
                row = Rewrite(inst.elem_scope or od["path"], inst.mode, od["args"]["kernel"],
                              [f"{la.kernel[0]}x{la.kernel[1]}" for la in inst.plan.layers], rep.site.loc,
                              conv_path=od["path"])
                row.params_before, row.macs_before = _costs(og, old_nodes)
                row.params_after, row.macs_after = _costs(ng, new_nodes)
                out.append(Matched(old_nodes, sorted(new_nodes), old_out, new_out, row))
    return out, problems


def verify(old, new, matched: list[Matched]) -> list[str]:
    """Problems with the rewrite: each replacement keeps its output shape and receptive field, every
    other node keeps its op and shape (compared in graph order)."""
    return [p for _, p in _verify(old, new, matched)]


def _verify(old, new, matched: list[Matched]) -> list[tuple[Loc | None, str]]:
    """``verify``, with each problem's site location (None: not one site's)."""
    og, ng = old.graph, new.graph
    problems: list[tuple[Loc | None, str]] = []
    for m in matched:
        o, n = og.node(m.old_out), ng.node(m.new_out)
        if o["shape"] != n["shape"]:
            problems.append((m.row.site, f"{m.row.path}: output shape {o['shape']} became {n['shape']}"))
        if o["rf"] is not None and n["rf"] is not None and o["rf"] != n["rf"]:
            problems.append((m.row.site, f"{m.row.path}: receptive field {o['rf'][:2]} became {n['rf'][:2]}"))
    old_done = {x for m in matched for x in m.old_nodes}
    new_done = {x for m in matched for x in m.new_nodes}
    rest_old = [n for n in og.order() if n not in old_done]
    rest_new = [n for n in ng.order() if n not in new_done]
    if len(rest_old) != len(rest_new):
        problems.append((None, f"{len(rest_old)} untouched nodes before, {len(rest_new)} after"))
        return problems
    for o, n in zip(rest_old, rest_new, strict=True):
        do, dn = og.node(o), ng.node(n)
        if do["op"] != dn["op"] or do["shape"] != dn["shape"]:
            problems.append((None, f"{do['path']} ({do['op']} {do['shape']}) became {dn['path']} ({dn['op']} "
                                   f"{dn['shape']})"))
            break
    return problems


def _costs(graph, nodes: Iterable[int]) -> tuple[int, int]:
    p = m = 0
    for n in nodes:
        c = graph.node(n)["costs"]
        p += c.params
        m += c.macs
    return p, m


# ---------------------------------------------------------------------------------- driver


def transform(path: str, kinds: Kinds, grid: tuple[int, int] | None = None, overrides: dict | None = None,
              search_paths: tuple[str, ...] = ()) -> Result:
    """Analyse ``path``, rewrite it and verify the result."""
    from ..pipeline import analyze

    overrides = dict(overrides or {})
    old = analyze(path, overrides, None, search_paths)
    if not old.ok or old.graph is None:
        raise _AnalysisFailed(old)
    return rewrite(old, kinds, grid, overrides, search_paths)


def rewrite(old, kinds: Kinds, grid: tuple[int, int] | None = None, overrides: dict | None = None,
            search_paths: tuple[str, ...] = ()) -> Result:
    """Rewrite an analysed spec (``analyze`` with the same overrides and search paths) and verify the
    result by elaborating it; nothing rewritten leaves ``after`` the analysis itself.

    A site whose rewrite does not verify is left alone (with the problem as its reason) and the others
    are planned and verified again, so one such site never blocks the rest; TransformError only when a
    problem cannot be pinned on any site."""
    from ..rules.config import OPTIONS

    overrides = dict(overrides or {})
    grid = tuple(grid or OPTIONS["grid"].default)
    skip: dict[Loc, str] = {}
    while True:
        out = plan_rewrite(old, kinds, grid, skip)
        result = Result(out.spec, [], site_notes(old, out), old, old, _left_paths(old, out), out.edits,
                        describe_kinds(kinds, grid))
        if not out.replacements:
            return result
        new, matched, problems = _check(old, out, overrides, search_paths)
        if not problems:
            result.rewrites = sorted((m.row for m in matched), key=lambda r: r.path)
            result.after = new
            return result
        failed = {loc: _why_unverified(p) for loc, p in reversed(problems) if loc is not None}
        if not failed:         # not one site's: try the sites one at a time
            failed = _isolate(old, kinds, grid, skip, out, overrides, search_paths)
        if not failed:
            raise TransformError("the rewrite would change the network: " + "; ".join(p for _, p in problems[:5]))
        skip.update(failed)


def _check(old, out: Outcome, overrides: dict, search_paths: tuple[str, ...]
           ) -> tuple[Any, list[Matched], list[tuple[Loc | None, str]]]:
    """Elaborate a planned rewrite and verify it: (new analysis, matched instances, problems with the
    location of the site each is about, None when it is not one site's)."""
    new = elaborate(out.spec, old.file, overrides, search_paths)
    if not new.ok or new.graph is None:
        where = {loc: r.site.loc for r in out.replacements for loc in r.locs}
        return new, [], [(where.get(d.loc), f"the rewritten spec does not check: {d.code} {d.message}")
                         for d in new.diags.sorted() if d.is_error]
    matched, problems = _match(old, new, out.replacements)
    return new, matched, problems + _verify(old, new, matched)


def _isolate(old, kinds: Kinds, grid: tuple[int, int], skip: dict[Loc, str], out: Outcome, overrides: dict,
             search_paths: tuple[str, ...]) -> dict[Loc, str]:
    """The sites whose rewrite fails on its own (site location -> why), each planned without the others."""
    sites = list(dict.fromkeys(r.site.loc for r in out.replacements))
    failed: dict[Loc, str] = {}
    for loc in sites:
        alone = {**skip, **{other: _WHY_UNKNOWN for other in sites if other != loc}}
        trial = plan_rewrite(old, kinds, grid, alone)
        if not trial.replacements:
            continue
        _, _, problems = _check(old, trial, overrides, search_paths)
        if problems:
            failed[loc] = _why_unverified(problems[0][1])
    return failed


class _AnalysisFailed(Exception):
    def __init__(self, res) -> None:
        super().__init__("analysis failed")
        self.res = res


def report_table(result: Result) -> str:
    """The before/after table ``transform`` prints."""
    rows = [("module", "rewrite", "params", "MACs")]
    for r in result.rewrites:
        rows.append((r.path, f"{r.kernel[0]}x{r.kernel[1]} -> {' + '.join(r.factors)}",
                     f"{count(r.params_before)} -> {count(r.params_after)}",
                     f"{macs(r.macs_before)} -> {macs(r.macs_after)}"))
    og, ng = result.before.graph, result.after.graph
    p0, p1 = og.total_params(), ng.total_params()
    m0, m1 = og.eval_macs(), ng.eval_macs()
    n = len(result.rewrites)
    rows.append(("total", f"{n} conv{'s' if n != 1 else ''}", f"{count(p0)} -> {count(p1)} ({pct(p0, p1)})",
                 f"{count(m0)} -> {count(m1)} ({pct(m0, m1)})"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for i, r in enumerate(rows):
        if i == len(rows) - 1:
            lines.append("  ".join("-" * w for w in widths))
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(f"params: {count(p1 - p0)} ({pct(p0, p1)}), MACs (eval): {count(m1 - m0)} ({pct(m0, m1)})")
    return "\n".join(lines) + "\n"


def nothing_reason(result: Result) -> str:
    """Why a transform rewrote nothing: the reasons its qualifying convs were left alone, or that none
    qualifies."""
    if not result.left:
        return f"no conv qualifies: --factorize rewrites {result.what}"
    n = len(result.left)
    reasons = list(dict.fromkeys(result.left.values()))
    shown = "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
    return f"{n} qualifying conv{'s' if n != 1 else ''} left alone: {shown}"


def render(result: Result, spec_path: str, out_path: str) -> tuple[str, list[str]]:
    """The rewritten spec as the text to write, and notes about comments that could not be kept.

    ``.arch`` to ``.arch``: the source with the rewrite spliced in (every comment kept).  Otherwise the
    printer's output, with the source's leading comment block on top."""
    from ..frontend.loader import is_yaml, parse_source, read_spec_text
    from ..frontend.printer import leading_comments, to_text, to_yaml

    source = read_spec_text(spec_path)
    notes: list[str] = []
    if not is_yaml(spec_path) and not is_yaml(out_path):
        try:
            text = splice(source, result.before.spec, result.edits)
            if parse_source(text, str(out_path)) == result.spec:
                return text, notes
            notes.append("the spliced text differs from the rewrite (internal); printed the spec instead, "
                         "keeping only its leading comments")
        except (SpliceError, DiagnosticError) as exc:
            why = exc.diagnostic.message if isinstance(exc, DiagnosticError) else str(exc)
            notes.append(f"could not splice the rewrite into the source ({why}); printed the spec instead, "
                         f"keeping only its leading comments")
    head = leading_comments(source)
    printed = to_yaml(result.spec) if is_yaml(out_path) else to_text(result.spec)
    kept = sum(1 for line in head.split("\n") if line.lstrip().startswith("#"))
    if not notes and _comment_count(source, is_yaml(spec_path)) > kept:
        notes.append(f"comments below the leading comment block are not carried into printed "
                     f"{'YAML' if is_yaml(out_path) else 'text'} output")
    return head + printed, notes


def _comment_count(source: str, yaml: bool) -> int:
    if not yaml:
        return len(Source(source).comments)
    return sum(1 for line in source.split("\n") if line.lstrip().startswith("#") or " #" in line)


def _check_printed(text: str, result: Result, spec_path: str, out_path: str, overrides: dict,
                   search_paths: tuple[str, ...]) -> str | None:
    """Why the text to write does not analyse to the rewritten network (None when it does)."""
    from ..frontend.loader import is_yaml, parse_source

    extra = tuple(search_paths) + (str(Path(spec_path).resolve().parent),)
    try:
        reparsed = parse_source(text, str(out_path), yaml=is_yaml(out_path))
    except DiagnosticError as exc:
        return f"internal: the printed spec does not parse: {exc.diagnostic.message}"
    again = elaborate(reparsed, str(Path(out_path)), overrides, extra)
    if not again.ok or again.graph.total_params() != result.after.graph.total_params() \
            or again.graph.eval_macs() != result.after.graph.eval_macs():
        return "internal: the printed spec differs from the rewritten one"
    return None


def transform_file(spec_path: str, out_path: str, kinds: Kinds, grid: tuple[int, int] | None,
                   params: Sequence[str], search_paths: tuple[str, ...]) -> int:
    """The ``archdsl transform`` command: rewrite, verify, write ``out_path``, print the table.  Exit 1
    (nothing written) when nothing is rewritten, saying why."""
    from ..cli import is_quiet, print_diagnostic, status  # coloured as --color says; -q drops status lines
    from ..io import report_written, write_atomic
    from ..pipeline import parse_overrides

    sources = SourceCache()
    try:
        overrides = parse_overrides(list(params))
        result = transform(spec_path, kinds, grid, overrides, search_paths)
        for n in result.notes:
            status(f"note: {n}")
        if not result.rewrites:
            print(f"archdsl transform: nothing to rewrite in {spec_path}: {nothing_reason(result)}", file=sys.stderr)
            return 1
        text, notes = render(result, spec_path, out_path)
    except DiagnosticError as exc:
        print_diagnostic(exc.diagnostic, sources)
        return 1
    except _AnalysisFailed as exc:
        for d in exc.res.diags.sorted():
            print_diagnostic(d, exc.res.sources)
        return 1
    except TransformError as exc:
        print(f"archdsl transform: error: {exc}", file=sys.stderr)
        return 1
    problem = _check_printed(text, result, spec_path, out_path, overrides, search_paths)
    if problem is not None:
        print(f"archdsl transform: error: {problem}", file=sys.stderr)
        return 1
    try:
        write_atomic(out_path, text)
    except OSError as exc:
        print_diagnostic(Diagnostic("E005", f"cannot write {out_path}: {exc.strerror or exc}", Loc(out_path, 1, 1)))
        return 1
    for n in notes:
        status(f"note: {n}")
    if not is_quiet():
        sys.stdout.write(report_table(result))
    if result.spec.uses and Path(out_path).resolve().parent != Path(spec_path).resolve().parent:
        status(f"note: {out_path} imports {', '.join(u.path for u in result.spec.uses)} relative to its own "
               f"directory; keep it next to {spec_path} or check it with --search-path "
               f"{os.path.dirname(os.path.abspath(spec_path))}")
    report_written(out_path)
    return 0
