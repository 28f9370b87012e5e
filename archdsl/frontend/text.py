"""The text front end: a lark LALR parser whose callbacks build the AST directly.

Building the AST in the parser's reduce callbacks (no intermediate parse tree) keeps parsing
linear and non-recursive.  The passes after it recurse, so nesting is bounded here, where it can
be located: a pre-scan counts brackets before the parser runs, and the callbacks measure the depth
of expressions (``1 + 1 + ...`` nests without brackets) and of ``else if`` chains (the ``nesting``
limit, E152).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .. import ast as A
from .. import limits
from ..ast import BUDGET_UNITS, RESERVED_NAMES
from ..diagnostics import Diagnostic, DiagnosticError, Loc
from .tables import make_parser

_TOKEN_NAMES = {
    "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "COMMA": "','", "COLON": "':'", "EQUAL": "'='", "__ANON_0": "'->'", "NAME": "a name",
    "INT": "an integer", "FLOAT": "a number", "STRING": "a string", "SHAPE": "a shape like 3x224x224",
    "$END": "end of input", "COMP_OP": "a comparison", "PLUS": "'+'", "MINUS": "'-'",
    "QUANTITY": "a number with a unit like 5.5M",
}


def grammar_path() -> Path:
    """Location of ``archdsl.lark``: inside the installed package, else the repo's ``grammar/``."""
    packaged = Path(__file__).resolve().parent.parent / "grammar" / "archdsl.lark"
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "grammar" / "archdsl.lark"


def _describe(token_type: str) -> str:
    if token_type in _TOKEN_NAMES:
        return _TOKEN_NAMES[token_type]
    if token_type.startswith("__ANON") or token_type.isupper():
        return token_type.lower()
    return token_type


