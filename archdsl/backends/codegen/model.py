"""The generator's data model: statements, generated methods, block instances and class variants.

Statements hold :mod:`~archdsl.backends.pyexpr` expressions whose literals are :class:`Hole`\\ s.
:func:`scan_statements` walks them once per instance and gives (a) a *structure key*: a flat tuple
that two instances share exactly when their code is identical up to hole values, and (b) the
instance's *slots*: its holes and nested block constructors in source order, which the variant
grouping (:mod:`.variants`) then resolves into literals or constructor parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ...diagnostics import Loc
from ..pyexpr import (
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
    literal,
)

# ------------------------------------------------------------------------------------ statements


@dataclass(slots=True)
class Assign:
    """``target = value`` (target: source text built from validated names)."""

    target: Expr
    value: Expr


@dataclass(slots=True)
class AugAdd:
    """``target += value``."""

    target: Expr
    value: Expr


@dataclass(slots=True)
class ExprStmt:
    """An expression evaluated for its effect."""

    value: Expr


@dataclass(slots=True)
class Comment:
    """A ``# N x C x H x W`` comment; ``shape`` is per instance and aggregated per class."""

    shape: tuple


@dataclass(slots=True)
class Text:
    """A fixed line of code (no spec content)."""

    text: str


@dataclass(slots=True)
class If:
    """``if cond:`` body ``else:`` orelse."""

    cond: str
    body: list
    orelse: list = field(default_factory=list)


@dataclass(slots=True)
class Return:
    """``return value``."""

    value: Expr


Stmt = Assign | AugAdd | ExprStmt | Comment | Text | If | Return


def stmt_exprs(s: Stmt) -> Iterator[Expr]:
    """The expressions of statement ``s`` (nested ``if`` bodies included), in source order."""
    if isinstance(s, (Assign, AugAdd)):
        yield s.target
        yield s.value
    elif isinstance(s, (ExprStmt, Return)):
        yield s.value
    elif isinstance(s, If):
        for b in s.body + s.orelse:
            yield from stmt_exprs(b)


def stmt_comments(s: Stmt) -> Iterator[Comment]:
    """The shape comments of statement ``s`` (nested ``if`` bodies included), in source order."""
    if isinstance(s, Comment):
        yield s
    elif isinstance(s, If):
        for b in s.body + s.orelse:
            yield from stmt_comments(b)


# ------------------------------------------------------------------------------------ classes


@dataclass(slots=True)
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
    variant: int = -1  # index of its variant in the generator's variant order (no back reference)
    param_values: dict[str, Any] = field(default_factory=dict)
    #: Holes and nested block constructors in source order, each with "used by a method" (set by
    #: :func:`scan_statements`).
    slots: list[tuple[Hole | ChildClass, bool]] = field(default_factory=list)
    #: Every name the instance's methods refer to (set by :func:`scan_statements`).
    method_names: set[str] = field(default_factory=set)
    #: The nested block constructors among the slots (set by :func:`scan_statements`).
    child_classes: list[ChildClass] = field(default_factory=list)
    #: The shapes of the methods' comments in source order (set by :func:`scan_statements`).
    comment_shapes: list[tuple] | None = None

    def method_comment_shapes(self) -> list[tuple]:
        """The shapes of the methods' comments in source order."""
        if self.comment_shapes is None:
            return [c.shape for m in self.methods for s in m.body for c in stmt_comments(s)]
        return self.comment_shapes

    def statements(self) -> Iterator[Stmt]:
        """Every statement (init first, then the methods in order)."""
        yield from self.init
        for m in self.methods:
            yield from m.body

    def holes(self) -> list[tuple[Hole, bool]]:
        """Every hole in source order, with "used by a method"; nested block constructors must be
        resolved (their argument holes are the instance's too)."""
        out: list[tuple[Hole, bool]] = []
        for slot, fwd in self.slots:
            if type(slot) is Hole:
                out.append((slot, fwd))
            else:
                call = slot.resolved
                out.extend((a, fwd) for a in call.args)
                out.extend((v, fwd) for _, v in call.kwargs if type(v) is Hole)
        return out


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
    index: int = 0  # position in the generator's variant order (identifies it inside other keys)


# ------------------------------------------------------------------------------------ scanning

# Structure-key tags.  Tags are ints and payloads (names, literal texts, keywords) are strs at
# positions the tags fix, and every variable-length list ends with _END: so two token tuples are
# equal exactly when the statements have the same structure.
(_NAME, _LIT, _HOLE, _ATTR, _CALL, _CLASS, _SUB, _LIST, _TUPLE, _DICT, _BINOP, _STAR, _END,
 _ASSIGN, _AUGADD, _EXPR, _COMMENT, _TEXT, _IF, _RETURN, _METHOD) = range(21)


