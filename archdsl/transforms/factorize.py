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
block's parameters, or a literal when all instances agree).  When instances differ (asymmetric
factorization applies only on medium grids, so a block used on 28x28, 14x14 and 7x7 grids needs it
for the 14x14 instances only), the block is cloned per variant (``InceptionAsym``) and the calls of
the instances that need the variant are retargeted -- the per-grid module types of Inception v3.
Where neither is possible the site is left alone and a note says why.

The rewritten AST is elaborated again before anything is written: every rewritten node must keep
its output shape and receptive field, every other node its shape, and the printed spec must parse
and analyse to the same totals.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import ast as A
from ..diagnostics import Diagnostic, DiagnosticError, Loc, SourceCache, format_text
from ..expr import evaluate
from ..ops import OPS, PUBLIC_OPS
from ..rules.factorization import ASYM, STACK, Plan, asym_qualifies, plan, stack_qualifies
from ..rules.graphctx import count, macs, pct

SYNTH = "<transform>"
UNIT_OPS = frozenset(n for n, s in PUBLIC_OPS.items() if s.family in ("norm", "activation"))
CONV_PARAMS = OPS["conv2d"].param_names


class TransformError(Exception):
    """A bad option or a rewrite that failed verification."""


# ---------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Kinds:
    """Which factorizations to apply."""

    sizes: frozenset[int]
    asym: bool


def parse_kinds(text: str | None) -> Kinds:
    """``"5x5,7x7,asym"`` -> Kinds."""
    if not text:
        raise TransformError("nothing to do: pass --factorize[=5x5,7x7,asym]")
    sizes, asym = set(), False
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if part == "asym":
            asym = True
            continue
        a, sep, b = part.partition("x")
        if not sep or not a.isdigit() or a != b or int(a) < 5 or int(a) % 2 == 0:
            raise TransformError(f"unknown factorization {part!r}: use NxN with odd N >= 5 (5x5, 7x7) or asym")
        sizes.add(int(a))
    return Kinds(frozenset(sizes), asym)


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
    """One rewritten instance, for the report."""

    path: str
    mode: str
    kernel: tuple[int, int]
    factors: list[str]
    site: Loc
    params_before: int = 0
    params_after: int = 0
    macs_before: int = 0
    macs_after: int = 0


@dataclass
class Result:
    """What ``factorize`` did."""

    spec: A.SpecFile
    rewrites: list[Rewrite]
    notes: list[str]
    before: Any = None
    after: Any = None


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


def _collect_sites(res, kinds: Kinds, grid: tuple[int, int], notes: list[str]) -> dict[Loc, Site]:
    graph, main_file = res.graph, res.file
    calls = _index_calls(res.spec, res.blocks)
    units: dict[str, Unit | None] = {}
    sites: dict[Loc, Site] = {}
    seen_notes: set[str] = set()

    def note(msg: str) -> None:
        if msg not in seen_notes:
            seen_notes.add(msg)
            notes.append(msg)

    for n, data in graph.g.nodes(data=True):
        if data["op"] != "conv2d" or data["shape"] is None:
            continue
        preds = graph.inputs(n)
        ins = graph.node(preds[0])["shape"] if preds else None
        a, out = data["args"], data["shape"]
        mode = None
        if kinds.asym and asym_qualifies(a, ins, out, grid):
            mode = ASYM
        elif stack_qualifies(a, ins, out, set(kinds.sizes)):
            mode = STACK
        k = a["kernel"]
        if k[0] != k[1] or k[0] < 3:
            continue   # never a candidate: no site needed
        info = calls.get(data["loc"])
        if info is None:
            continue
        ker = _arg(info.call, CONV_PARAMS, "kernel")
        site_loc, kind, unit, elem_scope = None, None, None, None
        if ker is not None and _is_literal(ker[1].value):
            site_loc, kind = data["loc"], "conv"
        else:
            scope = graph.scopes.get(data["scope"])
            if scope is not None and scope.kind == "block" and scope.block in res.blocks:
                if scope.block not in units:
                    bdef = res.blocks[scope.block]
                    units[scope.block] = _unit(bdef.block, dict(bdef.env))
                unit = units[scope.block]
                ucall = calls.get(scope.loc) if scope.loc is not None else None
                if unit is not None and ucall is not None:
                    uk = _arg(ucall.call, unit.params, unit.kernel_param)
                    if uk is not None and _is_literal(uk[1].value):
                        site_loc, kind, elem_scope = scope.loc, "unit", scope.path
        if site_loc is None:
            if mode is not None:
                note(f"{data['path']}: its kernel size comes from an expression; rewrite it by hand")
            continue
        site_info = calls[site_loc]
        if site_info.file != main_file:
            if mode is not None:
                note(f"{data['path']}: defined in {site_info.file}; copy that block into the spec to rewrite it")
            continue
        site = sites.get(site_loc)
        if site is None:
            site = sites[site_loc] = Site(site_loc, kind, site_info.call, site_info.owner, unit)
        p = plan(mode, a, ins, out) if mode is not None else None
        site.instances.append(Instance(n, mode, p, _owner_instance(graph, data["path"], site.owner), elem_scope))
    return sites


