"""The resolve pass: AST + parameters -> IR graph.

Evaluates expressions, binds block and op arguments against their schemas, expands repeats,
dense blocks, residuals and conditionals, and names every node with its module path.  Problems
are collected as diagnostics; a construct that fails is skipped and elaboration continues.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import ast as A
from ..ast import ESCAPED_LABEL
from ..diagnostics import Diagnostic, DiagnosticBag, DiagnosticError, Loc, did_you_mean
from ..expr import POISON, Value, evaluate, show, type_name
from ..ir import Graph, ScopeInfo
from ..limits import Limits
from ..limits import current as current_limits
from ..ops import PUBLIC_OPS, UNKNOWN, ArgError, OpSpec, normalize

Env = Mapping[str, Value]
#: The top-level elements of a body as elaborated: (element location, node holding its output).
Trace = list[tuple[Loc, int]]


class LimitExceeded(DiagnosticError):
    """The network crossed the ``nodes`` limit: elaboration stops as a whole, since carrying on
    with the next statement would only cross it again (once per remaining layer)."""


@dataclass
class Scope:
    """Naming context: a path prefix and the position counter for anonymous children."""

    path: str
    counter: int = 0

    def child(self, label: str | None) -> str:
        """Path of the next child: its label, or its position like ``nn.Sequential``."""
        name = label if label is not None else str(self.counter)
        self.counter += 1
        return f"{self.path}.{name}" if self.path else name

    def internal(self, kind: str, graph: Graph) -> str:
        """A unique path for an internal node (concat/add/...): ``scope@kind`` or ``scope@kind_2``."""
        base = f"{self.path}@{kind}"
        path, n = base, 1
        while path in graph.paths:
            n += 1
            path = f"{base}_{n}"
        return path


@dataclass(frozen=True)
class Operand:
    """One input of a merge as the spec wrote it (stored on concat and add nodes as ``operands``), so
    a shape error names it (``branch `b```) and points at the step that gave it its shape."""

    name: str  # "`b`" (its last label), "2" (an unlabelled branch's position), "body", "shortcut"
    kind: str  # "branch", "body", "shortcut"
    loc: Loc  # where it is written
    source: int  # the node it starts from (the merge's input)
    steps: tuple[tuple[Loc, int], ...]  # its top-level elements with their output nodes


@dataclass
class BlockDef:
    """A block definition with the file that defines it (for the global scope it sees)."""

    block: A.Block
    env: Env


@dataclass
class Elaborator:
    """Walks the AST in dataflow order, producing the IR graph and collecting diagnostics."""

    graph: Graph
    blocks: dict[str, BlockDef]
    diags: DiagnosticBag
    call_stack: list[str] = field(default_factory=list)
    used_blocks: set[str] = field(default_factory=set)
    call_sites: list[tuple[str, Loc]] = field(default_factory=list)
    #: The limits in force when elaboration started (nodes, repeat, call_depth; docs/robustness.md).
    limits: Limits = field(default_factory=current_limits)

    # ------------------------------------------------------------------ helpers
    def eval(self, expr: A.Expr, env: Env) -> Value:
        """Evaluate an expression; failures propagate as DiagnosticError."""
        return evaluate(expr, env)

    def _fail(self, code: str, message: str, loc: Loc, path: str = "", hint: str = "") -> DiagnosticError:
        return DiagnosticError(Diagnostic(code, message, loc, path=path, hint=hint))

    def _claim(self, path: str, loc: Loc) -> None:
        if path in self.graph.paths:
            first = self.graph.node(self.graph.paths[path])["loc"]
            raise self._fail("E107", f"duplicate name '{path.rsplit('.', 1)[-1]}' (module path '{path}')",
                             loc, path, f"first defined at {first}")
        if self.graph.g.number_of_nodes() >= self.limits.nodes:
            raise LimitExceeded(Diagnostic("E150", f"network expands to more than {self.limits.nodes:,} nodes", loc,
                                           path=path, hint="reduce repeat counts, or raise the limit with --limit nodes=N"))

    # ------------------------------------------------------------------ statements
    def body(self, stmts: Sequence[A.Stmt], env: Env, scope: Scope, cur: int, trace: Trace | None = None) -> int:
        """Elaborate a sequential body and return the node holding its result (``trace``: where to
        record its top-level elements)."""
        env = dict(env)
        for stmt in stmts:
            try:
                cur = self.stmt(stmt, env, scope, cur, trace)
            except LimitExceeded:
                raise
            except DiagnosticError as exc:
                self.diags.add(self._with_call_sites(exc.diagnostic))
                if isinstance(stmt, A.Let):
                    env[stmt.name] = POISON
                elif not isinstance(stmt, A.Aux):  # a failed aux head leaves the main flow as it was
                    cur = self.unknown(cur, stmt.loc, scope)
        return cur

    def unknown(self, cur: int, loc: Loc, scope: Scope) -> int:
        """A node standing for a construct that failed: its output shape is unknown, so the shape
        pass derives no error from it (no E202 "add a projection shortcut" after a missing kernel)."""
        # One path for all of a scope's unknown nodes (internal paths never name a module): making
        # each unique would cost a search per failure, quadratic in a repeat whose body fails.
        path = f"{scope.path}@{UNKNOWN}"
        return self.graph.add_node(UNKNOWN, {}, path, loc, scope.path, [cur])

    def _element_or_unknown(self, el: A.Element, env: Env, scope: Scope, cur: int) -> int:
        """An element of a chain; when it fails, its error is recorded and the chain goes on from an
        unknown node, so the later elements' own mistakes are reported too."""
        try:
            return self.element(el, env, scope, cur)
        except LimitExceeded:
            raise
        except DiagnosticError as exc:
            self.diags.add(self._with_call_sites(exc.diagnostic))
            return self.unknown(cur, el.loc, scope)

    def _with_call_sites(self, diag: Diagnostic) -> Diagnostic:
        # Inside a block the location is the block's line; name the instantiations that led there.
        if not self.call_sites or diag.notes:
            return diag
        notes = tuple(f"in {name}(...) instantiated at {loc}" for name, loc in reversed(self.call_sites))
        return dataclasses.replace(diag, notes=notes)

    def stmt(self, stmt: A.Stmt, env: dict, scope: Scope, cur: int, trace: Trace | None = None) -> int:
        """Elaborate one statement of a sequential body."""
        if isinstance(stmt, A.Let):
            env[stmt.name] = self.eval(stmt.value, env)
            return cur
        if isinstance(stmt, A.Chain):
            for el in stmt.elements:
                cur = self._element_or_unknown(el, env, scope, cur)
                if trace is not None:
                    trace.append((el.loc, cur))
            return cur
        if isinstance(stmt, A.If):
            chosen = self.choose(stmt, env)
            return self.body(chosen, env, scope, cur, trace) if chosen is not None else cur
        if isinstance(stmt, A.Aux):
            self.aux(stmt, env, scope, cur)
            return cur
        raise self._fail("E199", f"unexpected statement {type(stmt).__name__}", Loc("<ast>", 1, 1))

    def choose(self, stmt: A.If, env: Env) -> tuple | None:
        """The body an ``if`` statement selects (None for a false condition without else)."""
        cond = self.eval(stmt.cond, env)
        if not isinstance(cond, bool):
            raise self._fail("E108", f"condition must be true or false, got {type_name(cond)} {show(cond)}",
                             stmt.cond.loc)
        return stmt.then if cond else stmt.orelse

    def aux(self, stmt: A.Aux, env: Env, scope: Scope, cur: int) -> None:
        """A side output tapped from ``cur``; the main flow continues unchanged."""
        label = getattr(stmt.element, "label", None)
        if label is None:
            raise self._fail("E116", "an aux head needs a name: aux name: element", stmt.loc,
                             scope.path, "for example: aux aux1: InceptionAux(512, num_classes)")
        opts = self.bind_options(stmt.args, {"weight": 1.0}, env, "aux", stmt.loc)
        if label in self.graph.outputs:
            raise self._fail("E107", f"duplicate output name '{label}'", stmt.loc, scope.path)
        out = self.element(stmt.element, env, scope, cur)
        weight = opts["weight"]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise self._fail("E106", f"aux weight must be a number, got {show(weight)}", stmt.loc)
        path = scope.internal(f"aux_{label}", self.graph)
        self.graph.outputs[label] = self.graph.add_node("output", {"name": label}, path, stmt.loc,
                                                        scope.path, [out], label)
        self.graph.aux_weights[label] = float(weight)

    # ------------------------------------------------------------------ elements
    def element(self, el: A.Element, env: Env, scope: Scope, cur: int, name: str | None = None) -> int:
        """Elaborate one element; ``name`` forces its path (repeat iterations)."""
        if isinstance(el, A.Call):
            return self.call(el, env, scope, cur, name)
        if isinstance(el, A.Group):
            sub = self.enter(scope, el.label, "group", el.loc, name, force=True)
            return self.body(el.body, env, sub, cur)
        if isinstance(el, A.Concat):
            return self.concat(el, env, self.enter(scope, el.label, "concat", el.loc, name), cur)
        if isinstance(el, A.Residual):
            return self.residual(el, env, self.enter(scope, el.label, "residual", el.loc, name), cur)
        if isinstance(el, A.Gate):
            return self.gate(el, env, self.enter(scope, el.label, "gate", el.loc, name), cur)
        if isinstance(el, A.Repeat):
            return self.repeat(el, env, scope, cur, name)
        if isinstance(el, A.Dense):
            return self.dense(el, env, scope, cur, name)
        raise self._fail("E199", f"unexpected element {type(el).__name__}", Loc("<ast>", 1, 1))

    def enter(self, scope: Scope, label: str | None, kind: str, loc: Loc, name: str | None = None,
              force: bool = False, block: str | None = None, args: dict | None = None) -> Scope:
        """The scope a construct's children live in: a new one when labelled, else ``scope``."""
        if name is None and label is None and not force:
            return scope
        path = name if name is not None else scope.child(label)
        self.graph.scopes[path] = ScopeInfo(path, kind, block, args or {}, loc)
        return Scope(path)

    def call(self, el: A.Call, env: Env, scope: Scope, cur: int, name: str | None) -> int:
        """An op (registry) or a block instantiation."""
        if el.name in PUBLIC_OPS:
            op = PUBLIC_OPS[el.name]
            if el.inline:
                raise self._fail("E119", f"'inline' applies to blocks; '{el.name}' is a built-in op", el.loc)
            path = name if name is not None else scope.child(el.label)
            self._claim(path, el.loc)
            args = self.bind_op(op, el, env, path)
            return self.graph.add_node(op.name, args, path, el.loc, scope.path, [cur], el.label)
        if el.name in self.blocks:
            return self.instantiate(self.blocks[el.name], el, env, scope, cur, name)
        known = list(PUBLIC_OPS) + list(self.blocks)
        hint = did_you_mean(el.name, known) or "define it with 'block " + el.name + "(...) { ... }' or 'use' a file"
        raise self._fail("E101", f"unknown op or block '{el.name}'", el.loc, scope.path, hint)

    def instantiate(self, bdef: BlockDef, el: A.Call, env: Env, scope: Scope, cur: int, name: str | None) -> int:
        """Expand a block call into its own scope."""
        block = bdef.block
        if block.name in self.call_stack:
            chain = " -> ".join(self.call_stack[self.call_stack.index(block.name):] + [block.name])
            raise self._fail("E115", f"block '{block.name}' instantiates itself: {chain}", el.loc)
        if len(self.call_stack) >= self.limits.call_depth:
            raise self._fail("E152", f"blocks nested more than {self.limits.call_depth} deep", el.loc,
                             hint="raise the limit with --limit call_depth=N")
        bound = self.bind_block(block, el, env)
        if el.inline:
            if el.label is not None or name is not None:
                raise self._fail("E119", "an inline block call cannot be named", el.loc,
                                 hint="drop the label, or drop 'inline' to give the block its own scope")
            return self._expand(bdef, bound, scope, cur, el.loc)
        path = name if name is not None else scope.child(el.label)
        if path in self.graph.paths or path in self.graph.scopes:
            raise self._fail("E107", f"duplicate name '{path.rsplit('.', 1)[-1]}' (module path '{path}')",
                             el.loc, path)
        self.graph.scopes[path] = ScopeInfo(path, "block", block.name, dict(bound), el.loc)
        return self._expand(bdef, bound, Scope(path), cur, el.loc)

    def _expand(self, bdef: BlockDef, bound: dict[str, Value], scope: Scope, cur: int, site: Loc) -> int:
        self.call_stack.append(bdef.block.name)
        self.call_sites.append((bdef.block.name, site))
        self.used_blocks.add(bdef.block.name)
        try:
            return self.body(bdef.block.body, {**bdef.env, **bound}, scope, cur)
        finally:
            self.call_stack.pop()
            self.call_sites.pop()

    # ------------------------------------------------------------------ combinators
    def branches(self, stmts: Sequence[A.Stmt], env: dict) -> Iterable[tuple[A.Chain, dict]]:
        """The chains of a concat body, with ``if`` resolved and ``let`` applied in order."""
        for stmt in stmts:
            if isinstance(stmt, A.Let):
                env[stmt.name] = self.eval(stmt.value, env)
            elif isinstance(stmt, A.Chain):
                yield stmt, env
            elif isinstance(stmt, A.If):
                chosen = self.choose(stmt, env)
                if chosen:
                    yield from self.branches(chosen, env)
            else:
                raise self._fail("E117", "aux heads cannot be concat branches", stmt.loc,
                                 hint="tap the aux head before or after the concat")

    def concat(self, el: A.Concat, env: Env, scope: Scope, cur: int) -> int:
        """Parallel branches from ``cur`` joined by channel concatenation."""
        outs: list[int] = []
        operands: list[Operand] = []
        for chain, benv in self.branches(el.body, dict(env)):
            steps: Trace = []
            outs.append(self.stmt(chain, benv, scope, cur, steps))
            operands.append(Operand(_branch_name(chain, len(operands)), "branch", chain.loc, cur, tuple(steps)))
        if not outs:
            raise self._fail("E117", "concat has no branches", el.loc, scope.path)
        nid = self.graph.add_node("concat", {"dense": False}, scope.internal("concat", self.graph), el.loc,
                                  scope.path, outs, el.label)
        self.graph.node(nid)["operands"] = tuple(operands)
        return nid

    def residual(self, el: A.Residual, env: Env, scope: Scope, cur: int) -> int:
        """``body(x) * scale + shortcut(x)``, then the optional post-activation."""
        opts = self.bind_options(el.args, {"scale": 1.0, "post": None}, env, "residual", el.loc)
        body_steps: Trace = []
        body_out = self.body(el.body, env, scope, cur, body_steps)
        short_out, short_steps, short_loc = cur, [], el.loc
        sc = el.shortcut
        if sc is not None and (sc.cond is None or self._truth(sc.cond, env)):
            sub = self.enter(scope, sc.name, "shortcut", sc.loc) if sc.name else scope
            short_out, short_loc = self.body(sc.body, env, sub, cur, short_steps), sc.loc
        scale = opts["scale"]
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise self._fail("E106", f"'scale' must be a number, got {show(scale)}", el.loc)
        if scale != 1.0:
            body_out = self.graph.add_node("scale", {"factor": float(scale)}, scope.internal("scale", self.graph),
                                           el.loc, scope.path, [body_out])
        out = self.graph.add_node("add", {}, scope.internal("add", self.graph), el.loc, scope.path,
                                  [body_out, short_out], el.label)
        self.graph.node(out)["operands"] = (Operand("body", "body", el.loc, cur, tuple(body_steps)),
                                            Operand("shortcut", "shortcut", short_loc, cur, tuple(short_steps)))
        post = opts["post"]
        if post is None:
            return out
        if not isinstance(post, str) or post not in PUBLIC_OPS or PUBLIC_OPS[post].family != "activation":
            acts = [n for n, s in PUBLIC_OPS.items() if s.family == "activation"]
            hint = did_you_mean(str(post), acts) or f"one of: {', '.join(acts)}"
            raise self._fail("E106", f"'post' must name an activation, got {show(post)}", el.loc, hint=hint)
        op = PUBLIC_OPS[post]
        path = scope.child(None)
        self._claim(path, el.loc)
        return self.graph.add_node(post, self.defaults(op), path, el.loc, scope.path, [out])

    def gate(self, el: A.Gate, env: Env, scope: Scope, cur: int) -> int:
        """``x * body(x)``: the body computes a gate that broadcasts over its input."""
        body_out = self.body(el.body, env, scope, cur)
        if self._through_identities(body_out) == cur:
            raise self._fail("E117", "gate body is empty: it would multiply its input by itself", el.loc,
                             scope.path, hint="compute the gate in the body, e.g. global_avgpool -> conv2d(c, 1) "
                                              "-> sigmoid")
        return self.graph.add_node("mul", {}, scope.internal("mul", self.graph), el.loc, scope.path,
                                   [cur, body_out], el.label)

    def _through_identities(self, nid: int) -> int:
        """The node whose value ``nid`` carries unchanged (past ``identity`` layers)."""
        while nid >= 0 and self.graph.node(nid)["op"] == "identity":
            nid = self.graph.inputs(nid)[0]
        return nid

    def _truth(self, expr: A.Expr, env: Env) -> bool:
        v = self.eval(expr, env)
        if not isinstance(v, bool):
            raise self._fail("E108", f"condition must be true or false, got {type_name(v)} {show(v)}", expr.loc)
        return v

    def _iterations(self, el: A.Repeat | A.Dense, env: Env, what: str) -> tuple[int, str, int]:
        opts = self.bind_options(el.args, {"count": None, "prefix": "", "start": 0}, env, what, el.loc,
                                 positional=("count",))
        n, prefix, start = opts["count"], opts["prefix"], opts["start"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise self._fail("E106", f"{what} count must be a non-negative integer, got {show(n)}", el.loc)
        if n > self.limits.repeat:
            raise self._fail("E150", f"{what} count {n:,} exceeds the limit of {self.limits.repeat:,}", el.loc,
                             hint="raise the limit with --limit repeat=N")
        # ASCII only, as labels are: a Unicode look-alike prefix would make module names that
        # read like others (a Cyrillic letter that looks like 'c')
        if not isinstance(prefix, str) or (prefix and not ESCAPED_LABEL.match(prefix)):
            raise self._fail("E106", f"{what} prefix must be letters, digits, '_' or '-' (not first), got "
                             f"{show(prefix)}", el.loc)
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise self._fail("E106", f"{what} start must be a non-negative integer, got {show(start)}", el.loc)
        return n, prefix, start

    def _iteration(self, el: A.Repeat | A.Dense, env: Env, scope: Scope, outer: Scope | None, i: int,
                   name: str, cur: int) -> int:
        ienv = {**env, el.var: i} if el.var else env
        if outer is None:
            return self.body(el.body, ienv, scope, cur)
        path = f"{outer.path}.{name}" if outer.path else name
        single = _single_unlabelled(el.body)
        if single is not None:
            self._claim(path, el.loc)
            return self.element(single, ienv, outer, cur, name=path)
        self.graph.scopes[path] = ScopeInfo(path, "group", None, {}, el.loc)
        return self.body(el.body, ienv, Scope(path), cur)

    def _outer(self, el: A.Repeat | A.Dense, scope: Scope, kind: str, name: str | None) -> Scope | None:
        """Where iterations are named: a labelled repeat's own scope; an unlabelled one given ``prefix`` or
        ``start`` names them in the enclosing scope; otherwise (None) its layers splice into the sequence."""
        if el.label or name:
            return self.enter(scope, el.label, kind, el.loc, name)
        if any(a.name in ("prefix", "start") for a in el.args):
            return scope
        return None

    def repeat(self, el: A.Repeat, env: Env, scope: Scope, cur: int, name: str | None) -> int:
        """``n`` copies in sequence; a labelled repeat names iterations ``prefix + index``."""
        n, prefix, start = self._iterations(el, env, "repeat")
        outer = self._outer(el, scope, "repeat", name)
        for i in range(n):
            cur = self._iteration(el, env, scope, outer, i, f"{prefix}{i + start}", cur)
        return cur

    def dense(self, el: A.Dense, env: Env, scope: Scope, cur: int, name: str | None) -> int:
        """DenseNet block: layer i sees concat(input, outputs of layers < i); returns concat of all."""
        n, prefix, start = self._iterations(el, env, "dense")
        outer = self._outer(el, scope, "dense", name)
        owner = outer or scope
        feats = [cur]
        for i in range(n):
            src = feats[0] if len(feats) == 1 else self.graph.add_node(
                "concat", {"dense": True}, owner.internal("cat", self.graph), el.loc, owner.path, list(feats))
            feats.append(self._iteration(el, env, scope, outer, i, f"{prefix}{i + start}", src))
        if len(feats) == 1:
            return cur
        return self.graph.add_node("concat", {"dense": True}, owner.internal("cat", self.graph), el.loc,
                                   owner.path, feats, el.label)

    # ------------------------------------------------------------------ argument binding
    def _split_args(self, args: Sequence[A.Arg], env: Env, names: Sequence[str], what: str,
                    loc: Loc) -> dict[str, tuple[Value, Loc]]:
        bound: dict[str, tuple[Value, Loc]] = {}
        positional = [a for a in args if a.name is None]
        if len(positional) > len(names):
            extra = positional[len(names)]
            raise self._fail("E104", f"{what} takes at most {len(names)} positional argument"
                             f"{'s' if len(names) != 1 else ''}, got {len(positional)}", extra.loc,
                             hint=f"parameters: {', '.join(names) or '(none)'}")
        seen_kw = False
        for i, arg in enumerate(args):
            if arg.name is None:
                if seen_kw:
                    raise self._fail("E104", "positional argument after keyword argument", arg.loc)
                key = names[i]
            else:
                seen_kw = True
                key = arg.name
                if key not in names:
                    raise self._fail("E102", f"{what} has no parameter '{key}'", arg.loc,
                                     hint=did_you_mean(key, names) or f"parameters: {', '.join(names) or '(none)'}")
            if key in bound:
                raise self._fail("E118", f"argument '{key}' given more than once", arg.loc)
            bound[key] = (self.eval(arg.value, env), arg.value.loc)
        return bound

    def bind_op(self, op: OpSpec, el: A.Call, env: Env, path: str) -> dict[str, Any]:
        """Check and normalize an op call's arguments against the op's schema."""
        given = self._split_args(el.args, env, op.param_names, op.name, el.loc)
        out: dict[str, Any] = {}
        for p in op.params:
            if p.name in given:
                value, vloc = given[p.name]
                try:
                    out[p.name] = normalize(p, value)
                except ArgError as exc:
                    raise self._fail("E106", f"{op.name}: {exc}", vloc, path) from None
            elif p.required:
                raise self._fail("E103", f"{op.name} is missing required argument '{p.name}'", el.loc, path,
                                 f"signature: {signature(op)}")
            else:
                out[p.name] = normalize(p, p.default) if p.default is not None else None
        return out

    def defaults(self, op: OpSpec) -> dict[str, Any]:
        """An op's arguments when called without any."""
        return {p.name: (normalize(p, p.default) if p.default is not None else None) for p in op.params}

    def bind_block(self, block: A.Block, el: A.Call, env: Env) -> dict[str, Value]:
        """Bind a block call's arguments; defaults see earlier parameters and the globals."""
        names = [p.name for p in block.params]
        given = self._split_args(el.args, env, names, f"block {block.name}", el.loc)
        bdef = self.blocks[block.name]
        bound: dict[str, Value] = {}
        for p in block.params:
            if p.name in given:
                bound[p.name] = given[p.name][0]
            elif p.default is None:
                raise self._fail("E103", f"block {block.name} is missing required argument '{p.name}'", el.loc,
                                 hint=f"signature: {block.name}({', '.join(names)})")
            else:
                bound[p.name] = self.eval(p.default, {**bdef.env, **bound})
        return bound

    def bind_options(self, args: Sequence[A.Arg], defaults: dict[str, Value], env: Env, what: str, loc: Loc,
                     positional: Sequence[str] = ()) -> dict[str, Value]:
        """Bind a combinator's options (``residual(scale=...)``, ``repeat(n, prefix=...)``)."""
        names = list(positional) + [k for k in defaults if k not in positional]
        given = self._split_args(args, env, names, what, loc)
        out = dict(defaults)
        for k, (v, _) in given.items():
            out[k] = v
        for k in positional:
            if out[k] is None:
                raise self._fail("E103", f"{what} is missing required argument '{k}'", loc)
        return out


def _branch_name(chain: A.Chain, index: int) -> str:
    """A concat branch as a message names it: its last label (`` `b3_2` ``), else its 1-based position."""
    labels = [lb for lb in (getattr(e, "label", None) for e in chain.elements) if lb is not None]
    return f"`{labels[-1]}`" if labels else str(index + 1)


def _single_unlabelled(body: Sequence[A.Stmt]) -> A.Element | None:
    if len(body) == 1 and isinstance(body[0], A.Chain) and len(body[0].elements) == 1:
        el = body[0].elements[0]
        if getattr(el, "label", None) is None:
            return el
    return None


def signature(op: OpSpec) -> str:
    """``conv2d(out, kernel, stride = 1, ...)`` for hints and docs."""
    parts = []
    for p in op.params:
        parts.append(p.name if p.required else f"{p.name} = {show(p.default) if p.default is not None else 'none'}")
    return f"{op.name}({', '.join(parts)})"