class _Builder(Transformer):
    """Reduce callbacks: lark tokens and children in, AST nodes out."""

    def __init__(self, file: str) -> None:
        super().__init__(visit_tokens=False)
        self.file = file
        self.line_offset = 0
        self.col_offset = 0
        self.max_digits = limits.DEFAULT.int_digits
        self.max_depth = limits.DEFAULT.nesting
        # id -> (node, depth) of the composite expressions and 'if' statements built so far in
        # this parse; holding the node keeps its id from being reused while the entry lives.
        self.depths: dict[int, tuple[object, int]] = {}

    def start_parse(self, file: str, line_offset: int, col_offset: int) -> None:
        """Reset per-parse state: where locations point, and the limits in force."""
        lim = limits.current()
        self.file, self.line_offset, self.col_offset = file, line_offset, col_offset
        self.max_digits, self.max_depth = lim.int_digits, lim.nesting
        self.depths.clear()

    def _nested(self, node: Any, children: tuple, what: str = "expression") -> Any:
        """Record ``node``'s depth (one more than its deepest child); E152 beyond the limit."""
        depths = self.depths
        depth = 0
        for child in children:
            entry = depths.get(id(child))
            if entry is not None and entry[1] > depth:
                depth = entry[1]
        depth += 1
        if depth > self.max_depth:
            raise DiagnosticError(Diagnostic("E152", f"{what} nested more than {self.max_depth} deep", node.loc,
                                             hint="simplify it, or raise the limit with --limit nesting=N"))
        depths[id(node)] = (node, depth)
        return node

    def _name(self, tok: Token, what: str) -> str:
        """A user-chosen name; reserved words are refused so both front ends accept the same names,
        unless written in backticks (`` `repeat` ``), the escape for labels that are keywords."""
        name = str(tok)
        if tok.type == "QNAME":
            return name[1:-1]
        if name in RESERVED_NAMES:
            raise DiagnosticError(Diagnostic("E001", f"'{name}' is a reserved word and cannot be {what}",
                                             self._loc(tok), hint=_reserved_hint(name, what)))
        return name

    def _int(self, tok: Token) -> int:
        text = str(tok)
        # Refuse what cannot be within 10**int_digits before int() does work that grows with the
        # length; the evaluator checks the exact magnitude of every value.
        if len(text) > self.max_digits + 1 and len(text.lstrip("0")) > self.max_digits + 1:
            raise DiagnosticError(Diagnostic("E151", f"integer literal too large ({len(text)} digits)",
                                             self._loc(tok), hint=int_limit_hint(self.max_digits)))
        return int(text)

    def _loc(self, item: Any) -> Loc:
        line = getattr(item, "line", None)
        col = getattr(item, "column", None)
        if not line or getattr(item, "empty", False):
            return Loc(self.file, 0, 0)
        if line == 1:
            col += self.col_offset
        return Loc(self.file, line + self.line_offset, col)

    # ------------------------------------------------------------------ top level
    def start(self, children: list) -> list:
        return list(children)

    def chain_start(self, children: list) -> A.Chain:
        return children[0]

    def element_start(self, children: list) -> A.Element:
        return children[0]

    def expr_start(self, children: list) -> A.Expr:
        return children[0]

    def args_start(self, children: list) -> tuple:
        return tuple(c for c in children if c is not None)

    def params_start(self, children: list) -> tuple:
        return tuple(c for c in children if c is not None)

    def bound_start(self, children: list) -> tuple[A.Expr, str]:
        return _bound(children[0])

    def network_decl(self, children: list) -> A.NetworkDecl:
        name, params = children
        return A.NetworkDecl(str(name), params or (), self._loc(name))

    def input_decl(self, children: list) -> A.InputDecl:
        kw, value = children
        if isinstance(value, Token):
            return A.InputDecl(self._shape_dims(value), self._loc(value))
        return A.InputDecl(value.items, self._loc(kw))

    def _shape_dims(self, tok: Token) -> tuple[A.Expr, ...]:
        """``3x224x224`` as numbers; ``3xHxW`` with the size symbols as names (each at its column)."""
        dims: list[A.Expr] = []
        col = tok.column
        for i, part in enumerate(str(tok).split("x")):
            at = Token("INT", part, line=tok.line, column=col)
            if part.isdigit():
                dims.append(A.Num(self._int(at), self._loc(tok)))
            elif (i, part) in ((1, "H"), (2, "W")):
                dims.append(A.Name(part, self._loc(at)))
            else:
                where = "the channels are a number" if i == 0 else \
                    f"the {('height', 'width')[i - 1]} is a number or {'HW'[i - 1]}" if i < 3 else "an input is C x H x W"
                raise DiagnosticError(Diagnostic(
                    "E114", f"'{part}' is not a size: {where}", self._loc(at),
                    hint="write the height as H and the width as W for every size: input 3xHxW (or 3x224xW)"))
            col += len(part) + 1
        return tuple(dims)

    def use_decl(self, children: list) -> A.Use:
        (tok,) = children
        return A.Use(_unquote(tok, self.file), self._loc(tok))

    def let_decl(self, children: list) -> A.Let:
        name, value = children
        return A.Let(self._name(name, "a let name"), value, self._loc(name))

    def block_decl(self, children: list) -> A.Block:
        name, params, body = children
        return A.Block(str(name), params or (), body, self._loc(name))

    def rules_decl(self, children: list) -> A.RulesDecl:
        kw, args = children
        return A.RulesDecl(args or (), self._loc(kw))

    def budget_decl(self, children: list) -> A.BudgetDecl:
        kw, *items = children
        return A.BudgetDecl(tuple(i for i in items if i is not None), self._loc(kw))

    def budget_item(self, children: list) -> A.BudgetItem:
        name, op, bound = children
        if str(op) != "<=":
            raise DiagnosticError(Diagnostic(
                "E402", f"a budget is an upper bound: '{name} {op} ...' is not one", self._loc(op),
                hint=f"write '{name} <= ...'"))
        value, unit = _bound(bound)
        return A.BudgetItem(str(name), value, unit, self._loc(name))

    def quantity(self, children: list) -> tuple[A.Num, str]:
        (tok,) = children
        text = str(tok)
        digits = len(text.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
        number, unit = text[:digits], text[digits:]
        if unit not in BUDGET_UNITS:
            raise DiagnosticError(Diagnostic(
                "E403", f"unknown unit '{unit}' in {text!r}", _shifted(self._loc(tok), digits),
                hint="units are K (10**3), M (10**6) and G (10**9); or write the number in full"))
        if "." not in number:
            return A.Num(self._int(Token("INT", number, line=tok.line, column=tok.column)), self._loc(tok)), unit
        value = float(number)
        if "e" in repr(value):  # printed back, the number would not read as a number with a unit
            raise DiagnosticError(Diagnostic("E403", f"{text!r} cannot be written with a unit", self._loc(tok),
                                             hint="write the number in full, without a unit"))
        return A.Num(value, self._loc(tok)), unit

    def loss(self, children: list) -> A.Setting:
        kw, call = children
        return A.Setting("loss", None, call, self._loc(kw))

    def init(self, children: list) -> A.Setting:
        kw, target, call = children
        return A.Setting("init", str(target), call, self._loc(kw))

    def params(self, children: list) -> tuple:
        return tuple(c for c in children if c is not None)

    def param(self, children: list) -> A.Param:
        name, default = children
        return A.Param(str(name), default, self._loc(name))

    def body(self, children: list) -> tuple:
        return tuple(children)

    def if_stmt(self, children: list) -> A.If:
        kw, cond, then, orelse = children
        # 'else if' nests without braces; the passes recurse along the chain.
        return self._nested(A.If(cond, then, orelse, self._loc(kw)), orelse or (), "'else if' chain")

    def else_clause(self, children: list) -> tuple:
        (value,) = children
        return (value,) if isinstance(value, A.If) else value

    def aux_stmt(self, children: list) -> A.Aux:
        kw, args, element = children
        return A.Aux(args or (), element, self._loc(kw))

    def chain(self, children: list) -> A.Chain:
        return A.Chain(tuple(children), children[0].loc)

    def element(self, children: list) -> A.Element:
        label, atom = children
        if label is None:
            return atom
        return _with_label(atom, self._name(label, "a label"))

    def label(self, children: list) -> Token:
        return children[0]

    def call(self, children: list) -> A.Call:
        inline, name, args = children
        return A.Call(str(name), args or (), None, self._loc(name), inline is not None)

    def argl(self, children: list) -> tuple:
        return tuple(c for c in children if c is not None)

    def arg(self, children: list) -> A.Arg:
        (value,) = children
        return A.Arg(None, value, value.loc)

    def kwarg(self, children: list) -> A.Arg:
        name, value = children
        return A.Arg(str(name), value, self._loc(name))

    def group(self, children: list) -> A.Group:
        kw, body = children
        return A.Group(body, None, self._loc(kw))

    def concat(self, children: list) -> A.Concat:
        kw, body = children
        return A.Concat(body, None, self._loc(kw))

    def residual(self, children: list) -> A.Residual:
        kw, args, body, shortcut = children
        return A.Residual(args or (), body, shortcut, None, self._loc(kw))

    def shortcut(self, children: list) -> A.Shortcut:
        kw, name, _if, cond, body = children
        return A.Shortcut(self._name(name, "a shortcut name") if name is not None else None, cond, body,
                          self._loc(kw))

    def gate(self, children: list) -> A.Gate:
        kw, body = children
        return A.Gate(body, None, self._loc(kw))

    def repeat(self, children: list) -> A.Repeat:
        kw, args, var, body = children
        return A.Repeat(args, self._name(var, "a loop variable") if var is not None else None, body, None,
                        self._loc(kw))

    def dense(self, children: list) -> A.Dense:
        kw, args, var, body = children
        return A.Dense(args, self._name(var, "a loop variable") if var is not None else None, body, None,
                       self._loc(kw))

    # ------------------------------------------------------------------ expressions
    def ifexp(self, children: list) -> A.IfExp:
        kw, cond, then, orelse = children
        return self._nested(A.IfExp(cond, then, orelse, self._loc(kw)), (cond, then, orelse))

    def binop(self, children: list) -> A.BinOp:
        left, op, right = children
        return self._nested(A.BinOp(str(op), left, right, self._loc(op)), (left, right))

    def unary(self, children: list) -> A.UnaryOp:
        op, operand = children
        return self._nested(A.UnaryOp(str(op), operand, self._loc(op)), (operand,))

    def int_lit(self, children: list) -> A.Num:
        (tok,) = children
        return A.Num(self._int(tok), self._loc(tok))

    def float_lit(self, children: list) -> A.Num:
        (tok,) = children
        value = float(tok)
        if value in (float("inf"), float("-inf")):
            raise DiagnosticError(Diagnostic("E151", "number literal is out of range", self._loc(tok),
                                             hint="numbers must be finite"))
        return A.Num(value, self._loc(tok))

    def string(self, children: list) -> A.Str:
        (tok,) = children
        return A.Str(_unquote(tok, self.file), self._loc(tok))

    def true(self, children: list) -> A.Const:
        return A.Const(True, self._loc(children[0]))

    def false(self, children: list) -> A.Const:
        return A.Const(False, self._loc(children[0]))

    def none(self, children: list) -> A.Const:
        return A.Const(None, self._loc(children[0]))

    def name(self, children: list) -> A.Name:
        (tok,) = children
        return A.Name(str(tok), self._loc(tok))

    def fcall(self, children: list) -> A.FuncCall:
        name, *args = children
        call = A.FuncCall(str(name), tuple(a for a in args if a is not None), self._loc(name))
        return self._nested(call, call.args)

    def list(self, children: list) -> A.ListExpr:
        kw, *items = children
        lst = A.ListExpr(tuple(c for c in items if c is not None), self._loc(kw))
        return self._nested(lst, lst.items)

    def index(self, children: list) -> A.Index:
        obj, kw, idx = children
        return self._nested(A.Index(obj, idx, self._loc(kw)), (obj, idx))


def _bound(bound: A.Expr | tuple[A.Num, str]) -> tuple[A.Expr, str]:
    """A budget bound as (value, unit): a number with a unit comes as a pair, an expression alone."""
    return bound if isinstance(bound, tuple) else (bound, "")


def _shifted(loc: Loc, cols: int) -> Loc:
    """``loc`` moved ``cols`` columns to the right (to point inside a token)."""
    return dataclasses.replace(loc, col=loc.col + cols)


def _with_label(atom: A.Element, label: str) -> A.Element:
    return dataclasses.replace(atom, label=label)


_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\'": "'", "\\n": "\n", "\\t": "\t"}


def _unquote(tok: Token, file: str) -> str:
    body = str(tok)[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "\\":
            out.append(_ESCAPES[body[i : i + 2]])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


@functools.lru_cache(maxsize=1)
def _parser() -> tuple[Lark, _Builder]:
    builder = _Builder("<string>")
    # From the pre-generated tables when they match the grammar (see tables.py): lark's table
    # construction would cost about 0.1 s on every run.
    parser = make_parser(grammar_path().read_text(encoding="utf-8"), builder)
    return parser, builder


def int_limit_hint(digits: int) -> str:
    """The hint of an E151 about an integer beyond ``10 ** digits``."""
    return f"integers are limited to 10**{digits}; raise it with --limit int_digits=N"


def parse_text(text: str, file: str, start: str = "start", line_offset: int = 0, col_offset: int = 0) -> Any:
    """Parse ``text`` (whole file or a fragment rule) into AST; syntax errors raise DiagnosticError."""
    parser, builder = _parser()
    # The builder stamps file and offsets into every location it creates.
    builder.start_parse(file, line_offset, col_offset)
    check_nesting(text, file, builder.max_depth, line_offset, col_offset)
    try:
        return parser.parse(text, start=start)
    except UnexpectedInput as exc:
        raise DiagnosticError(_syntax_diagnostic(exc, text, file, line_offset, col_offset, start)) from None
    finally:
        builder.depths.clear()


#: Brackets (groups 1 and 2), skipping strings and comments, whose brackets do not nest.
_BRACKETS = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|#[^\n]*|([\[({])|([\])}])')


#: Everything but brackets: strings, comments, and runs of other characters.
_NOT_BRACKETS = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|#[^\n]*|[^\[\](){}"\'#]+')
_STEP = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1, '"': 0, "'": 0, "#": 0}


def check_nesting(text: str, file: str, limit: int, line_offset: int = 0, col_offset: int = 0) -> None:
    """E152 at the first bracket nested deeper than ``limit`` (before the parser sees the text)."""
    if text.count("(") + text.count("[") + text.count("{") <= limit:
        return  # cannot nest deeper: the common case costs three C-level counts
    # The running depth, in C.  It is not clamped at 0 as the real one is, but until the first
    # unmatched closer (where the parser stops with a syntax error) the two are the same.
    brackets = _NOT_BRACKETS.sub("", text)
    if max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0) <= limit:
        return
    depth = 0
    for m in _BRACKETS.finditer(text):
        kind = m.lastindex
        if kind == 1:
            depth += 1
            if depth > limit:
                raise DiagnosticError(Diagnostic(
                    "E152", f"'{m.group(1)}' nested more than {limit} deep",
                    _offset_loc(text, m.start(), file, line_offset, col_offset),
                    hint="simplify the spec, or raise the limit with --limit nesting=N"))
        elif kind == 2 and depth:
            depth -= 1


