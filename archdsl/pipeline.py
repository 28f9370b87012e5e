"""The pipeline: spec file -> AST -> IR -> passes, with every diagnostic collected.

``analyze`` is what ``check`` and ``summary`` run; backends (codegen, render) start from its
:class:`Analysis`.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ast as A
from . import limits
from .diagnostics import Diagnostic, DiagnosticBag, DiagnosticError, Loc, SourceCache, did_you_mean
from .expr import POISON, Value, evaluate, show
from .frontend.loader import load_spec_file
from .ir import Graph
from .passes.elaborate import BlockDef, Elaborator, Scope
from .passes.settings import validate_settings
from .passes.shapes import infer_costs, infer_shapes, memory_problem, size_problem
from .passes.validate import validate_graph


@dataclass
class Analysis:
    """Everything one run learned about a spec."""

    file: str
    spec: A.SpecFile | None = None
    graph: Graph | None = None
    diags: DiagnosticBag = field(default_factory=DiagnosticBag)
    sources: SourceCache = field(default_factory=SourceCache)
    blocks: dict[str, BlockDef] = field(default_factory=dict)
    #: Resolved paths of the imported files already read (each is read once per analysis).
    imported: set[str] = field(default_factory=set)
    #: The budget in force (the spec's ``budget``, with ``--budget`` bounds replacing or adding):
    #: :class:`archdsl.budget.Bound` objects, checked once everything else has run.
    budget: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no error was found."""
        return not self.diags.has_errors


def parse_overrides(pairs: list[str] | None) -> dict[str, Value]:
    """Turn ``-p k=v`` strings into values (each ``v`` is an archdsl expression of literals)."""
    from .frontend.text import parse_text

    out: dict[str, Value] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise DiagnosticError(Diagnostic("E113", f"bad parameter override {pair!r}", Loc("<command line>", 1, 1),
                                             hint="write -p name=value, e.g. -p num_classes=10"))
        expr = parse_text(raw, "<command line>", start="expr_start", col_offset=len(key) + 1)
        out[key] = evaluate(expr, {})
    return out


def analyze(path: str | os.PathLike, overrides: Mapping[str, Value] | None = None,
            input_shape: tuple[int, int, int] | None = None, search_paths: tuple[str, ...] = (),
            rules: Any = None, budget: Sequence[A.BudgetItem] = ()) -> Analysis:
    """Run the whole front half of archdsl on one spec file.

    ``rules``: None/False skips the design rules; True or an ``archdsl.rules.RuleRequest`` (what
    ``check --select/--ignore`` asked) runs them after the shape and cost passes when the spec has
    no errors.  ``budget``: bounds from the command line (``--budget``), added to the spec's, each
    replacing the spec's bound of its figure; the budget is checked last, when the spec has no
    other error, so that a design over its budget still gets the rules' findings.
    """
    with gc_paused(), limits.recursion_headroom():
        res = _analyze(path, overrides, input_shape, search_paths, budget)
        if rules is not None and rules is not False:
            from .rules import run_rules

            run_rules(res, rules)
        if res.budget and res.graph is not None and not res.diags.has_errors:
            from .budget import check_budgets

            res.diags.extend(check_budgets(res.graph, res.budget))
        return res


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around work that allocates many acyclic objects.

    Parsing and analysis allocate millions of small, acyclic objects, code generation tens of
    thousands, building a network hundreds of modules; the collector's repeated scans over them
    made large specs superlinear and, left running, promote them to the old generations, bringing
    on full collections of the whole heap.  Reference counting still frees everything."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _analyze(path: str | os.PathLike, overrides: Mapping[str, Value] | None,
             input_shape: tuple[int, int, int] | None, search_paths: tuple[str, ...],
             budget: Sequence[A.BudgetItem] = ()) -> Analysis:
    res = Analysis(str(path))
    try:
        res.spec = load_spec_file(path, res.sources)
    except DiagnosticError as exc:
        res.diags.add(exc.diagnostic)
        return res
    try:
        _run(res, dict(overrides or {}), input_shape, search_paths, budget)
    except DiagnosticError as exc:
        res.diags.add(exc.diagnostic)
    except RecursionError:
        # A safety net: nesting is bounded (and located) by the front ends before this can happen.
        res.diags.add(Diagnostic("E152", "spec nested too deeply to analyze", Loc(res.file, 1, 1),
                                 hint="simplify the spec, or raise the limit with --limit nesting=N"))
    return res


