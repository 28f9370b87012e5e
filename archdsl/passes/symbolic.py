"""Symbolic input sizes: ``input 3xHxW``.

A network checked for every input size at once.  Two things are derived:

* **the domain** -- the sizes H, W for which every layer is valid (kernel within the padded input,
  output at least 1) and the branches of every concat, residual add and gate agree.  Height and
  width are independent (every spatial op works on each axis alone), so each axis is solved on
  its own by exact integer evaluation with the shape rules of :mod:`archdsl.ops`:

  - the layer bounds are monotone (sizes never shrink as the input grows), so the smallest
    size that passes them is found by bisection; the layer failing one below it sets the bound;
  - above that size every node's size ``f`` satisfies ``f(h + P) = f(h) + P / S`` where ``S`` is
    the product of the strides before it and ``P`` the least common multiple of all those
    products (floor and ceiling division shift by whole steps).  So the difference of two merged
    branches changes by a constant ``D`` per period: in each residue class mod ``P`` the branches
    agree everywhere (``D = 0`` and equal at the first size), nowhere, or at one size
    (``D != 0``).  Two evaluations per residue decide it exactly.

  A ``flatten -> linear`` whose features depend on the size couples the axes: when the classifier
  is fixed (a concrete ``input`` declared in the spec, or an explicit ``in_features``) the domain is
  the set of sizes that keep its ``in_features``; otherwise its parameters depend on the size.

* **the expressions** -- every node's shape with sympy expressions in H and W (``⌊(H−1)/2⌋``),
  computed with the same formulas (:func:`archdsl.ops.conv_size`, :func:`archdsl.ops.pool_size`),
  and the MACs as a polynomial in them.  Channels and parameters come from the concrete pipeline
  at a representative size inside the domain (they do not depend on the size).

sympy is imported here only; this module is imported only when an input size is symbolic.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sympy

from ..diagnostics import Diagnostic, DiagnosticBag, Loc
from ..ir import Graph, display_path
from ..ops import OPS, ChannelsLast, Costs, ShapeError, _conv_out, _pool_out, conv_size, pool_size
from ..ops import _same as _same_shape

#: The size symbols a spec may use, in input order (height, width).
SYMBOLS = ("H", "W")
_H = sympy.Symbol("H", integer=True, positive=True)
_W = sympy.Symbol("W", integer=True, positive=True)
SYMBOL = {"H": _H, "W": _W}

#: Ops whose output spatial size is not their first input's.
_RESIZING = frozenset({"conv2d", "maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool", "global_avgpool",
                       "global_maxpool", "flatten", "permute", "linear"})
_MERGES = frozenset({"concat", "add", "mul"})
#: Where an axis search gives up: no layer needs an input this large to fit.
_SEARCH_LIMIT = 1 << 20


def is_symbolic(shape: Sequence | None) -> bool:
    """Does an input shape name a symbolic size (``(3, "H", "W")``)?"""
    return shape is not None and any(isinstance(d, str) for d in shape)


# ------------------------------------------------------------------------------------------ printing


class _Printer(sympy.printing.str.StrPrinter):
    """sympy's printer with floor and ceiling as brackets: ``⌊(H - 1)/2⌋``."""

    def _print_floor(self, e: sympy.Expr) -> str:
        return "\u230a" + self._fraction(e.args[0]) + "\u230b"

    def _print_ceiling(self, e: sympy.Expr) -> str:
        return "\u2308" + self._fraction(e.args[0]) + "\u2309"

    def _print_Min(self, e: sympy.Expr) -> str:
        return "min(" + ", ".join(self._print(a) for a in e.args) + ")"

    def _fraction(self, arg: sympy.Expr) -> str:
        num, den = sympy.fraction(sympy.together(arg))
        text = self._print(num)
        if den == 1:
            return text
        if not (num.is_Symbol or num.is_Integer or num.func in (sympy.floor, sympy.ceiling)):
            text = f"({text})"
        return f"{text}/{self._print(den)}"


_PRINTER = _Printer()


def expr_text(e: object) -> str:
    """A size or count expression as people read it: ``⌊(H−1)/2⌋+1``, ``64·⌊(H−1)/32⌋·⌊(W−1)/32⌋``."""
    if isinstance(e, str):
        return e
    return _expr_text(e)


@functools.lru_cache(maxsize=4096)
def _expr_text(e: object) -> str:
    # cached: printing costs about a millisecond, and a diagram prints the same few sizes on
    # thousands of nodes and edges (DenseNet-201: 11,000 prints)
    text = _PRINTER.doprint(e)
    return text.replace(" - ", "\u2212").replace(" + ", "+").replace("*", "\u00b7").replace("-", "\u2212")


def expr_source(e: object) -> str | int:
    """A dimension for machines: an int as is, an expression in sympy's syntax (``floor(H/2 - 1/2)``)."""
    if isinstance(e, int):
        return e
    e = real(e)
    return int(e) if e.is_Integer else sympy.sstr(e)


# ------------------------------------------------------------------------------------------ arithmetic


