"""The one AST both front ends produce: frozen dataclasses, each node carrying its location.

Locations are excluded from equality so that a spec converted between the text language and
YAML compares equal to the original.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Union

from .diagnostics import NOWHERE, Loc

#: A label written in backticks: any identifier, keywords included, and hyphens after the first
#: character (torchvision's RegNet names its blocks ``block1-0``); PyTorch accepts any module name
#: without a '.', and generated code reaches such names through ``getattr`` / ``add_module``.
ESCAPED_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")

#: Words that are keywords somewhere in the text language or YAML structure keys.  They cannot name
#: a ``let`` binding or a loop variable; a label or shortcut name that is one is written in
#: backticks (`` `repeat`: ... ``), so every spec converts either way.
RESERVED_NAMES = frozenset({
    "network", "input", "use", "let", "block", "loss", "init", "if", "else", "then", "as", "aux", "inline",
    "concat", "residual", "shortcut", "repeat", "dense", "true", "false", "none", "or", "and", "not",
    "group", "chain", "rules", "gate", "budget",
})


def _loc() -> Loc:
    return field(default=NOWHERE, compare=False, repr=False)


# ----------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Num:
    """An integer or float literal."""

    value: int | float
    loc: Loc = _loc()


@dataclass(frozen=True)
class Str:
    """A string literal."""

    value: str
    loc: Loc = _loc()


@dataclass(frozen=True)
class Const:
    """``true``, ``false`` or ``none``."""

    value: bool | None
    loc: Loc = _loc()


@dataclass(frozen=True)
class Name:
    """A reference to a parameter or ``let`` binding."""

    id: str
    loc: Loc = _loc()


@dataclass(frozen=True)
class ListExpr:
    """``[a, b, ...]``."""

    items: tuple[Expr, ...]
    loc: Loc = _loc()


@dataclass(frozen=True)
class BinOp:
    """Arithmetic, comparison or boolean binary operation; ``op`` is the operator's spelling."""

    op: str
    left: Expr
    right: Expr
    loc: Loc = _loc()


@dataclass(frozen=True)
class UnaryOp:
    """``-x``, ``+x`` or ``not x``."""

    op: str
    operand: Expr
    loc: Loc = _loc()


@dataclass(frozen=True)
class IfExp:
    """``if cond then a else b``."""

    cond: Expr
    then: Expr
    orelse: Expr
    loc: Loc = _loc()


@dataclass(frozen=True)
class FuncCall:
    """A call of a whitelisted function such as ``min`` or ``make_divisible``."""

    func: str
    args: tuple[Expr, ...]
    loc: Loc = _loc()


@dataclass(frozen=True)
class Index:
    """``xs[i]``."""

    obj: Expr
    index: Expr
    loc: Loc = _loc()


Expr = Union[Num, Str, Const, Name, ListExpr, BinOp, UnaryOp, IfExp, FuncCall, Index]

# ----------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Arg:
    """A call argument; ``name`` is None for positional ones."""

    name: str | None
    value: Expr
    loc: Loc = _loc()


@dataclass(frozen=True)
class Param:
    """A block or network parameter with an optional default."""

    name: str
    default: Expr | None
    loc: Loc = _loc()


@dataclass(frozen=True)
class Let:
    """``let name = expr``."""

    name: str
    value: Expr
    loc: Loc = _loc()


# ----------------------------------------------------------------------------- elements


@dataclass(frozen=True)
class Call:
    """A layer (registry op) or block instantiation: ``label: name(args)``.

    ``inline`` splices a block's layers into the enclosing scope instead of a scope of its own.
    """

    name: str
    args: tuple[Arg, ...]
    label: str | None = None
    loc: Loc = _loc()
    inline: bool = False


@dataclass(frozen=True)
class Group:
    """``label: { body }``: a nested sequence, a scope of its own."""

    body: tuple[Stmt, ...]
    label: str | None = None
    loc: Loc = _loc()


@dataclass(frozen=True)
class Concat:
    """``concat { branch ... }``: each chain of the body is a parallel branch."""

    body: tuple[Stmt, ...]
    label: str | None = None
    loc: Loc = _loc()


@dataclass(frozen=True)
class Shortcut:
    """The shortcut path of a residual: named scope, optional condition, body."""

    name: str | None
    cond: Expr | None
    body: tuple[Stmt, ...]
    loc: Loc = _loc()


@dataclass(frozen=True)
class Residual:
    """``residual(scale=, post=) { body } shortcut name if cond { body }``."""

    args: tuple[Arg, ...]
    body: tuple[Stmt, ...]
    shortcut: Shortcut | None
    label: str | None = None
    loc: Loc = _loc()


@dataclass(frozen=True)
class Gate:
    """``gate { body }``: the input multiplied by the body's output (broadcast), as in
    squeeze-and-excitation (a C x 1 x 1 body) or spatial attention (1 x H x W)."""

    body: tuple[Stmt, ...]
    label: str | None = None
    loc: Loc = _loc()