def _run(res: Analysis, overrides: dict[str, Value], input_shape: tuple | None, search_paths: tuple,
         budget: Sequence[A.BudgetItem] = ()) -> None:
    spec = res.spec
    assert spec is not None
    net_env = _network_params(spec, overrides, res.diags)
    genv = _globals(spec, net_env, res.diags)
    if spec.budget or budget:
        from .budget import resolve_budget

        res.budget = resolve_budget(spec.budget, budget, genv, res.diags)
    _collect_blocks(res, spec, Path(res.file), genv, [str(Path(res.file).resolve())], search_paths)
    if spec.network is None and not spec.body:
        if not (spec.blocks or spec.uses or spec.lets or spec.settings or spec.input or spec.rules or spec.budget):
            # an empty file (or only comments) is almost surely the wrong file, not a library
            res.diags.error("E117", "the spec is empty: no network, layers or blocks", Loc(res.file, 1, 1),
                            hint="declare 'network NAME' and its layers, or blocks for a library")
        return  # a library of blocks: parsing and imports are all there is to check
    shape = _checked_override(input_shape, res.diags) if input_shape else _input_shape(spec, genv, res.diags)
    name = spec.network.name if spec.network else Path(res.file).stem
    graph = Graph(name, shape)
    graph.params = dict(net_env)
    graph.settings = _settings(spec, genv, res.diags)
    res.graph = graph
    elab = Elaborator(graph, res.blocks, res.diags)
    loc = spec.network.loc if spec.network else Loc(res.file, 1, 1)
    graph.input_node = graph.add_node("input", {}, "@input", loc, "", [])
    reported, suppressed = len(res.diags), res.diags.suppressed
    last = elab.body(spec.body, genv, Scope(""), graph.input_node)
    # a failed layer (also one that used a failed global: a suppressed follow-on) is the news,
    # not the empty network
    layers_failed = len(res.diags) > reported or res.diags.suppressed > suppressed
    _report_unused_blocks(spec, elab.used_blocks, res.diags)
    if last == graph.input_node and not layers_failed:
        res.diags.error("E117", "the network has no layers", loc)
    out_loc = graph.node(last)["loc"]
    graph.outputs = {"main": graph.add_node("output", {"name": "main"}, "@output", out_loc, "", [last]),
                     **graph.outputs}
    validate_graph(graph, res.diags)
    validate_settings(graph, res.diags)
    if shape is not None and _symbolic_shape(shape):
        _symbolic_passes(res, graph, genv, overridden=input_shape is not None)
    elif shape is not None:
        _concrete_passes(graph, res.diags)


def _concrete_passes(graph: Graph, diags: DiagnosticBag) -> None:
    """Shapes, costs and the parameter memory limit at the graph's concrete input size."""
    infer_shapes(graph, diags)
    infer_costs(graph)
    too_big = memory_problem(graph)
    if too_big is not None:
        diags.add(too_big)


def _symbolic_shape(shape: tuple) -> bool:
    """An input with a symbolic height or width (``3xHxW``)."""
    return any(isinstance(d, str) for d in shape)