def _variants(res, sites: dict[Loc, Site], notes: list[str]) -> dict[str | None, list[tuple[dict, list[str]]]]:
    """Per owner block: [(site loc -> mode for this variant, owner-instance paths using it)].

    The first variant keeps the block's name; the others become clones.  Top-level sites (owner None)
    get one variant.
    """
    graph = res.graph
    by_owner: dict[str | None, list[Site]] = {}
    for s in sites.values():
        by_owner.setdefault(s.owner, []).append(s)
    out: dict[str | None, list[tuple[dict, list[str]]]] = {}
    for owner, ss in by_owner.items():
        ss.sort(key=lambda s: (s.loc.line, s.loc.col))
        if owner is None:
            modes = {}
            for s in ss:
                ms = {i.mode for i in s.instances}
                if len(ms) == 1:
                    modes[s.loc] = ms.pop()
                elif ms != {None}:
                    modes[s.loc] = None
                    notes.append(f"{s.loc}: its instances need different rewrites (different grids or widths); "
                                 f"left alone")
            out[None] = [(modes, [])]
            continue
        # mode vector of every owner instance
        vec: dict[str, dict[Loc, str | None]] = {}
        order: list[str] = []
        for s in ss:
            for inst in s.instances:
                key = inst.owner_instance or ""
                if key not in vec:
                    vec[key] = {}
                    order.append(key)
                prev = vec[key].get(s.loc, inst.mode)
                vec[key][s.loc] = inst.mode if prev == inst.mode else None
        calls_of = {p: graph.scopes[p].loc if p in graph.scopes else None for p in order}
        retargetable = all(loc is not None and loc.file == res.file for loc in calls_of.values())
        while True:
            groups: dict[Loc | None, set[tuple]] = {}
            for p in order:
                groups.setdefault(calls_of[p], set()).add(tuple(sorted(vec[p].items(), key=lambda kv: (
                    kv[0].line, kv[0].col))))
            conflict = [loc for loc, vs in groups.items() if len(vs) > 1]
            if retargetable and not conflict:
                break
            targets = order if not retargetable else [p for p in order if calls_of[p] in conflict]
            merged: dict[Loc, str | None] = {}
            for p in targets:
                for loc, m in vec[p].items():
                    merged[loc] = m if merged.get(loc, m) == m else None
            for p in targets:
                vec[p] = dict(merged)
            if not retargetable:
                break
        variants: list[tuple[dict, list[str]]] = []
        for p in order:
            for v in variants:
                if v[0] == vec[p]:
                    v[1].append(p)
                    break
            else:
                variants.append((vec[p], [p]))
        out[owner] = variants
    return out


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
              notes: list[str]) -> A.Expr | None:
    """The intermediate width: a literal when every instance agrees, else a ``let`` over the block's
    parameters (``2 * cin * cout // (cin + cout)``), checked against every instance."""
    mids = {i.plan.mid for i in insts}
    if len(mids) == 1:
        return A.Num(mids.pop())
    names = site.unit.params if site.kind == "unit" else CONV_PARAMS
    out_arg = _arg(site.call, names, site.unit.out_param if site.kind == "unit" else "out")
    ein = _input_expr(site, body, units)
    if out_arg is None or ein is None:
        notes.append(f"{site.loc}: instances need different intermediate widths and the input width has no "
                     f"expression here; left alone")
        return None
    eout = out_arg[1].value
    expr = A.BinOp("//", A.BinOp("*", A.BinOp("*", A.Num(2), ein), eout), A.BinOp("+", ein, eout))
    for inst in insts:
        env = owner_env.get(inst.owner_instance or "", {})
        try:
            ok = evaluate(expr, env) == inst.plan.mid
        except DiagnosticError:
            ok = False
        if not ok:
            notes.append(f"{site.loc}: could not express the intermediate width in the block's parameters; left "
                         f"alone")
            return None
    base = f"{eout.id}_mid" if isinstance(eout, A.Name) else f"{site.call.label or 'conv'}_mid"
    name, k = base, 2
    taken = set(block_params) | set(lets)
    while name in taken:
        name, k = f"{base}{k}", k + 1
    lets[name] = A.Let(name, expr)
    return A.Name(name)


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
        if isinstance(el, (A.Group, A.Repeat, A.Dense)):
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
    if isinstance(el, (A.Group, A.Concat, A.Repeat, A.Dense)):
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