def _fold(a: sympy.Expr, rounding: type) -> tuple[sympy.Expr, sympy.Expr] | None:
    """``(u, m)`` when ``a = rounding(u) + m`` with an integer-valued ``m`` free of rounding: then
    ``rounding((a) / s) = rounding((u + m) / s)`` for floor (and for ceiling), which keeps a chain of
    strided layers one bracket deep (``⌊(⌊(H−1)/2⌋−2)/2⌋ = ⌊(H−5)/4⌋``)."""
    terms = sympy.Add.make_args(sympy.expand(a))
    rounded = [t for t in terms if t.func is rounding]
    rest = [t for t in terms if t.func is not rounding]
    if len(rounded) != 1 or any(t.has(sympy.floor, sympy.ceiling, sympy.Min) for t in rest):
        return None
    m = sympy.Add(*rest)
    if not all(c.is_integer for c in sympy.Poly(m, _H, _W).coeffs()) if m.free_symbols else not m.is_integer:
        return None
    return rounded[0].args[0], m


def sym_floordiv(a: object, s: int) -> sympy.Expr:
    """Exact ``a // s`` for a symbolic size."""
    a = sympy.sympify(a)
    if s == 1 or not a.free_symbols:
        return a if s == 1 else sympy.Integer(int(a) // s)
    folded = _fold(a, sympy.floor)
    if folded is not None:
        return sympy.floor((folded[0] + folded[1]) / s)
    # -x // s on a ceiling: -(ceil(u) + m) // s == -ceil((u + m) / s)
    neg = _fold(-a, sympy.ceiling)
    if neg is not None:
        return -sympy.ceiling((neg[0] + neg[1]) / s)
    # a ceiling division (ceil_mode pools: -(-x // s)) of a floor: -(floor(u) + m) // s ==
    # -((floor(u) + m + s - 1) // s) == -floor((u + m + s - 1) / s), so ⌊(H+1)/4⌋ rather than
    # 1−⌊(3−⌊(H+1)/2⌋)/2⌋
    neg = _fold(-a, sympy.floor)
    if neg is not None:
        return -sympy.floor((neg[0] + neg[1] + s - 1) / s)
    return sympy.floor(a / s)


def _absorb(e: sympy.Expr) -> sympy.Expr:
    """``⌊u⌋ + c`` as ``⌊u + c⌋`` for a constant ``c``: ``⌊(H−1)/2⌋`` rather than ``⌊(H−3)/2⌋+1``."""
    for rounding in (sympy.floor, sympy.ceiling):
        folded = _fold(e, rounding)
        if folded is not None and folded[1].is_Integer:
            return rounding(folded[0] + folded[1])
    return e


def _sym_min(a: object, b: object) -> sympy.Expr:
    return sympy.Min(a, b)


# ------------------------------------------------------------------------------------------ per-axis evaluation


@dataclass
class Failure:
    """A size-dependent check that fails: the node, its axis (0: height, 1: width), and why."""

    node: int
    axis: int
    message: str
    merge: bool = False


@dataclass
class Walk:
    """One evaluation of the spatial sizes: per node ``(layout, (h, w))``, ``None`` once flat."""

    sizes: dict[int, tuple | None] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)


def _spatial_positions(shape_layout: bool, dims: tuple[int, ...]) -> tuple[int, int] | None:
    """Where height and width go after ``permute(dims)`` of a (channels-last?) tensor: their
    positions (0, 1) or (1, 0) in the result; None when the permute does not keep a feature map."""
    axes = ("N", "H", "W", "C") if shape_layout else ("N", "C", "H", "W")
    new = [axes[d] for d in dims if d < len(axes)]
    spatial = [a for a in new if a in ("H", "W")]
    if len(spatial) != 2:
        return None
    return (0, 1) if spatial == ["H", "W"] else (1, 0)


def _axis_step(op: str, a: dict, n: object, axis: int, integer: bool, failures: list[Failure], nid: int) -> object:
    """One axis through a conv or pool: PyTorch's size, with the failure recorded (integers) or
    the exact expression (symbols)."""
    k, s = a["kernel"][axis], (a["stride"] if a["stride"] is not None else a["kernel"])[axis]
    d = a.get("dilation", (1, 1))[axis]
    if op == "conv2d":
        p = a["padding"][axis]
        if not integer:
            return _absorb(conv_size(n, k, s, p, d, sym_floordiv))
        try:
            return _conv_out(n, k, s, p, d, ("height", "width")[axis], op)
        except ShapeError as exc:
            failures.append(Failure(nid, axis, exc.message))
            return conv_size(n, k, s, p, d)
    p = a["padding"][axis]
    if not integer:
        return _absorb(pool_size(n, k, s, p, d, a["ceil_mode"], sym_floordiv, _sym_min))
    try:
        return _pool_out(n, k, s, p, d, a["ceil_mode"], ("height", "width")[axis], op)
    except ShapeError as exc:
        failures.append(Failure(nid, axis, exc.message))
        return pool_size(n, k, s, p, d, a["ceil_mode"])


def _resize(op: str, a: dict, src: tuple, integer: bool, failures: list[Failure], nid: int) -> tuple | None:
    """The spatial entry ``(channels_last, (h, w))`` after a resizing op."""
    last, (h, w) = src
    if op == "conv2d" and a["padding"] == "same":
        return src
    if op in ("conv2d", "maxpool", "avgpool"):
        return last, tuple(_axis_step(op, a, n, i, integer, failures, nid) for i, n in enumerate((h, w)))
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        return last, tuple(a["size"])
    if op in ("global_avgpool", "global_maxpool"):
        return last, (1, 1)
    if op == "flatten":
        return None
    if op == "permute":
        order = _spatial_positions(last, a["dims"])
        if order is None:
            return None
        new_last = a["dims"][-1] == (1 if not last else 3)
        return new_last, (h, w) if order == (0, 1) else (w, h)
    return src  # linear on a channels-last tensor keeps its positions


