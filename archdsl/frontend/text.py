"""The text front end: a lark LALR parser whose callbacks build the AST directly.

Building the AST in the parser's reduce callbacks (no intermediate parse tree) keeps parsing
linear and non-recursive, so deeply nested specs cannot overflow the Python stack here.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .. import ast as A
from ..diagnostics import Diagnostic, DiagnosticError, Loc

START_RULES = ("start", "chain_start", "args_start", "params_start", "expr_start", "element_start")

#: Words that are keywords somewhere in the text language or YAML structure keys; they cannot name
#: a layer, a ``let`` binding, a loop variable or a shortcut, so every spec converts either way.
RESERVED_NAMES = frozenset({
    "network", "input", "use", "let", "block", "loss", "init", "if", "else", "then", "as", "aux", "inline",
    "concat", "residual", "shortcut", "repeat", "dense", "true", "false", "none", "or", "and", "not",
    "group", "chain", "rules",
})

#: Longest integer literal accepted (far beyond any value expressions allow; bounds int() work).
MAX_INT_DIGITS = 100

_TOKEN_NAMES = {
    "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "COMMA": "','", "COLON": "':'", "EQUAL": "'='", "__ANON_0": "'->'", "NAME": "a name",
    "INT": "an integer", "FLOAT": "a number", "STRING": "a string", "SHAPE": "a shape like 3x224x224",
    "$END": "end of input", "COMP_OP": "a comparison", "PLUS": "'+'", "MINUS": "'-'",
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

    def _name(self, tok: Token, what: str) -> str:
        """A user-chosen name; reserved words are refused so both front ends accept the same names."""
        name = str(tok)
        if name in RESERVED_NAMES:
            raise DiagnosticError(Diagnostic("E001", f"'{name}' is a reserved word and cannot be {what}",
                                             self._loc(tok), hint="choose another name"))
        return name

    def _int(self, tok: Token) -> int:
        text = str(tok)
        if len(text) > MAX_INT_DIGITS:
            raise DiagnosticError(Diagnostic("E151", f"integer literal too large ({len(text)} digits)",
                                             self._loc(tok), hint=f"literals are limited to {MAX_INT_DIGITS} digits"))
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

    def network_decl(self, children: list) -> A.NetworkDecl:
        name, params = children
        return A.NetworkDecl(str(name), params or (), self._loc(name))

    def input_decl(self, children: list) -> A.InputDecl:
        kw, value = children
        if isinstance(value, Token):
            dims = tuple(A.Num(self._int(Token("INT", part, line=value.line, column=value.column)),
                               self._loc(value)) for part in str(value).split("x"))
            return A.InputDecl(dims, self._loc(value))
        return A.InputDecl(value.items, self._loc(kw))

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
        return A.If(cond, then, orelse, self._loc(kw))

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
        return A.IfExp(cond, then, orelse, self._loc(kw))

    def binop(self, children: list) -> A.BinOp:
        left, op, right = children
        return A.BinOp(str(op), left, right, self._loc(op))

    def unary(self, children: list) -> A.UnaryOp:
        op, operand = children
        return A.UnaryOp(str(op), operand, self._loc(op))

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
        return A.FuncCall(str(name), tuple(a for a in args if a is not None), self._loc(name))

    def list(self, children: list) -> A.ListExpr:
        kw, *items = children
        return A.ListExpr(tuple(c for c in items if c is not None), self._loc(kw))

    def index(self, children: list) -> A.Index:
        obj, kw, idx = children
        return A.Index(obj, idx, self._loc(kw))


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
    parser = Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        start=list(START_RULES),
        transformer=builder,
        maybe_placeholders=True,
    )
    return parser, builder


def parse_text(text: str, file: str, start: str = "start", line_offset: int = 0, col_offset: int = 0) -> Any:
    """Parse ``text`` (whole file or a fragment rule) into AST; syntax errors raise DiagnosticError."""
    parser, builder = _parser()
    # The builder stamps file and offsets into every location it creates.
    builder.file, builder.line_offset, builder.col_offset = file, line_offset, col_offset
    try:
        return parser.parse(text, start=start)
    except UnexpectedInput as exc:
        raise DiagnosticError(_syntax_diagnostic(exc, text, file, line_offset, col_offset)) from None


def _syntax_diagnostic(exc: UnexpectedInput, text: str, file: str, line_off: int, col_off: int) -> Diagnostic:
    line = getattr(exc, "line", 0) or 0
    col = getattr(exc, "column", 0) or 0
    if isinstance(exc, UnexpectedEOF) or line <= 0:
        line, col = _end_position(text)
    if line_off or col_off:
        col = col + col_off if line == 1 else col
        line += line_off
    loc = Loc(file, line, col)
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if 0 <= exc.pos_in_stream < len(text) else "?"
        hint = _char_hint(ch)
        return Diagnostic("E002", f"unexpected character {ch!r}", loc, hint=hint)
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        found = "end of input" if tok.type == "$END" else repr(str(tok))
        expected = sorted({_describe(t) for t in _acceptable(exc) if not t.startswith("_")})
        hint = ""
        if expected:
            shown = ", ".join(expected[:8]) + (", ..." if len(expected) > 8 else "")
            hint = f"expected {shown}"
        return Diagnostic("E001", f"syntax error: unexpected {found}", loc, hint=hint)
    return Diagnostic("E001", "syntax error: unexpected end of input", loc)


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