def _offset_loc(text: str, pos: int, file: str, line_offset: int, col_offset: int) -> Loc:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    if line == 1:
        col += col_offset
    return Loc(file, line + line_offset, col)


def _syntax_diagnostic(exc: UnexpectedInput, text: str, file: str, line_off: int, col_off: int,
                       start: str = "start") -> Diagnostic:
    def located(line: int, col: int) -> Loc:
        if line_off or col_off:
            col = col + col_off if line == 1 else col
            line += line_off
        return Loc(file, line, col)

    line = getattr(exc, "line", 0) or 0
    col = getattr(exc, "column", 0) or 0
    at_end = isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END")
    if at_end and isinstance(exc, UnexpectedToken) and getattr(exc.token, "end_line", None):
        # lark stamps end of input with the last token's start; point just after that token
        line, col = exc.token.end_line, exc.token.end_column
    elif isinstance(exc, UnexpectedEOF) or line <= 0:
        line, col = _end_position(text)
    loc = located(line, col)
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        ch = text[pos] if 0 <= pos < len(text) else "?"
        if ch in "\"'":
            bad = _bad_escape(text, pos)
            if bad is not None:
                return Diagnostic("E002", f"invalid escape {text[bad:bad + 2]!r} in string",
                                  located(*_position(text, bad)), hint="strings allow \\\\, \\\", \\', \\n and \\t")
        hint = _char_hint(ch)
        return Diagnostic("E002", f"unexpected character {ch!r}", loc, hint=hint)
    hint = ""
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        misused = _misused_quantity(exc, text, start)
        if misused is not None:
            at, message, quantity_hint = misused
            return Diagnostic("E403", message, located(*_position(text, at)), hint=quantity_hint)
        found = "end of input" if tok.type == "$END" else repr(str(tok))
        expected = sorted({_describe(t) for t in _acceptable(exc) if not t.startswith("_")})
        if expected:
            shown = ", ".join(expected[:8]) + (", ..." if len(expected) > 8 else "")
            hint = f"expected {shown}"
        keyword = _keyword_label(exc, text)
        if keyword:
            hint = _reserved_hint(keyword, "a label")
        tuple_hint = _tuple_hint(exc, text)
        if tuple_hint:
            hint = tuple_hint
    else:
        found = "end of input"
    if at_end:
        opener = _unclosed_bracket(text)
        if opener is not None:
            where = located(*_position(text, opener))
            hint = f"the '{text[opener]}' at line {where.line}, column {where.col} is never closed" \
                + (f"; {hint}" if hint else "")
    return Diagnostic("E001", f"syntax error: unexpected {found}", loc, hint=hint)