def _merge_checks(op: str, nid: int, ins: list[tuple | None], failures: list[Failure]) -> None:
    """Integer agreement of a merge's inputs along each axis (concat and add: equal; a gate: equal
    or 1)."""
    first = ins[0]
    for other in ins[1:]:
        if first is None or other is None:
            continue
        for axis in (0, 1):
            x, g = first[1][axis], other[1][axis]
            if x != g and not (op == "mul" and g == 1):
                failures.append(Failure(nid, axis, f"{op} inputs differ in {('height', 'width')[axis]}: "
                                                   f"{x} vs {g}", merge=True))


def walk(graph: Graph, h: object, w: object, integer: bool = True) -> Walk:
    """The spatial size of every node for an input of ``h`` x ``w`` (ints: with failures recorded;
    sympy expressions: exact formulas)."""
    out = Walk()
    for nid in graph.order():
        data = graph.node(nid)
        op = data["op"]
        if op == "input":
            out.sizes[nid] = (False, (h, w))
            continue
        ins = [out.sizes.get(p) for p in graph.inputs(nid)]
        if not ins or op == "unknown":
            out.sizes[nid] = None
            continue
        if op in _MERGES and integer:
            _merge_checks(op, nid, ins, out.failures)
        src = ins[0]
        if src is None:
            out.sizes[nid] = None
        elif op in _RESIZING:
            out.sizes[nid] = _resize(op, data["args"], src, integer, out.failures, nid)
        else:
            out.sizes[nid] = src
    return out


def _rates(graph: Graph) -> dict[int, int]:
    """Per node, the product of the strides before it (0 once its size is constant), per axis pair."""
    rate: dict[int, tuple[int, int]] = {}
    for nid in graph.order():
        data = graph.node(nid)
        op, a = data["op"], data["args"]
        preds = graph.inputs(nid)
        if not preds:
            rate[nid] = (1, 1)
            continue
        r = rate[preds[0]]
        if op in ("conv2d", "maxpool", "avgpool") and not (op == "conv2d" and a["padding"] == "same"):
            st = a["stride"] if a["stride"] is not None else a["kernel"]
            r = (r[0] * st[0], r[1] * st[1])
        elif op in ("adaptive_avgpool", "adaptive_maxpool", "global_avgpool", "global_maxpool"):
            r = (0, 0)
        elif op == "permute" and _spatial_positions(False, a["dims"]) == (1, 0):
            r = (r[1], r[0])
        rate[nid] = r
    return rate


def period(graph: Graph, axis: int) -> int:
    """The least common multiple of every stride product along ``axis``: sizes shift by whole steps
    when the input grows by it."""
    return math.lcm(1, *(r[axis] for r in _rates(graph).values() if r[axis]))


# ------------------------------------------------------------------------------------------ the domain


