"""A tiny Python expression/statement tree and a printer whose output ``ruff format`` keeps as is.

Generated code is never built by splicing spec text: every name that reaches it went through
:mod:`archdsl.backends.names`, and every literal is printed by :func:`literal` (``repr`` with
ruff's quote and exponent conventions).  The printer keeps a line when it fits in
:data:`WIDTH` columns; otherwise it explodes the outermost bracket one item per line with a
trailing comma (a "magic trailing comma", which ruff preserves at any line length), recursively.
The result is stable under ``ruff format`` with the default 88 columns and with longer limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

WIDTH = 88
INDENT = "    "

class ExprError(ValueError):
    """A value that has no literal form in generated code."""


def literal(value: Any) -> str:
    """Source text of a literal value, formatted the way ruff formats it."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):
            return 'float("nan")'
        if math.isinf(value):
            return 'float("inf")' if value > 0 else '-float("inf")'
        return repr(value)
    if isinstance(value, str):
        text = repr(value)
        if text.startswith("'") and '"' not in value:
            # repr chose single quotes only because of the default; ruff prefers double quotes.
            text = '"' + text[1:-1].replace("\\'", "'") + '"'
        return text
    if isinstance(value, (tuple, list)):
        inner = ", ".join(literal(v) for v in value)
        if isinstance(value, list):
            return f"[{inner}]"
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise ExprError(f"no literal form for {type(value).__name__}")


# ------------------------------------------------------------------------------------ expressions


@dataclass(frozen=True, slots=True)
class Name:
    """A validated identifier (the caller guarantees it)."""

    id: str


@dataclass(frozen=True, slots=True)
class Lit:
    """A literal value."""

    value: Any


@dataclass(slots=True)
class Hole:
    """A literal that may become a constructor parameter when it varies between block instances."""

    value: Any
    hint: str = ""
    resolved: Expr | None = None


@dataclass(frozen=True, slots=True)
class Attr:
    """``value.attr`` with ``attr`` a validated identifier."""

    value: Expr
    attr: str


@dataclass(frozen=True, slots=True)
class Sub:
    """``value[index]``."""

    value: Expr
    index: Expr


@dataclass(slots=True)
class Call:
    """``func(args..., kw=value...)``."""

    func: Expr
    args: list[Expr] = field(default_factory=list)
    kwargs: list[tuple[str, Expr]] = field(default_factory=list)


@dataclass(slots=True)
class ListE:
    """``[a, b, ...]``."""

    items: list[Expr]


@dataclass(slots=True)
class TupleE:
    """``(a, b, ...)``."""

    items: list[Expr]


@dataclass(slots=True)
class DictE:
    """``{k: v, ...}``."""

    items: list[tuple[Expr, Expr]]


@dataclass(slots=True)
class BinOp:
    """``left op right`` (no nesting that would need parentheses)."""

    left: Expr
    op: str
    right: Expr


@dataclass(slots=True)
class Starred:
    """``*value`` (in a call)."""

    value: Expr


@dataclass(slots=True)
class ChildClass:
    """Placeholder for a nested block's constructor call, resolved once its class is known."""

    scope: str
    resolved: Expr | None = None


Expr = Name | Lit | Hole | Attr | Sub | Call | ListE | TupleE | DictE | BinOp | Starred | ChildClass


def flat(e: Expr) -> str:
    """The expression on one line."""
    t = type(e)  # the common node types first, by identity (a hot path of rendering)
    if t is Name:
        return e.id
    if t is Attr:
        return f"{flat(e.value)}.{e.attr}"
    if t is Hole:
        return flat(e.resolved) if e.resolved is not None else literal(e.value)
    if t is Call:
        return f"{flat(e.func)}({', '.join(_items(e))})"
    if t is Lit:
        return literal(e.value)
    return _flat(e)


def _flat(e: Expr) -> str:
    if isinstance(e, Name):
        return e.id
    if isinstance(e, Lit):
        return literal(e.value)
    if isinstance(e, Hole):
        return flat(e.resolved) if e.resolved is not None else literal(e.value)
    if isinstance(e, ChildClass):
        if e.resolved is None:
            raise ExprError(f"unresolved block class for {e.scope}")
        return flat(e.resolved)
    if isinstance(e, Attr):
        return f"{flat(e.value)}.{e.attr}"
    if isinstance(e, Sub):
        return f"{flat(e.value)}[{flat(e.index)}]"
    if isinstance(e, Call):
        return f"{flat(e.func)}({', '.join(_items(e))})"
    if isinstance(e, ListE):
        return "[" + ", ".join(flat(i) for i in e.items) + "]"
    if isinstance(e, TupleE):
        inner = ", ".join(flat(i) for i in e.items)
        return f"({inner},)" if len(e.items) == 1 else f"({inner})"
    if isinstance(e, DictE):
        return "{" + ", ".join(f"{flat(k)}: {flat(v)}" for k, v in e.items) + "}"
    if isinstance(e, BinOp):
        return f"{flat(e.left)} {e.op} {flat(e.right)}"
    if isinstance(e, Starred):
        return f"*{flat(e.value)}"
    raise ExprError(f"unknown expression {e!r}")