def factorize(res, kinds: Kinds, grid: tuple[int, int]) -> tuple[A.SpecFile, list[Replacement], list[str]]:
    """Plan and build the rewritten AST: (new spec, replacements, notes)."""
    notes: list[str] = []
    sites = _collect_sites(res, kinds, grid, notes)
    variants = _variants(res, sites, notes)
    units = {name: u for name, bdef in res.blocks.items() if (u := _unit(bdef.block, dict(bdef.env))) is not None}
    spec, graph = res.spec, res.graph
    counter = [0]
    replacements: list[Replacement] = []
    retarget: dict[Loc, str] = {}
    owner_env: dict[str, dict] = {}
    for p, info in graph.scopes.items():
        if info.kind == "block" and info.block in res.blocks:
            owner_env[p] = {**res.blocks[info.block].env, **info.args}
    owner_env[""] = dict(graph.params)
    existing = {b.name for b in spec.blocks} | set(res.blocks) | set(PUBLIC_OPS)

    def build(owner: str | None, body: Sequence[A.Stmt], modes: dict[Loc, str | None], users: list[str],
              params: Sequence[str]) -> tuple[tuple, list[A.Let]]:
        repl: dict[Loc, list[A.Call]] = {}
        lets: dict[str, A.Let] = {}
        taken = _labels_in(body)
        for loc, mode in sorted(modes.items(), key=lambda kv: (kv[0].line, kv[0].col)):
            if mode is None:
                continue
            site = sites[loc]
            insts = sorted((i for i in site.instances if i.mode == mode
                            and (owner is None or (i.owner_instance or "") in users)), key=lambda i: i.node)
            if not insts:
                continue
            mid = _mid_expr(site, insts, owner_env, lets, body, params, units, notes)
            if mid is None:
                continue
            labels = _factor_labels(site.call.label, len(insts[0].plan.layers), taken)
            rw = SiteRewrite(mode, mid, insts[0].plan, labels)
            if site.kind == "conv":
                unit = _unit_after(loc, body)
                if not any(PUBLIC_OPS[u.name].family == "activation" for u in unit):
                    unit = unit + [A.Call("relu", ())]
                rw.unit_copies = unit
            calls, locs, final = _new_calls(site, rw, counter)
            repl[loc] = calls
            replacements.append(Replacement(site, insts, locs, final))
        return _rewrite_body(body, repl, {}), list(lets.values())

    new_bodies: dict[str, tuple] = {}
    clones: dict[str, list[A.Block]] = {}
    for b in spec.blocks:
        vs = variants.get(b.name)
        if not vs:
            continue
        params = [p.name for p in b.params]
        for vi, (modes, users) in enumerate(vs):
            body, lets = build(b.name, b.body, modes, users, params)
            body = tuple(lets) + body
            if vi == 0:
                new_bodies[b.name] = body
                continue
            suffix = "Asym" if ASYM in modes.values() else "Stack"
            name, k = f"{b.name}{suffix}", 2
            while name in existing:
                name, k = f"{b.name}{suffix}{k}", k + 1
            existing.add(name)
            clones.setdefault(b.name, []).append(A.Block(name, b.params, body, b.loc))
            for u in users:
                retarget[graph.scopes[u].loc] = name
    top_modes = variants.get(None, [({}, [])])[0][0]
    top_body, top_lets = build(None, spec.body, top_modes, [], [])
    blocks_out: list[A.Block] = []
    for b in spec.blocks:
        blocks_out.append(dataclasses.replace(b, body=_rewrite_body(new_bodies.get(b.name, b.body), {}, retarget)))
        for c in clones.get(b.name, []):
            blocks_out.append(dataclasses.replace(c, body=_rewrite_body(c.body, {}, retarget)))
    new = dataclasses.replace(spec, blocks=tuple(blocks_out), body=_rewrite_body(top_body, {}, retarget),
                              lets=spec.lets + tuple(top_lets))
    return new, replacements, notes


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
    og, ng = old.graph, new.graph
    occ = _occurrences(ng)
    out: list[Matched] = []
    problems: list[str] = []
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
                    problems.append(f"{od['path']}: its replacement was not found")
                    break
                new_nodes.extend(groups[k])
            else:
                final = occ[rep.final][k]
                if inst.elem_scope:
                    old_out, new_out = max(old_nodes), max(final)
                else:
                    old_out, new_out = inst.node, final[0]
                row = Rewrite(inst.elem_scope or od["path"], inst.mode, od["args"]["kernel"],
                              [f"{la.kernel[0]}x{la.kernel[1]}" for la in inst.plan.layers], rep.site.loc)
                row.params_before, row.macs_before = _costs(og, old_nodes)
                row.params_after, row.macs_after = _costs(ng, new_nodes)
                out.append(Matched(old_nodes, sorted(new_nodes), old_out, new_out, row))
    return out, problems