class _Scanner:
    """One pass over an instance's statements collecting key tokens, slots, method names and the
    shapes of the methods' comments.  (Hot: leaves are handled inline, not by a call each.)"""

    def __init__(self, child_key: Callable[[str], Any] | None) -> None:
        self.child_key = child_key
        self.tokens: list = []
        self.slots: list[tuple[Hole | ChildClass, bool]] = []
        self.names: set[str] | None = None
        self.shapes: list[tuple] | None = None
        self.classes: list[ChildClass] = []
        self.fwd = False

    def expr(self, e: Any) -> None:  # noqa: C901 - one branch per expression type
        """Tokens of expression ``e``; its holes and nested block constructors become slots."""
        tok = self.tokens
        t = type(e)
        if t is Name:
            tok += (_NAME, e.id)
            if self.names is not None:
                self.names.add(e.id)
        elif t is Attr:
            v = e.value
            if type(v) is Name:
                tok += (_ATTR, _NAME, v.id, e.attr)
                if self.names is not None:
                    self.names.add(v.id)
            else:
                tok.append(_ATTR)
                self.expr(v)
                tok.append(e.attr)
        elif t is Call:
            self.call(e)
        elif t is Hole:
            tok.append(_HOLE)
            self.slots.append((e, self.fwd))
        elif t is Lit:
            tok += (_LIT, literal(e.value))
        elif t is ChildClass:
            tok += (_CLASS, self.child_key(e.scope) if self.child_key is not None else e.scope)
            self.slots.append((e, self.fwd))
            self.classes.append(e)
        elif t is Sub:
            tok.append(_SUB)
            self.expr(e.value)
            self.expr(e.index)
        elif t is ListE or t is TupleE:
            tok.append(_LIST if t is ListE else _TUPLE)
            self.items(e.items)
            tok.append(_END)
        elif t is DictE:
            tok.append(_DICT)
            for k, v in e.items:
                self.expr(k)
                self.expr(v)
            tok.append(_END)
        elif t is BinOp:
            tok.append(_BINOP)
            self.expr(e.left)
            tok.append(e.op)
            self.expr(e.right)
        elif t is Starred:
            tok.append(_STAR)
            self.expr(e.value)
        else:
            raise ExprError(f"unknown expression {e!r}")

    def call(self, e: Call) -> None:
        """A call: ``func(args..., kw=value...)`` (``self.x`` / ``nn.X`` callees inline)."""
        tok = self.tokens
        f = e.func
        if type(f) is Attr and type(f.value) is Name:
            tok += (_CALL, _ATTR, _NAME, f.value.id, f.attr)
            if self.names is not None:
                self.names.add(f.value.id)
        else:
            tok.append(_CALL)
            self.expr(f)
        if e.args:
            self.items(e.args)
        tok.append(_END)
        for k, v in e.kwargs:
            tok.append(k)
            if type(v) is Hole:
                tok.append(_HOLE)
                self.slots.append((v, self.fwd))
            else:
                self.expr(v)
        tok.append(_END)

    def items(self, es: list) -> None:
        """A list of expressions (call arguments, list items): names and holes inline."""
        tok = self.tokens
        for e in es:
            t = type(e)
            if t is Hole:
                tok.append(_HOLE)
                self.slots.append((e, self.fwd))
            elif t is Name:
                tok += (_NAME, e.id)
                if self.names is not None:
                    self.names.add(e.id)
            else:
                self.expr(e)

    def stmt(self, s: Any) -> None:
        """Tokens of statement ``s`` (a comment's shape is recorded, not tokenized)."""
        t = type(s)
        if t is Comment:
            self.tokens.append(_COMMENT)
            if self.shapes is not None:
                self.shapes.append(s.shape)
        elif t is Assign or t is AugAdd:
            target = s.target
            tt = type(target)
            if tt is Name:  # a local variable
                self.tokens += (_ASSIGN if t is Assign else _AUGADD, _NAME, target.id)
                if self.names is not None:
                    self.names.add(target.id)
            elif tt is Attr and type(target.value) is Name:  # self.<module> = ...
                self.tokens += (_ASSIGN if t is Assign else _AUGADD, _ATTR, _NAME, target.value.id, target.attr)
                if self.names is not None:
                    self.names.add(target.value.id)
            else:
                self.tokens.append(_ASSIGN if t is Assign else _AUGADD)
                self.expr(target)
            if type(s.value) is Call:
                self.call(s.value)
            else:
                self.expr(s.value)
        elif t is ExprStmt or t is Return:
            self.tokens.append(_EXPR if t is ExprStmt else _RETURN)
            self.expr(s.value)
        elif t is Text:
            self.tokens += (_TEXT, s.text)
        elif t is If:
            self.tokens += (_IF, s.cond)
            self.body(s.body)
            self.body(s.orelse)
        else:
            raise ExprError(f"unknown statement {s!r}")

    def body(self, stmts: list) -> None:
        """Tokens of a statement list, closed by an end token."""
        stmt = self.stmt
        for s in stmts:
            stmt(s)
        self.tokens.append(_END)


def scan_statements(inst: Instance, child_key: Callable[[str], Any] | None) -> tuple:
    """Fill ``inst.slots``, ``inst.child_classes``, ``inst.method_names`` and
    ``inst.comment_shapes``; return the token tuple of the instance's structure.

    ``child_key(scope)`` identifies the class (variant) of a nested block instance; without it the
    tokens name the nested scope (enough for the network class, whose key is never compared).
    Runs before any hole or nested constructor of ``inst`` is resolved (it does not look inside).
    """
    sc = _Scanner(child_key)
    sc.body(inst.init)
    sc.fwd = True
    sc.names = inst.method_names
    sc.shapes = inst.comment_shapes = []
    for m in inst.methods:
        sc.tokens += (_METHOD, m.name, m.signature)
        sc.body(m.body)
    inst.slots = sc.slots
    inst.child_classes = sc.classes
    return tuple(sc.tokens)