def _items(e: Call) -> list[str]:
    return [flat(a) for a in e.args] + [f"{k}={flat(v)}" for k, v in e.kwargs]


def _unwrap(e: Expr) -> Expr:
    while isinstance(e, (Hole, ChildClass)) and e.resolved is not None:
        e = e.resolved
    return e


def render(prefix: str, e: Expr, suffix: str, indent: int) -> list[str]:
    """Lines for ``prefix + e + suffix`` at ``indent`` levels, exploding brackets that do not fit."""
    pad = INDENT * indent
    one = f"{pad}{prefix}{flat(e)}{suffix}"
    if len(one) <= WIDTH:
        return [one]
    e = _unwrap(e)
    if isinstance(e, Call):
        head, parts, close = flat(e.func) + "(", [(None, a) for a in e.args] + list(e.kwargs), ")"
    elif isinstance(e, ListE):
        head, parts, close = "[", [(None, a) for a in e.items], "]"
    elif isinstance(e, TupleE):
        head, parts, close = "(", [(None, a) for a in e.items], ")"
    elif isinstance(e, DictE):
        lines = [f"{pad}{prefix}{{"]
        for k, v in e.items:
            lines.extend(render(f"{flat(k)}: ", v, ",", indent + 1))
        return lines + [f"{pad}}}{suffix}"]
    else:
        return [one]  # nothing to split; ruff leaves such lines alone too
    if not parts:
        return [one]
    lines = [f"{pad}{prefix}{head}"]
    for key, value in parts:
        lines.extend(render(f"{key}=" if key else "", value, ",", indent + 1))
    lines.append(f"{pad}{close}{suffix}")
    return lines


def _children(e: Any) -> tuple:
    t = type(e)
    if t is Hole or t is ChildClass:
        return (e.resolved,) if e.resolved is not None else ()
    if t is Attr or t is Starred:
        return (e.value,)
    if t is Sub:
        return (e.value, e.index)
    if t is Call:
        return (e.func, *e.args, *(v for _, v in e.kwargs))
    if t is ListE or t is TupleE:
        return tuple(e.items)
    if t is DictE:
        return tuple(x for kv in e.items for x in kv)
    if t is BinOp:
        return (e.left, e.right)
    return ()


def walk(e: Any):
    """Every expression node under ``e`` (depth first, in source order)."""
    stack = [e]
    while stack:
        node = stack.pop()
        yield node
        kids = _children(node)
        if kids:
            stack.extend(reversed(kids))


def shape_key(e: Any, child: Any = None) -> tuple:
    """A hashable description of ``e`` with holes abstracted (the structure, not the values).

    ``child(scope)`` gives the key of a nested block's class (its variant).
    """
    t = type(e)
    if t is Hole:
        return ("?",)
    if t is Name:
        return ("n", e.id)
    if t is Lit:
        return ("l", literal(e.value))
    if t is Attr:
        return ("a", shape_key(e.value, child), e.attr)
    if t is Call:
        return ("c", shape_key(e.func, child), tuple([shape_key(a, child) for a in e.args]),
                tuple([(k, shape_key(v, child)) for k, v in e.kwargs]))
    if t is ChildClass:
        if child is None:
            raise ExprError("shape_key needs a key for nested block classes")
        return ("class", child(e.scope))
    if t is Sub:
        return ("s", shape_key(e.value, child), shape_key(e.index, child))
    if t is ListE:
        return ("L", tuple([shape_key(i, child) for i in e.items]))
    if t is TupleE:
        return ("T", tuple([shape_key(i, child) for i in e.items]))
    if t is DictE:
        return ("D", tuple([(shape_key(k, child), shape_key(v, child)) for k, v in e.items]))
    if t is BinOp:
        return ("b", shape_key(e.left, child), e.op, shape_key(e.right, child))
    if t is Starred:
        return ("*", shape_key(e.value, child))
    raise ExprError(f"unknown expression {e!r}")