@dataclass
class AxisDomain:
    """The valid sizes along one axis: ``start`` and up, in the residues ``residues`` mod
    ``modulus`` (all of them when ``modulus`` is 1), plus the isolated sizes ``points``."""

    axis: int
    start: int | None
    modulus: int = 1
    residues: tuple[int, ...] = (0,)
    points: tuple[int, ...] = ()
    #: The layer failing one below ``start`` and its message (None when ``start`` is 1).
    bound: tuple[int, str] | None = None
    #: Merges that exclude sizes above ``start``: node -> (its own modulus, residues, points).
    merges: dict[int, tuple[int, tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``H`` or ``W``."""
        return SYMBOLS[self.axis]

    @property
    def empty(self) -> bool:
        """No size is valid."""
        return self.start is None or (not self.residues and not self.points)

    def contains(self, n: int) -> bool:
        """Is ``n`` a valid size along this axis?"""
        if self.start is None or n < self.start:
            return False
        return n in self.points or n % self.modulus in self.residues

    def smallest(self) -> int | None:
        """The smallest valid size, None when there is none."""
        if self.empty:
            return None
        assert self.start is not None
        cands = [n for n in range(self.start, self.start + self.modulus) if n % self.modulus in self.residues]
        return min(cands + list(self.points))

    def condition(self) -> str:
        """``H ≥ 75``, ``H ≥ 33 and H ≡ 1 (mod 32)``, ``H ∈ {35, 67}``."""
        return _condition(self.name, self.start, self.modulus, self.residues, self.points)


def _condition(name: str, start: int | None, modulus: int, residues: Sequence[int], points: Sequence[int]) -> str:
    parts = []
    if start is not None and residues:
        text = f"{name} \u2265 {start}"
        if modulus == 2 and len(residues) == 1:
            text += f" and {name} {'odd' if residues[0] else 'even'}"
        elif modulus > 1:
            text += f" and {name} \u2261 {', '.join(map(str, residues))} (mod {modulus})"
        parts.append(text)
    if points:
        parts.append(f"{name} \u2208 {{{', '.join(map(str, points))}}}")
    return " or ".join(parts) if parts else f"no {name}"


def _smallest_period(modulus: int, residues: set[int]) -> tuple[int, tuple[int, ...]]:
    """The shortest period describing the residue set ``residues`` mod ``modulus``."""
    for m in (d for d in range(1, modulus + 1) if modulus % d == 0):
        if all((r + m) % modulus in residues for r in residues):
            return m, tuple(sorted({r % m for r in residues}))
    return modulus, tuple(sorted(residues))


def _threshold(graph: Graph, axis: int) -> tuple[int | None, tuple[int, str] | None]:
    """The smallest size from which every layer fits along ``axis`` (bisection: the layer bounds
    are monotone), and the first layer failing one below it."""

    def fails(n: int) -> list[Failure]:
        return [f for f in walk(graph, n, n).failures if f.axis == axis and not f.merge]

    if not fails(1):
        return 1, None
    lo, hi = 1, 2
    while failing := fails(hi):
        lo, hi = hi, hi * 2
        if hi > _SEARCH_LIMIT:
            # no size up to the limit: the layer failing there is the one to blame (E216 names it)
            return None, (failing[0].node, failing[0].message)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fails(mid) else (lo, mid)
    first = fails(hi - 1)[0]
    return hi, (first.node, first.message)


def _merge_sets(graph: Graph, axis: int, start: int, modulus: int) -> dict[int, dict[int, object]]:
    """Per merge, per residue ``r`` in ``[start, start + modulus)``: ``"all"`` or the set of sizes
    (at most one, or two for a gate) where its inputs agree (exact: each difference moves by a constant per period)."""
    lo = [walk(graph, r, r) for r in range(start, start + modulus)]
    hi = [walk(graph, r + modulus, r + modulus) for r in range(start, start + modulus)]
    out: dict[int, dict[int, object]] = {}
    for nid in graph.order():
        op = graph.node(nid)["op"]
        if op not in _MERGES:
            continue
        preds = graph.inputs(nid)
        per: dict[int, object] = {}
        for i, r in enumerate(range(start, start + modulus)):
            per[r] = _agreement(op, [lo[i].sizes.get(p) for p in preds], [hi[i].sizes.get(p) for p in preds],
                                axis, r, modulus)
        if any(v != "all" for v in per.values()):
            out[nid] = per
    return out


def _agreement(op: str, at: list, nxt: list, axis: int, r: int, modulus: int) -> object:
    """Where, in the class ``r + k * modulus``, a merge's inputs agree along ``axis``."""
    if any(s is None for s in at):
        return "all"  # flat inputs: nothing spatial to agree on
    x0, x1 = at[0][1][axis], nxt[0][1][axis]
    result: object = "all"
    for g0s, g1s in zip(at[1:], nxt[1:]):
        g0, g1 = g0s[1][axis], g1s[1][axis]
        cond = _linear_zero(g0 - x0, (g1 - g0) - (x1 - x0))
        if op == "mul":  # a gate broadcasts where it is 1
            cond = _union(cond, _linear_zero(g0 - 1, g1 - g0))
        result = _intersect(result, cond)
    if result == "all":
        return result
    return frozenset(r + k * modulus for k in result)  # type: ignore[attr-defined]


def _linear_zero(v0: int, step: int) -> object:
    """Where ``v0 + k * step`` is 0 for ``k >= 0``: ``"all"`` or the set of those ``k`` (one or none)."""
    if step == 0:
        return "all" if v0 == 0 else frozenset()
    if v0 % step == 0 and -v0 // step >= 0:
        return frozenset({-v0 // step})
    return frozenset()


def _union(a: object, b: object) -> object:
    if a == "all" or b == "all":
        return "all"
    return a | b  # type: ignore[operator]


def _intersect(a: object, b: object) -> object:
    if a == "all":
        return b
    if b == "all":
        return a
    return a & b  # type: ignore[operator]


def axis_domain(graph: Graph, axis: int) -> AxisDomain:
    """The valid sizes along one axis (see the module docstring for why this is exact)."""
    start, bound = _threshold(graph, axis)
    if start is None:
        return AxisDomain(axis, None, bound=bound)
    modulus = period(graph, axis)
    merges = _merge_sets(graph, axis, start, modulus)
    residues: set[int] = set()
    points: set[int] = set()
    for r in range(start, start + modulus):
        verdict: object = "all"
        for per in merges.values():
            verdict = _intersect(verdict, per[r])
        if verdict == "all":
            residues.add(r % modulus)
        else:
            points |= verdict  # type: ignore[arg-type]
    own = {}
    for nid, per in merges.items():
        res = {r % modulus for r, v in per.items() if v == "all"}
        m, rs = _smallest_period(modulus, res) if res else (modulus, ())
        own[nid] = (m, rs, tuple(sorted(n for v in per.values() if v != "all" for n in v)))
    m, rs = _smallest_period(modulus, residues) if residues else (modulus, ())
    return AxisDomain(axis, start, m, rs, tuple(sorted(points)), bound, own)


@dataclass
class Classifier:
    """A ``flatten -> linear`` whose features depend on the size: the linear node, the flatten's
    channels, the fixed ``in_features`` (None: free, its parameters follow the size)."""

    linear: int
    flatten: int
    channels: int
    in_features: int | None


@dataclass
class Domain:
    """Every valid input size: the two axes, and for a fixed-size classifier the sizes it accepts
    (``accepted``: ``(heights, widths)`` pairs of explicit size lists)."""

    h: AxisDomain
    w: AxisDomain
    classifier: Classifier | None = None
    accepted: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] | None = None
    #: The sizes given as numbers (``input 3x224xW``): (height or None, width or None).
    given: tuple[int | None, int | None] = (None, None)

    @property
    def empty(self) -> bool:
        """No input size is valid (a size given as a number counts: it must be valid)."""
        if self.h.empty or self.w.empty or self.accepted == ():
            return True
        if any(g is not None and not ax.contains(g) for ax, g in zip((self.h, self.w), self.given)):
            return True
        return self.accepted is not None and not self._boxes()

    def _boxes(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """The accepted ``(heights, widths)`` boxes narrowed to the given sizes."""
        out = []
        for hs, ws in self.accepted or ():
            hs, ws = ((g,) if g in ns else () if g is not None else ns for ns, g in zip((hs, ws), self.given))
            if hs and ws:
                out.append((hs, ws))
        return out

    def contains(self, h: int, w: int) -> bool:
        """Is ``h`` x ``w`` a valid input size?"""
        if not (self.h.contains(h) and self.w.contains(w)):
            return False
        if any(g is not None and n != g for n, g in zip((h, w), self.given)):
            return False
        return self.accepted is None or any(h in hs and w in ws for hs, ws in self.accepted)

    def smallest(self) -> tuple[int, int] | None:
        """The smallest valid size (per axis; the first accepted one for a fixed classifier)."""
        if self.empty:
            return None
        if self.accepted is not None:
            hs, ws = self._boxes()[0]
            return hs[0], ws[0]
        return tuple(g if g is not None else ax.smallest()  # type: ignore[return-value]
                     for ax, g in zip((self.h, self.w), self.given))

    def text(self) -> str:
        """``H, W ≥ 75``; ``H ≥ 33 and H ≡ 1 (mod 32), W ≥ 33 and W ≡ 1 (mod 32)``; for a fixed classifier
        ``(H, W) ∈ 224–255 × 224–255``; a size given as a number as itself, ``W ≥ 75 (H = 80)``."""
        gh, gw = self.given
        fixed = ", ".join(f"{n} = {g}" for n, g in zip(SYMBOLS, self.given) if g is not None)
        if self.accepted is not None:
            boxes = " or ".join(" and ".join(f"{n} \u2208 {_runs(ns)}" for n, ns, g in zip(SYMBOLS, box, self.given)
                                             if g is None) for box in self._boxes()) or "no size"
            if not fixed:
                return boxes
            return fixed if gh is not None and gw is not None else f"{boxes} ({fixed})"
        hc, wc = self.h.condition(), self.w.condition()
        if fixed:
            free = [c for c, g in ((hc, gh), (wc, gw)) if g is None]
            return f"{free[0]} ({fixed})" if free else fixed
        if hc.replace("H", "W") == wc:
            return hc.replace("H", "H, W")
        return f"{hc}; {wc}"


def _runs(ns: Sequence[int]) -> str:
    """``224–255``, ``{35, 67}``, ``224–231, 240``."""
    runs: list[list[int]] = []
    for n in ns:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = ", ".join(f"{a}\u2013{b}" if b > a else str(a) for a, b in runs)
    return text if len(runs) == 1 else "{" + text + "}"


def _classifiers(graph: Graph) -> list[Classifier]:
    """Every ``flatten -> linear`` on a size-dependent feature map, in graph order (none when every
    flatten follows a constant size: a global or adaptive pool), the main head's and the aux heads';
    ops that keep the vector's length (``flatten -> dropout -> linear``) may stand between the two.
    Their channels as the concrete shapes give them (0 before the concrete passes ran)."""
    rates = _rates(graph)
    out = []
    for nid in graph.order():
        if graph.node(nid)["op"] != "flatten":
            continue
        src = graph.inputs(nid)[0]
        if not any(rates[src]):
            continue
        shape = graph.node(src)["shape"]
        channels = shape[0] if shape is not None else 0
        for lin in _linears_after(graph, nid):
            out.append(Classifier(lin, nid, channels, graph.node(lin)["args"]["in_features"]))
    return out


#: Norms that keep a flat vector's length (BatchNorm1d after a flatten): a linear behind them still
#: receives the flatten's features.
_LENGTH_KEEPING_NORMS = frozenset(("batchnorm", "layernorm"))


def _linears_after(graph: Graph, nid: int) -> list[int]:
    """The linears fed by ``nid``'s vector directly or through length-keeping ops (their in_features
    are the vector's length)."""
    found, todo, seen = [], sorted(graph.g.succ[nid]), set()
    while todo:
        succ = todo.pop(0)
        if succ in seen:
            continue
        seen.add(succ)
        spec = OPS.get(graph.node(succ)["op"])
        if graph.node(succ)["op"] == "linear":
            found.append(succ)
        elif spec is not None and (spec.shape is _same_shape or spec.name in _LENGTH_KEEPING_NORMS):
            todo += sorted(graph.g.succ[succ])
    return found


def _axis_values(graph: Graph, node: int, axis: int, dom: AxisDomain, target: int) -> tuple[int, ...]:
    """Valid sizes along ``axis`` for which ``node``'s size along it is ``target`` (it never shrinks
    as the input grows: two bisections bound the interval)."""
    assert dom.start is not None

    def size(n: int) -> int:
        entry = walk(graph, n, n).sizes[node]
        return entry[1][axis] if entry else 0

    def first_at_least(v: int) -> int:
        lo, hi = dom.start - 1, dom.start  # type: ignore[operator]
        while size(hi) < v:
            lo, hi = hi, hi * 2
            if hi > _SEARCH_LIMIT:
                return _SEARCH_LIMIT
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if size(mid) >= v else (mid, hi)
        return hi

    a, b = first_at_least(target), first_at_least(target + 1)
    return tuple(n for n in range(a, b) if dom.contains(n) and size(n) == target)


def _accepted(graph: Graph, dom: Domain, clf: Classifier) -> tuple:
    """The sizes that keep the classifier's ``in_features``: each factorization of the flatten's
    per-channel features into a height and a width."""
    assert clf.in_features is not None
    if clf.channels <= 0 or clf.in_features % clf.channels:
        return ()
    cells = clf.in_features // clf.channels
    src = graph.inputs(clf.flatten)[0]
    out = []
    for a in (d for d in range(1, cells + 1) if cells % d == 0):
        hs = _axis_values(graph, src, 0, dom.h, a)
        ws = _axis_values(graph, src, 1, dom.w, cells // a) if hs else ()
        if hs and ws:
            out.append((hs, ws))
    return tuple(out)


def _meet(a: tuple, b: tuple) -> tuple:
    """The sizes both classifiers accept: the pairwise intersections of their size boxes."""
    out = []
    for ha, wa in a:
        for hb, wb in b:
            hs, ws = tuple(sorted(set(ha) & set(hb))), tuple(sorted(set(wa) & set(wb)))
            if hs and ws:
                out.append((hs, ws))
    return tuple(sorted(out))


def domain(graph: Graph, probe: Callable[[tuple[int, int]], list[tuple[int, int]] | None] = lambda size: None,
           declared: tuple[int, int] | None = None) -> Domain:
    """The input sizes for which the network is valid.  For size-dependent classifiers, ``probe``
    runs the concrete passes at a size and gives each one's ``(flatten channels, flatten features)``:
    the features at the ``declared`` size fix its ``in_features`` (unless the spec gives them).  With
    several (aux heads), the sizes are those every one accepts."""
    dom = Domain(axis_domain(graph, 0), axis_domain(graph, 1))
    clfs = _classifiers(graph)
    if not clfs or dom.h.empty or dom.w.empty:
        return dom
    at = declared or (dom.h.smallest(), dom.w.smallest())
    found = probe(at)  # type: ignore[arg-type]
    for clf, got in zip(clfs, found or ()):
        if not got[0]:
            continue
        clf.channels = got[0]
        if clf.in_features is None and declared is not None:
            clf.in_features = got[1]
    dom.classifier = clfs[0]
    for clf in clfs:
        if clf.in_features is None or not clf.channels:
            continue
        own = _accepted(graph, dom, clf)
        # the classifier named by E216 when nothing is left: the first that cuts the sizes to none
        if dom.accepted is None or dom.accepted:
            dom.classifier = clf
        dom.accepted = own if dom.accepted is None else _meet(dom.accepted, own)
    return dom


# ------------------------------------------------------------------------------------------ diagnostics


def domain_diagnostics(graph: Graph, dom: Domain, where: Loc) -> list[Diagnostic]:
    """The findings about the domain: one info per layer that sets a bound and per merge that
    restricts the sizes (I201, I202), the domain itself (I200), or the error when no size is valid
    (E216)."""
    out: list[Diagnostic] = []
    bounds: dict[int, list[str]] = {}
    for ax, given in zip((dom.h, dom.w), dom.given):
        # an axis given as a valid number (input 3x80xW) has no bound to report; an invalid one keeps
        # it: the bound explains the E216
        if ax.bound is not None and ax.start is not None and (given is None or not ax.contains(given)):
            bounds.setdefault(ax.bound[0], []).append((ax.name, ax.start, ax.bound[1]))
    for nid, items in bounds.items():
        data = graph.node(nid)
        names = ", ".join(n for n, _, _ in items)
        if len({s for _, s, _ in items}) == 1:  # one bound for both axes: said once
            what, below = f"{names} \u2265 {items[0][1]}", f"at {names} = {items[0][1] - 1}: {items[0][2]}"
        else:
            what = ", ".join(f"{n} \u2265 {s}" for n, s, _ in items)
            below = "; ".join(f"at {n} = {s - 1}: {m}" for n, s, m in items)
        out.append(Diagnostic("I201", f"this layer sets the smallest input size, {what} ({below})", data["loc"],
                              severity="info", path=display_path(data["path"]),
                              evidence={"bound": {n: s for n, s, _ in items}}))
    out += _merge_diagnostics(graph, dom)
    if dom.empty:
        if not any(d.code == "E216" for d in out):
            out.append(_empty_error(graph, dom, where))
    else:
        out.append(Diagnostic("I200", f"valid for {dom.text()}", where, severity="info",
                               evidence={"domain": domain_json(dom)}))
    return out


def _merge_diagnostics(graph: Graph, dom: Domain) -> list[Diagnostic]:
    out = []
    for ax in (dom.h, dom.w):
        for nid, (m, rs, pts) in ax.merges.items():
            data = graph.node(nid)
            kind = {"concat": "concat branches", "add": "residual body and shortcut", "mul": "gate and input"}[
                data["op"]]
            if not rs and not pts:
                out.append(Diagnostic(
                    "E216", f"no input {('height', 'width')[ax.axis]} makes the {kind} agree ({ax.name} \u2265 "
                            f"{ax.start} checked exactly)", data["loc"], path=display_path(data["path"]),
                    hint="give every branch the same total stride and padding"))
                continue
            cond = _condition(ax.name, ax.start, m, rs, pts)
            out.append(Diagnostic("I202", f"the {kind} agree only when {cond}", data["loc"], severity="info",
                                  path=display_path(data["path"])))
    return out


def _empty_error(graph: Graph, dom: Domain, where: Loc) -> Diagnostic:
    """E216 for an empty domain not explained by one merge: the classifier, or merges together."""
    for ax, g in zip((dom.h, dom.w), dom.given):
        if g is not None and not ax.empty and not ax.contains(g):
            return Diagnostic("E216", f"the input {('height', 'width')[ax.axis]} {g} is not valid: the network needs "
                                      f"{ax.condition()}", where)
    clf = dom.classifier
    if clf is not None and dom.accepted is not None and not dom._boxes():
        data = graph.node(clf.linear)
        fixed = ", ".join(f"{n} = {g}" for n, g in zip(SYMBOLS, dom.given) if g is not None)
        with_given = f" with {fixed} (it accepts {Domain(dom.h, dom.w, clf, dom.accepted).text()})" if dom.accepted \
            else ""
        return Diagnostic("E216", f"no input size gives this classifier its {clf.in_features} in_features{with_given}",
                          data["loc"], path=display_path(data["path"]),
                          hint="end the features with a global or adaptive pool to accept every size")
    for ax in (dom.h, dom.w):
        if ax.start is None and ax.bound is not None:
            data = graph.node(ax.bound[0])
            return Diagnostic("E216", f"no input {('height', 'width')[ax.axis]} up to {_SEARCH_LIMIT:,} fits this "
                                      f"layer (at {_SEARCH_LIMIT:,}: {ax.bound[1]})", data["loc"],
                              path=display_path(data["path"]))
    return Diagnostic("E216", f"no input size is valid ({dom.h.condition()}; {dom.w.condition()})", where)


def domain_json(dom: Domain) -> dict:
    """The domain for machines: per axis the start, modulus, residues and points; the accepted
    sizes of a fixed classifier."""
    doc: dict = {"text": dom.text() if not dom.empty else None}
    for ax in (dom.h, dom.w):
        doc[ax.name] = {"min": ax.start, "modulus": ax.modulus, "residues": list(ax.residues),
                        "points": list(ax.points)}
    if dom.accepted is not None:
        doc["accepted"] = [{"H": list(hs), "W": list(ws)} for hs, ws in dom.accepted]
    return doc


# ------------------------------------------------------------------------------------------ expressions


def annotate(graph: Graph) -> None:
    """Set ``sym_shape`` and ``sym_costs`` on every shaped node: the concrete shape (computed at a
    representative size) with its height and width replaced by expressions in H and W."""
    sizes = walk(graph, _H, _W, integer=False).sizes
    for nid in graph.order():
        data = graph.node(nid)
        shape = data["shape"]
        if shape is None:
            continue
        entry = sizes.get(nid)
        data["sym_shape"] = _substitute(shape, entry, graph, nid, sizes)
    for nid in graph.order():
        data = graph.node(nid)
        if data.get("sym_shape") is None:
            continue
        ins = [graph.node(p).get("sym_shape") for p in graph.inputs(nid)]
        if any(s is None for s in ins):
            continue
        # costs are polynomials in the sizes (each size a symbol of its own, see _atom): they
        # collect into one term per grid, 393216·⌊(H−43)/32⌋·⌊(W−43)/32⌋
        cost = OPS[data["op"]].cost(data["args"], [_atoms(s) for s in ins], _atoms(data["sym_shape"])) if ins \
            else Costs()
        data["sym_costs"] = Costs(*(_int_or(v) for v in (cost.params, cost.macs)))


#: Symbols standing for size expressions in cost polynomials (named as the size prints).
_ATOMS: dict[sympy.Symbol, sympy.Expr] = {}
#: The other way: each size expression's symbol (printing one costs about 1 ms, and a network has
#: thousands of layers on a few grids: DenseNet-201 printed 6,400 sizes, 8 s of a 10 s check).
_ATOM_OF: dict[sympy.Expr, sympy.Symbol] = {}


def _atom(e: object) -> object:
    """A size as a symbol of its own (an int or H, W as themselves)."""
    e = sympy.sympify(e)
    if e.is_Integer:
        return int(e)
    if e.is_Symbol:
        return e
    if e.is_Mul:
        # a flatten's length, 8·⌊(H−1)/2⌋·⌊(W−1)/2⌋: the product of the sizes' own atoms, so that a
        # linear's cost collects with the rest of its grid (80·⌊…⌋·⌊…⌋, not 10·(8·⌊…⌋·⌊…⌋))
        return sympy.Mul(*(_atom(a) for a in e.args))
    if e in _ATOM_OF:
        return _ATOM_OF[e]
    text = expr_text(e)
    name = text if text[0] in "\u230a\u2308" and text[-1] in "\u230b\u2309" else f"({text})"
    sym = sympy.Symbol(name, integer=True, positive=True)
    _ATOMS[sym] = e
    _ATOM_OF[e] = sym
    return sym


def _atoms(shape: tuple) -> tuple:
    new = tuple(d if isinstance(d, int) else _atom(d) for d in shape)
    return ChannelsLast(new) if isinstance(shape, ChannelsLast) else new


def real(e: object) -> object:
    """A cost polynomial with its size symbols replaced by the expressions they stand for."""
    return e if isinstance(e, int) else sympy.sympify(e).xreplace(_ATOMS)


def _substitute(shape: tuple, entry: tuple | None, graph: Graph, nid: int, sizes: dict) -> tuple:
    """``shape`` with its spatial dimensions as expressions (a flat vector after a size-dependent
    flatten: its features as an expression)."""
    if entry is not None and len(shape) == 3:
        h, w = (_int_or(e) for e in entry[1])
        if isinstance(shape, ChannelsLast):
            return ChannelsLast((h, w, shape[2]))
        return (shape[0], h, w)
    if graph.node(nid)["op"] == "flatten":
        src = graph.inputs(nid)[0]
        prev = graph.node(src).get("sym_shape")
        if prev is not None:
            # kept a product, 8·(H−2)·(W−2), as the sizes print (and as _atom splits it for the costs)
            return (_int_or(sympy.Mul(*prev)),)
    return shape


def _int_or(e: object) -> object:
    """A constant expression as a plain int (so concrete dimensions print and compare as before)."""
    e = sympy.sympify(e)
    return int(e) if e.is_Integer else e


def evaluate(e: object, h: int, w: int) -> int:
    """An expression's value at ``H = h``, ``W = w``."""
    if isinstance(e, int):
        return e
    return int(real(e).subs({_H: h, _W: w}))


def total(graph: Graph, key: str, nodes: Sequence[int] | None = None) -> object:
    """The sum of ``sym_costs.<key>`` over ``nodes`` (every node by default), expanded."""
    if key not in ("params", "macs"):
        raise ValueError(f"no cost named {key!r}")
    ids = graph.g.nodes if nodes is None else nodes
    costs = [graph.node(n).get("sym_costs") or graph.node(n)["costs"] for n in ids]
    vals = [c.params if key == "params" else c.macs for c in costs]
    return _int_or(sympy.Add(*vals))


# ------------------------------------------------------------------------------------------ the pass


def run(graph: Graph, declared: tuple | None, where: Loc,
        concrete: Callable[[tuple, DiagnosticBag], None]) -> list[Diagnostic]:
    """The whole symbolic analysis of a graph whose input is ``graph.input_shape`` = ``(C, "H", "W")``
    (or with one axis given): find the domain, run ``concrete`` (the concrete shape and cost passes, into a bag)
    at a representative size inside it, then annotate the expressions.  ``declared``: the spec's own
    concrete input, which fixes a size-dependent classifier."""
    sym = graph.input_shape
    assert sym is not None
    c = sym[0]
    dom = domain(graph, lambda size: _probe(graph, (c, *size), concrete),
                 (declared[1], declared[2]) if declared is not None else None)
    given = [d if isinstance(d, int) else None for d in sym[1:]]
    dom.given = (given[0], given[1])
    diags = domain_diagnostics(graph, dom, where)
    graph.symbolic = SymbolicInfo(tuple(sym), dom)
    rep = dom.smallest()
    if rep is None:
        graph.input_shape = None
        return diags
    if declared is not None and dom.contains(declared[1], declared[2]):
        rep = declared[1], declared[2]
    rep = tuple(g if g is not None else r for g, r in zip(given, rep))
    graph.input_shape = (c, *rep)
    graph.symbolic.representative = graph.input_shape
    bag = DiagnosticBag()
    concrete(graph.input_shape, bag)
    diags = [*bag, *diags]
    annotate(graph)
    # an axis given as a number stays that number in the expressions
    for ax, g in zip((_H, _W), given):
        if g is not None:
            for nid in graph.order():
                _fix_axis(graph.node(nid), ax, g)
    return diags


def _fix_axis(data: dict, symbol: sympy.Symbol, value: int) -> None:
    if data.get("sym_shape") is not None:
        s = data["sym_shape"]
        new = tuple(_int_or(sympy.sympify(d).subs(symbol, value)) if not isinstance(d, int) else d for d in s)
        data["sym_shape"] = ChannelsLast(new) if isinstance(s, ChannelsLast) else new
    if data.get("sym_costs") is not None:
        cs = data["sym_costs"]
        # real(): the costs are polynomials in size atoms (_atom), which hide H and W from subs
        data["sym_costs"] = Costs(*(_int_or(sympy.sympify(real(v)).subs(symbol, value)) for v in (cs.params, cs.macs)))


def _probe(graph: Graph, shape: tuple, concrete: Callable[[tuple, DiagnosticBag], None]) -> list[tuple[int, int]] | None:
    """Each classifier's flatten channels and features with the concrete passes at ``shape`` (their
    findings dropped: this run only measures), the shapes cleared after."""
    sym = graph.input_shape
    graph.input_shape = tuple(shape)
    concrete(graph.input_shape, DiagnosticBag())
    found = []
    for clf in _classifiers(graph):
        src = graph.node(graph.inputs(clf.flatten)[0])["shape"]
        feats = graph.node(clf.flatten)["shape"]
        found.append((src[0], feats[0]) if src is not None and feats is not None else (0, 0))
    for nid in graph.order():
        graph.node(nid)["shape"] = None
    graph.input_shape = sym
    return found or None


@dataclass
class SymbolicInfo:
    """What a symbolic analysis learned: the input as written, its domain, the size the concrete
    passes ran at."""

    input: tuple
    domain: Domain
    representative: tuple | None = None


def product(shape: Sequence) -> object:
    """The number of elements of a (symbolic) shape, expanded."""
    return _int_or(math.prod(_atoms(tuple(shape))))