_WORD_BEFORE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\Z")


def _keyword_label(exc: UnexpectedToken, text: str) -> str | None:
    """The keyword in ``repeat: ...`` when the parser stopped at its ':' (a keyword used as a label)."""
    if exc.token.type != "COLON" or getattr(exc.token, "start_pos", None) is None:
        return None
    m = _WORD_BEFORE.search(text, 0, exc.token.start_pos)
    return m.group(1) if m and m.group(1) in RESERVED_NAMES else None


_CALLEE_BEFORE = re.compile(r"[A-Za-z0-9_`]\s*\Z")


def _tuple_hint(exc: UnexpectedToken, text: str) -> str:
    """``write a list: [3, 3]`` when the parser stopped at a ',' inside parentheses that are not a
    call's (``conv2d(16, (3, 3))``): a Python tuple, which archdsl writes as a list."""
    pos = getattr(exc.token, "start_pos", None)
    if exc.token.type != "COMMA" or pos is None:
        return ""
    opener = _unclosed_bracket(text[:pos])
    if opener is None or text[opener] != "(" or _CALLEE_BEFORE.search(text, 0, opener):
        return ""
    close = _matching_close(text, opener)
    inner = text[opener + 1:close] if close is not None else ""
    if close is None or "\n" in inner or len(inner) > 60:
        return "write a list, in brackets: [a, b] (archdsl has no tuples)"
    items = ", ".join(part.strip() for part in inner.split(",") if part.strip())
    return f"write a list: [{items}] (archdsl has no tuples)"