def _symbolic_passes(res: Analysis, graph: Graph, env: dict[str, Value], overridden: bool) -> None:
    """The domain of a symbolic input and the expressions (sympy is imported only here)."""
    from .passes import symbolic

    spec = res.spec
    assert spec is not None
    # the spec's own concrete size fixes a size-dependent classifier (--input 3xHxW over input 3x224x224)
    declared = _input_shape(spec, env, DiagnosticBag()) if overridden and spec.input else None
    if declared is not None and _symbolic_shape(declared):
        declared = None
    where = spec.network.loc if spec.network else Loc(res.file, 1, 1)
    res.diags.extend(symbolic.run(graph, declared, where, lambda shape, bag: _concrete_passes(graph, bag)))


def _report_unused_blocks(spec: A.SpecFile, used: set[str], diags: DiagnosticBag) -> None:
    # Only the spec's own blocks: an imported library is expected to hold more than one net uses.
    # "Used" means called somewhere in the spec, also in a branch not taken with these parameters
    # (googlenet -p aux_logits=false still uses InceptionAux) or in a call that failed.
    used = used | _called_names(spec)
    for block in spec.blocks:
        if block.name not in used:
            diags.warning("W122", f"block '{block.name}' is defined but never used", block.loc,
                          hint="remove it or instantiate it")


def _called_names(spec: A.SpecFile) -> set[str]:
    """Names of every op or block called anywhere in the spec's body and blocks."""
    stmts = [*spec.body, *(st for block in spec.blocks for st in block.body)]
    return {el.name for el in A.iter_elements(stmts) if isinstance(el, A.Call)}


def _check_params(params: tuple[A.Param, ...], what: str, diags: DiagnosticBag) -> None:
    seen: dict[str, A.Param] = {}
    for p in params:
        if p.name in seen:
            diags.error("E113", f"{what} declares parameter '{p.name}' twice", p.loc,
                        hint=f"first declared at {seen[p.name].loc}")
        else:
            seen[p.name] = p


def _network_params(spec: A.SpecFile, overrides: dict[str, Value], diags: DiagnosticBag) -> dict[str, Value]:
    params = spec.network.params if spec.network else ()
    _check_params(params, "network", diags)
    names = [p.name for p in params]
    for key in overrides:
        if key not in names:
            raise DiagnosticError(Diagnostic(
                "E113", f"network has no parameter '{key}'", Loc("<command line>", 1, 1),
                hint=did_you_mean(key, names) or f"parameters: {', '.join(names) or '(none)'}"))
    env: dict[str, Value] = {}
    for p in params:
        if p.name in overrides:
            env[p.name] = overrides[p.name]
        elif p.default is None:
            diags.error("E103", f"network parameter '{p.name}' has no default and was not given", p.loc,
                        hint=f"pass -p {p.name}=...")
            env[p.name] = None
        else:
            env[p.name] = evaluate(p.default, env)
    return env


def _globals(spec: A.SpecFile, env: dict[str, Value], diags: DiagnosticBag) -> dict[str, Value]:
    env = dict(env)
    first: dict[str, A.Let] = {}
    for let in spec.lets:
        if let.name in first:
            # Top-level lets are global: every layer sees the final value wherever it appears, so a
            # second definition would silently change layers written before it.
            diags.error("E113", f"global '{let.name}' is defined twice", let.loc,
                        hint=f"first defined at {first[let.name].loc}; rename one, or use a let inside a group")
            continue
        first[let.name] = let
        try:
            env[let.name] = evaluate(let.value, env)
        except DiagnosticError as exc:
            diags.add(exc.diagnostic)
            env[let.name] = POISON
    return env