@dataclass(frozen=True)
class Repeat:
    """``repeat(n, prefix=, start=) as i { body }``."""

    args: tuple[Arg, ...]
    var: str | None
    body: tuple[Stmt, ...]
    label: str | None = None
    loc: Loc = _loc()


@dataclass(frozen=True)
class Dense:
    """``dense(n, prefix=, start=) as i { layer }``: DenseNet connectivity."""

    args: tuple[Arg, ...]
    var: str | None
    body: tuple[Stmt, ...]
    label: str | None = None
    loc: Loc = _loc()


Element = Union[Call, Group, Concat, Residual, Gate, Repeat, Dense]


@dataclass(frozen=True)
class Chain:
    """Elements joined by ``->``; a branch inside ``concat``."""

    elements: tuple[Element, ...]
    loc: Loc = _loc()


@dataclass(frozen=True)
class If:
    """``if cond { body } else { body }`` statement."""

    cond: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] | None
    loc: Loc = _loc()


@dataclass(frozen=True)
class Aux:
    """``aux(weight=) label: element``: a named side output tapped at this point."""

    args: tuple[Arg, ...]
    element: Element
    loc: Loc = _loc()


Stmt = Union[Let, Chain, If, Aux]


@dataclass(frozen=True)
class Block:
    """``block Name(params) { body }``."""

    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    loc: Loc = _loc()


@dataclass(frozen=True)
class Use:
    """``use "file.arch"``."""

    path: str
    loc: Loc = _loc()


@dataclass(frozen=True)
class InputDecl:
    """``input 3x224x224`` or ``input [c, h, w]``."""

    dims: tuple[Expr, ...]
    loc: Loc = _loc()


@dataclass(frozen=True)
class NetworkDecl:
    """``network name(params)``."""

    name: str
    params: tuple[Param, ...]
    loc: Loc = _loc()


@dataclass(frozen=True)
class Setting:
    """Training metadata: ``loss call`` or ``init target: call``."""

    kind: str
    target: str | None
    call: Call
    loc: Loc = _loc()


@dataclass(frozen=True)
class RulesDecl:
    """``rules(ignore = ["R301"], threshold = 4)``: design-rule configuration for this spec."""

    args: tuple[Arg, ...]
    loc: Loc = _loc()


#: The units a budget bound may carry: powers of 1000, as parameter and MAC counts are quoted.
BUDGET_UNITS = {"K": 10**3, "M": 10**6, "G": 10**9}


@dataclass(frozen=True)
class BudgetItem:
    """One clause of ``budget(params <= 5.5M)``: a whole-network figure and its upper bound.

    ``unit`` is the bound's suffix as written (``K``, ``M``, ``G``: powers of 1000, or ``""``), kept
    beside the number so that a printed spec reads as its source did; ``loc`` is the figure's name.
    """

    figure: str
    value: Expr
    unit: str = ""
    loc: Loc = _loc()


@dataclass(frozen=True)
class BudgetDecl:
    """``budget(params <= 5.5M, depth <= 60)``: the spec's budget statement (it may be split over several)."""

    items: tuple[BudgetItem, ...]
    loc: Loc = _loc()


@dataclass(frozen=True)
class SpecFile:
    """A whole spec (or a library of blocks when ``network`` is None)."""

    network: NetworkDecl | None
    input: InputDecl | None
    uses: tuple[Use, ...]
    lets: tuple[Let, ...]
    settings: tuple[Setting, ...]
    blocks: tuple[Block, ...]
    body: tuple[Stmt, ...]
    file: str = field(default="<string>", compare=False)
    rules: tuple[Arg, ...] = ()
    budget: tuple[BudgetItem, ...] = ()


def element_bodies(el: Element) -> list[tuple[Stmt, ...]]:
    """The statement sequences nested directly in ``el`` (a residual: its body, then its shortcut's)."""
    if isinstance(el, (Group, Concat, Gate, Repeat, Dense)):
        return [el.body]
    if isinstance(el, Residual):
        return [el.body] + ([el.shortcut.body] if el.shortcut is not None else [])
    return []


def iter_elements(stmts: tuple[Stmt, ...] | list[Stmt]) -> Iterator[Element]:
    """Every element in ``stmts`` and nested in them (both arms of an ``if``, aux heads), in source
    order; iterative, so nesting depth costs no Python stack."""
    stack: list[Stmt | Element] = list(reversed(stmts))
    while stack:
        node = stack.pop()
        if isinstance(node, Chain):
            stack.extend(reversed(node.elements))
        elif isinstance(node, If):
            stack.extend(reversed((*node.then, *(node.orelse or ()))))
        elif isinstance(node, Aux):
            stack.append(node.element)
        elif not isinstance(node, Let):
            yield node
            for body in reversed(element_bodies(node)):
                stack.extend(reversed(body))