def _matching_close(text: str, opener: int) -> int | None:
    """Index of the ')' that closes the '(' at ``opener`` (None when it is not closed)."""
    depth = 0
    for m in _BRACKETS.finditer(text, opener):
        if m.lastindex == 1:
            depth += 1
        elif m.lastindex == 2:
            depth -= 1
            if depth == 0:
                return m.start() if m.group(2) == ")" else None
    return None


_NUMBER_BEFORE = re.compile(r"(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)\Z")
_QUANTITY_BEFORE = re.compile(r"(?<![A-Za-z0-9_.])(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([A-Za-z]+)\s*\Z")
_BUDGET_OPEN = re.compile(r"\bbudget\s*\(")
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "DSLASH", "PERCENT", "POW", "LSQB"}


def _misused_quantity(exc: UnexpectedToken, text: str, start: str) -> tuple[int, str, str] | None:
    """E403 (index, message, hint) for a number with a unit (``5M``) where a budget bound holds one
    that is not a bound on its own: negated (``-5M``) or part of an expression (``width * 1M``).

    The lexer reads ``5M`` as a quantity only where a whole bound may stand, so elsewhere it arrives
    as a number and a name, or as a quantity followed by an operator: found here, after the fact."""
    pos = getattr(exc.token, "start_pos", None)
    if pos is None or not _in_bound(text, pos, start):
        return None
    before = text[:pos]
    number = _NUMBER_BEFORE.search(before) if exc.token.type == "NAME" else None
    if number is not None:
        at, quantity, unit = number.start(), number.group() + str(exc.token), str(exc.token)
    else:
        m = _QUANTITY_BEFORE.search(before) if exc.token.type in _OPERATORS else None
        if m is None:
            return None
        at, quantity, unit = m.start(), m.group().rstrip(), m.group(1)
    if unit not in BUDGET_UNITS:
        return (at + len(quantity) - len(unit), f"unknown unit '{unit}' in {quantity!r}",
                "units are K (10**3), M (10**6) and G (10**9); or write the number in full")
    lead = text[:at].rstrip()
    if lead.endswith("-") and _bound_starts(lead[:-1].rstrip(), start):
        return (len(lead) - 1, f"a budget bound cannot be negative, got -{_clipped(quantity)}",
                "a budget is an upper bound on a count: 0 or more")
    return (at, f"a number with a unit ({_clipped(quantity)}) is a whole bound, not part of an expression",
            f"write the number in full inside an expression{_in_full(quantity[:-len(unit)], unit)}")