def _input_shape(spec: A.SpecFile, env: dict[str, Value], diags: DiagnosticBag) -> tuple | None:
    decl = spec.input
    if decl is None:
        loc = spec.network.loc if spec.network else Loc(spec.file, 1, 1)
        diags.error("E114", "no input shape declared", loc, hint="add 'input 3x224x224' or pass --input 3x224x224")
        return None
    misplaced = _misplaced_symbol(decl.dims, env)
    if misplaced is not None:
        diags.add(misplaced)
        return None
    # H and W (unless a let or parameter defines them) stand for every height and width
    dims = [d.id if isinstance(d, A.Name) and d.id == sym and sym not in env else evaluate(d, env)
            for d, sym in zip(decl.dims, ("", "H", "W"))]
    if len(decl.dims) > 3:
        dims += [evaluate(d, env) for d in decl.dims[3:]]
    if len(dims) != 3 or not all(_size_ok(d, sym) for d, sym in zip(dims, ("", "H", "W"))):
        diags.error("E114", f"input must be three positive integers C x H x W, got {show(tuple(dims))}", decl.loc,
                    hint="a height or width may be the symbol H or W: input 3xHxW")
        return None
    if _symbolic_shape(dims):
        return tuple(dims)
    problem = size_problem(tuple(dims), limits.current(), "input")
    if problem is not None:
        diags.add(Diagnostic("E153", problem[0], decl.loc, hint=problem[1]))
        return None
    return tuple(dims)


_SIZE_SYMBOLS = ("", "H", "W")  # the symbol each position of C x H x W may be


def _misplaced_symbol(dims: tuple[A.Expr, ...], env: Mapping[str, Value]) -> Diagnostic | None:
    """E114 at an ``H`` or ``W`` (not defined by a let or parameter) that is not its own size.

    ``input [3, W, H]`` or ``[3, H * 2, W]`` would otherwise be an undefined name (E105): the
    symbols only mean "every size" alone, in their own position, as in ``input 3xHxW``.
    """
    for i, dim in enumerate(dims):
        own = _SIZE_SYMBOLS[i] if i < len(_SIZE_SYMBOLS) else ""
        if isinstance(dim, A.Name) and dim.id == own:
            continue
        for name in _expr_names(dim):
            if name.id not in _SIZE_SYMBOLS[1:] or name.id in env:
                continue
            if name is dim:
                problem = f"'{name.id}' is not a size: {_size_position(i)}"
            else:
                problem = f"the size symbol '{name.id}' cannot be part of an expression: {_size_position(i)}"
            return Diagnostic("E114", problem, name.loc,
                              hint="write the height as H and the width as W for every size: input [3, H, W] "
                                   "(or [3, 224, W])")
    return None


def _size_position(i: int) -> str:
    """What position ``i`` of an input shape may hold (the text front end words it the same)."""
    if i == 0:
        return "the channels are a number"
    if i < 3:
        return f"the {('height', 'width')[i - 1]} is a number or {'HW'[i - 1]}"
    return "an input is C x H x W"


def _expr_names(e: A.Expr) -> Iterator[A.Name]:
    """Every name referenced in an expression, in source order."""
    if isinstance(e, A.Name):
        yield e
    elif isinstance(e, (A.ListExpr, A.FuncCall)):
        for item in (e.items if isinstance(e, A.ListExpr) else e.args):
            yield from _expr_names(item)
    elif isinstance(e, A.BinOp):
        yield from _expr_names(e.left)
        yield from _expr_names(e.right)
    elif isinstance(e, A.UnaryOp):
        yield from _expr_names(e.operand)
    elif isinstance(e, A.IfExp):
        for part in (e.cond, e.then, e.orelse):
            yield from _expr_names(part)
    elif isinstance(e, A.Index):
        yield from _expr_names(e.obj)
        yield from _expr_names(e.index)


def _size_ok(d: Value, symbol: str) -> bool:
    """A positive integer, or the axis' symbol (``H`` for the height, ``W`` for the width)."""
    return (isinstance(d, int) and not isinstance(d, bool) and d > 0) or (bool(symbol) and d == symbol)


def _checked_override(shape: tuple[int, int, int], diags: DiagnosticBag) -> tuple | None:
    """``--input``, unless it exceeds the tensor size limits (E153 on the command line)."""
    if _symbolic_shape(shape):
        return tuple(shape)
    problem = size_problem(tuple(shape), limits.current(), "input")
    if problem is not None:
        diags.add(Diagnostic("E153", problem[0], Loc("<command line>", 1, 1), hint=problem[1]))
        return None
    return tuple(shape)