def verify(old, new, matched: list[Matched]) -> list[str]:
    """Problems with the rewrite: each replacement keeps its output shape and receptive field, every
    other node keeps its op and shape (compared in graph order)."""
    og, ng = old.graph, new.graph
    problems: list[str] = []
    for m in matched:
        o, n = og.node(m.old_out), ng.node(m.new_out)
        if o["shape"] != n["shape"]:
            problems.append(f"{m.row.path}: output shape {o['shape']} became {n['shape']}")
        if o["rf"] is not None and n["rf"] is not None and o["rf"] != n["rf"]:
            problems.append(f"{m.row.path}: receptive field {o['rf'][:2]} became {n['rf'][:2]}")
    old_done = {x for m in matched for x in m.old_nodes}
    new_done = {x for m in matched for x in m.new_nodes}
    rest_old = [n for n in og.order() if n not in old_done]
    rest_new = [n for n in ng.order() if n not in new_done]
    if len(rest_old) != len(rest_new):
        problems.append(f"{len(rest_old)} untouched nodes before, {len(rest_new)} after")
        return problems
    for o, n in zip(rest_old, rest_new, strict=True):
        do, dn = og.node(o), ng.node(n)
        if do["op"] != dn["op"] or do["shape"] != dn["shape"]:
            problems.append(f"{do['path']} ({do['op']} {do['shape']}) became {dn['path']} ({dn['op']} {dn['shape']})")
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
    from ..rules.config import OPTIONS

    overrides = dict(overrides or {})
    old = analyze(path, overrides, None, search_paths)
    if not old.ok or old.graph is None:
        raise _AnalysisFailed(old)
    spec, replacements, notes = factorize(old, kinds, grid or OPTIONS["grid"].default)
    new = elaborate(spec, old.file, overrides, search_paths)
    if not new.ok or new.graph is None:
        raise TransformError("the rewritten spec does not check: "
                             + "; ".join(f"{d.code} {d.message}" for d in new.diags.sorted() if d.is_error))
    matched, problems = match(old, new, replacements)
    problems += verify(old, new, matched)
    if problems:
        raise TransformError("the rewrite would change the network: " + "; ".join(problems[:5]))
    rows = sorted((m.row for m in matched), key=lambda r: r.path)
    return Result(spec, rows, notes, old, new)


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
    rows.append(("total", f"{len(result.rewrites)} convs", f"{count(p0)} -> {count(p1)} ({pct(p0, p1)})",
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


def transform_file(spec_path: str, out_path: str, kinds: Kinds, grid: tuple[int, int] | None,
                   params: Sequence[str], search_paths: tuple[str, ...]) -> int:
    """The ``archdsl transform`` command: rewrite, verify, write ``out_path``, print the table."""
    from ..frontend.loader import is_yaml, parse_source
    from ..frontend.printer import to_text, to_yaml
    from ..io import write_atomic
    from ..pipeline import parse_overrides

    sources = SourceCache()
    try:
        overrides = parse_overrides(list(params))
        result = transform(spec_path, kinds, grid, overrides, search_paths)
    except DiagnosticError as exc:
        print(format_text(exc.diagnostic, sources), file=sys.stderr)
        return 1
    except _AnalysisFailed as exc:
        for d in exc.res.diags.sorted():
            print(format_text(d, exc.res.sources), file=sys.stderr)
        return 1
    except TransformError as exc:
        print(f"archdsl transform: error: {exc}", file=sys.stderr)
        return 1
    text = to_yaml(result.spec) if is_yaml(out_path) else to_text(result.spec)
    # the printed spec must parse and analyse to the same network
    extra = tuple(search_paths) + (str(Path(spec_path).resolve().parent),)
    try:
        reparsed = parse_source(text, str(out_path), yaml=is_yaml(out_path))
    except DiagnosticError as exc:
        print(f"archdsl transform: error: internal: the printed spec does not parse: {exc.diagnostic.message}",
              file=sys.stderr)
        return 1
    again = elaborate(reparsed, str(Path(out_path)), overrides, extra)
    if not again.ok or again.graph.total_params() != result.after.graph.total_params() \
            or again.graph.eval_macs() != result.after.graph.eval_macs():
        print("archdsl transform: error: internal: the printed spec differs from the rewritten one", file=sys.stderr)
        return 1
    try:
        write_atomic(out_path, text)
    except OSError as exc:
        print(format_text(Diagnostic("E005", f"cannot write {out_path}: {exc.strerror or exc}", Loc(out_path, 0, 0))),
              file=sys.stderr)
        return 1
    for n in result.notes:
        print(f"note: {n}", file=sys.stderr)
    if not result.rewrites:
        print(f"nothing to factorize in {spec_path}; wrote it unchanged (reprinted) to {out_path}")
        return 0
    sys.stdout.write(report_table(result))
    if result.spec.uses and Path(out_path).resolve().parent != Path(spec_path).resolve().parent:
        print(f"note: {out_path} imports {', '.join(u.path for u in result.spec.uses)} relative to its own "
              f"directory; keep it next to {spec_path} or check it with --search-path "
              f"{os.path.dirname(os.path.abspath(spec_path))}", file=sys.stderr)
    print(f"wrote {out_path}")
    return 0