def _in_full(number: str, unit: str) -> str:
    """``": 1500 for 1.5K"``; nothing for a number too long to be worth converting (hostile input)."""
    if len(number) > 30:
        return ""
    full = Fraction(number) * BUDGET_UNITS[unit]
    written = str(full.numerator) if full.denominator == 1 else str(float(full))
    return f": {written} for {number}{unit}"


def _clipped(text: str, limit: int = 40) -> str:
    """``text``, cut short with an ellipsis when it is longer than ``limit`` characters."""
    return text if len(text) <= limit else text[:limit] + "..."


def _in_bound(text: str, pos: int, start: str) -> bool:
    """Whether ``text[pos]`` is inside a budget bound: a bound fragment (YAML) or ``budget(...)``."""
    if start == "bound_start":
        return True
    # a 'budget(' in a comment opens nothing
    opens = [m for m in _BUDGET_OPEN.finditer(text, 0, pos) if "#" not in text[text.rfind("\n", 0, m.start()) + 1:m.start()]]
    if not opens:
        return False
    close = _matching_close(text, opens[-1].end() - 1)
    return close is None or close >= pos


def _bound_starts(before: str, start: str) -> bool:
    """Whether a bound begins right after ``before`` (already stripped of trailing space)."""
    return before.endswith("<=") or (start == "bound_start" and not before)