def _settings(spec: A.SpecFile, env: dict[str, Value], diags: DiagnosticBag) -> list[dict[str, Any]]:
    out = []
    for st in spec.settings:
        try:
            args = {}
            for i, a in enumerate(st.call.args):
                args[a.name if a.name is not None else i] = evaluate(a.value, env)
            out.append({"kind": st.kind, "target": st.target, "name": st.call.name, "args": args, "loc": st.loc})
        except DiagnosticError as exc:
            diags.add(exc.diagnostic)
    return out


def resolve_import(importer: Path, target: str, loc: Loc, search_paths: tuple[str, ...]) -> Path:
    """Find ``use "target"`` relative to the importing file, confined to its directory tree.

    Paths are compared after resolving symbolic links, so neither ``..`` nor a link inside the tree
    that points outside it (nor one in a search path) can reach another file; only regular files
    are read (not FIFOs or devices).
    """
    rel = Path(target)
    if rel.is_absolute():
        raise DiagnosticError(Diagnostic("E109", f"import path must be relative: {target!r}", loc))
    try:
        roots = [importer.resolve().parent] + [Path(p).resolve() for p in search_paths]
        for root in roots:
            cand = (root / rel).resolve()
            if not cand.is_file():
                continue
            if not any(cand.is_relative_to(r) for r in roots):
                raise DiagnosticError(Diagnostic(
                    "E109", f"import {target!r} escapes the spec's directory (it resolves to {cand})", loc,
                    hint="pass --search-path DIR to allow another directory"))
            return cand
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a name too long, ...
        raise DiagnosticError(Diagnostic("E109", f"cannot resolve import {target!r}: {exc}", loc)) from None
    raise DiagnosticError(Diagnostic("E109", f"imported file not found: {target!r}", loc,
                                     hint=f"looked in {', '.join(str(r) for r in roots)}"))


def _collect_blocks(res: Analysis, spec: A.SpecFile, path: Path, env: dict[str, Value], stack: list[str],
                    search_paths: tuple[str, ...]) -> None:
    max_depth = limits.current().import_depth
    for use in spec.uses:
        try:
            target = resolve_import(path, use.path, use.loc, search_paths)
            key = str(target)
            if key in stack:
                chain = " -> ".join(Path(s).name for s in stack[stack.index(key):] + [key])
                raise DiagnosticError(Diagnostic("E110", f"import cycle: {chain}", use.loc))
            if key in res.imported:
                continue  # read along another path already; re-reading could be exponential
            if len(stack) > max_depth:
                raise DiagnosticError(Diagnostic("E152", f"imports nested more than {max_depth} deep", use.loc,
                                                 hint="raise the limit with --limit import_depth=N"))
            res.imported.add(key)
            display = os.path.relpath(target) if not os.path.isabs(res.file) else str(target)
            lib = load_spec_file(target, res.sources, display=display)
            _collect_blocks(res, lib, target, _globals(lib, {}, res.diags), stack + [key], search_paths)
        except DiagnosticError as exc:
            res.diags.add(exc.diagnostic)
    for block in spec.blocks:
        _check_params(block.params, f"block {block.name}", res.diags)
        if block.name in res.blocks:
            first = res.blocks[block.name].block.loc
            if first == block.loc:
                continue  # the same file imported along two paths
            res.diags.error("E111", f"block '{block.name}' defined twice", block.loc, hint=f"first defined at {first}")
            continue
        from .ops import PUBLIC_OPS

        if block.name in PUBLIC_OPS:
            res.diags.error("E111", f"block '{block.name}' shadows the built-in op of that name", block.loc,
                            hint="rename the block")
            continue
        res.blocks[block.name] = BlockDef(block, env)