def _reserved_hint(name: str, what: str) -> str:
    """How to use a reserved word anyway: labels take the backtick escape, other names do not."""
    if what == "a label" or what == "a shortcut name":
        return f"'{name}' is a keyword; write it in backticks to use it as {what}: `{name}`"
    return "choose another name"


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of ``text[index]``."""
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


_CLOSERS = {")": "(", "]": "[", "}": "{"}


def _unclosed_bracket(text: str) -> int | None:
    """Index of the innermost bracket left open at the end of ``text`` (strings and comments skipped)."""
    stack: list[int] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif ch in "\"'":
            i += 1
            while i < n and text[i] not in (ch, "\n"):
                i += 2 if text[i] == "\\" else 1
        elif ch in "([{":
            stack.append(i)
        elif ch in _CLOSERS and stack and text[stack[-1]] == _CLOSERS[ch]:
            stack.pop()
        i += 1
    return stack[-1] if stack else None


def _bad_escape(text: str, quote: int) -> int | None:
    """Index of an invalid escape in the string opened at ``quote`` (None when it is not one)."""
    i = quote + 1
    while i < len(text) and text[i] not in (text[quote], "\n"):
        if text[i] == "\\":
            if text[i + 1:i + 2] not in ("\\", '"', "'", "n", "t"):
                return i
            i += 1
        i += 1
    return None


def _acceptable(exc: UnexpectedToken) -> set[str]:
    """Terminals the parser would really accept here.

    ``exc.expected`` is the LALR state's lookahead set, which the several start rules pollute (every
    expression state "expects" end of input because ``expr_start`` may end there); asking the
    interactive parser (callbacks off) gives the exact set."""
    try:
        accepted = exc.interactive_parser.accepts()
    except Exception:  # noqa: BLE001 - only a better hint is at stake; fall back to the state's set
        return set(exc.expected)
    return accepted or set(exc.expected)


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def _char_hint(ch: str) -> str:
    if ch in "\"'":
        return "unterminated string (strings must close on the same line)"
    if ch == "\t":
        return "tab characters are allowed only as whitespace"
    if ch == "x":
        return "shapes are written 3x224x224 only after 'input'; kernels are [kh, kw]"
    return "archdsl identifiers are ASCII letters, digits and '_'"
