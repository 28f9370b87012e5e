"""AST -> source, for both front ends: the text language and YAML.

Printing and re-parsing gives an equal AST (locations aside); ``archdsl convert`` relies on it, and
on :func:`rebase_uses` to keep a spec's imports pointing at the same files from another folder.
Expressions are printed with the fewest parentheses the grammar's precedence needs.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import ast as A
from ..ast import RESERVED_NAMES
from ..diagnostics import DiagnosticError

_PREC = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, ">": 4, "<=": 4, ">=": 4,
         "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6, "**": 8}
_ATOM = 9


def _prec(e: A.Expr) -> int:
    if isinstance(e, A.IfExp):
        return 0
    if isinstance(e, A.BinOp):
        return _PREC[e.op]
    if isinstance(e, A.UnaryOp):
        return 3 if e.op == "not" else 7
    return _ATOM


def quote(s: str) -> str:
    """A double-quoted string literal of the spec language."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def expr(e: A.Expr, min_prec: int = 0) -> str:
    """Print an expression, parenthesized if its precedence is below ``min_prec``."""
    text = _expr(e)
    return f"({text})" if _prec(e) < min_prec else text


def _num(v: int | float) -> str:
    if isinstance(v, float):
        r = repr(v)
        return r if any(c in r for c in ".e") else r + ".0"
    return str(v)


def _expr(e: A.Expr) -> str:
    if isinstance(e, A.Num):
        return _num(e.value)
    if isinstance(e, A.Str):
        return quote(e.value)
    if isinstance(e, A.Const):
        return {True: "true", False: "false", None: "none"}[e.value]
    if isinstance(e, A.Name):
        return e.id
    if isinstance(e, A.ListExpr):
        return "[" + ", ".join(expr(x) for x in e.items) + "]"
    if isinstance(e, A.FuncCall):
        return f"{e.func}(" + ", ".join(expr(x) for x in e.args) + ")"
    if isinstance(e, A.Index):
        return f"{expr(e.obj, _ATOM)}[{expr(e.index)}]"
    if isinstance(e, A.IfExp):
        return f"if {expr(e.cond)} then {expr(e.then)} else {expr(e.orelse)}"
    if isinstance(e, A.UnaryOp):
        if e.op == "not":
            return f"not {expr(e.operand, 3)}"
        return f"{e.op}{expr(e.operand, 7)}"
    if isinstance(e, A.BinOp):
        p = _PREC[e.op]
        if e.op == "**":
            return f"{expr(e.left, _ATOM)} ** {expr(e.right, 7)}"
        if p == 4:
            return f"{expr(e.left, 5)} {e.op} {expr(e.right, 5)}"
        return f"{expr(e.left, p)} {e.op} {expr(e.right, p + 1)}"
    raise TypeError(f"not an expression: {type(e).__name__}")


def args(items: Sequence[A.Arg]) -> str:
    """``a, b, name = c``."""
    return ", ".join(expr(a.value) if a.name is None else f"{a.name} = {expr(a.value)}" for a in items)


def params(items: Sequence[A.Param]) -> str:
    """``a, b = 1``."""
    return ", ".join(p.name if p.default is None else f"{p.name} = {expr(p.default)}" for p in items)


def call(c: A.Call) -> str:
    """``[inline ]name[(args)]`` without the label."""
    head = ("inline " if c.inline else "") + c.name
    return f"{head}({args(c.args)})" if c.args else head


# ----------------------------------------------------------------------------- text


class _TextPrinter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def body(self, stmts: Sequence[A.Stmt], depth: int) -> None:
        for st in stmts:
            self.stmt(st, depth)

    def stmt(self, st: A.Stmt, depth: int) -> None:
        if isinstance(st, A.Let):
            self.emit(depth, f"let {st.name} = {expr(st.value)}")
        elif isinstance(st, A.Chain):
            self.chain(st, depth)
        elif isinstance(st, A.If):
            self.if_(st, depth, "")
        elif isinstance(st, A.Aux):
            head = f"aux({args(st.args)}) " if st.args else "aux "
            self.element(st.element, depth, head)

    def if_(self, st: A.If, depth: int, prefix: str) -> None:
        self.emit(depth, f"{prefix}if {expr(st.cond)} {{")
        self.body(st.then, depth + 1)
        if st.orelse is None:
            self.emit(depth, "}")
        elif len(st.orelse) == 1 and isinstance(st.orelse[0], A.If):
            self.lines[-1:] = self.lines[-1:]
            self.if_(st.orelse[0], depth, "} else ")
        else:
            self.emit(depth, "} else {")
            self.body(st.orelse, depth + 1)
            self.emit(depth, "}")

    def chain(self, ch: A.Chain, depth: int) -> None:
        if all(isinstance(el, A.Call) for el in ch.elements):
            self.emit(depth, " -> ".join(labelled(el) for el in ch.elements))
            return
        for i, el in enumerate(ch.elements):
            self.element(el, depth, "-> " if i else "")

    def element(self, el: A.Element, depth: int, prefix: str) -> None:
        lab = f"{label_text(el.label)}: " if el.label else ""
        head = prefix + lab
        if isinstance(el, A.Call):
            self.emit(depth, head + call(el))
        elif isinstance(el, A.Group):
            self.block(depth, head + "{", el.body)
        elif isinstance(el, A.Concat):
            self.block(depth, head + "concat {", el.body)
        elif isinstance(el, A.Residual):
            a = f"({args(el.args)})" if el.args else ""
            self.block(depth, head + f"residual{a} {{", el.body, close=el.shortcut is None)
            if el.shortcut is not None:
                sc = el.shortcut
                name = f" {label_text(sc.name)}" if sc.name else ""
                cond = f" if {expr(sc.cond)}" if sc.cond is not None else ""
                self.block(depth, f"}} shortcut{name}{cond} {{", sc.body)
        elif isinstance(el, A.Gate):
            self.block(depth, head + "gate {", el.body)
        elif isinstance(el, (A.Repeat, A.Dense)):
            kw = "repeat" if isinstance(el, A.Repeat) else "dense"
            var = f" as {el.var}" if el.var else ""
            self.block(depth, head + f"{kw}({args(el.args)}){var} {{", el.body)

    def block(self, depth: int, opener: str, body: Sequence[A.Stmt], close: bool = True) -> None:
        self.emit(depth, opener)
        self.body(body, depth + 1)
        if close:
            self.emit(depth, "}")


def label_text(name: str) -> str:
    """A label as source text: in backticks when it is a reserved word or not an identifier
    (`` `repeat` ``, `` `block1-0` ``)."""
    return f"`{name}`" if name in RESERVED_NAMES or not name.isidentifier() else name


def labelled(c: A.Call) -> str:
    """``label: name(args)`` (the label only when the call has one)."""
    return (f"{label_text(c.label)}: " if c.label else "") + call(c)


def leading_comments(source: str) -> str:
    """The comment block a spec's source opens with (comment and blank lines before the first
    statement), for printed output that should keep at least the spec's header comments; '' when the
    source does not open with a comment.  Both front ends write comments as ``#`` lines."""
    out: list[str] = []
    for line in source.split("\n"):
        if line.strip() and not line.lstrip().startswith("#"):
            break
        out.append(line.rstrip())
    text = "\n".join(out).strip("\n")
    return text + "\n\n" if text else ""


_SHAPE_OK = re.compile(r"^[0-9]+$")


def _input_text(decl: A.InputDecl) -> str:
    if all((isinstance(d, A.Num) and isinstance(d.value, int) and not isinstance(d.value, bool) and d.value >= 0)
           or (isinstance(d, A.Name) and (i, d.id) in ((1, "H"), (2, "W"))) for i, d in enumerate(decl.dims)) \
            and len(decl.dims) >= 2:
        # 3xHxW: the size symbols read back as the names they are
        return "x".join(str(d.value) if isinstance(d, A.Num) else d.id for d in decl.dims)
    return "[" + ", ".join(expr(d) for d in decl.dims) + "]"


def bound(item: A.BudgetItem) -> str:
    """A budget clause's bound as written: ``5.5M``, ``60``, ``2 * base``."""
    return _num(item.value.value) + item.unit if item.unit and isinstance(item.value, A.Num) else expr(item.value)


def to_text(spec: A.SpecFile) -> str:
    """Print a whole spec in the text language."""
    p = _TextPrinter()
    if spec.network:
        ps = f"({params(spec.network.params)})" if spec.network.params else ""
        p.emit(0, f"network {spec.network.name}{ps}")
    if spec.input:
        p.emit(0, f"input {_input_text(spec.input)}")
    for u in spec.uses:
        p.emit(0, f"use {quote(u.path)}")
    for let in spec.lets:
        p.emit(0, f"let {let.name} = {expr(let.value)}")
    for st in spec.settings:
        target = f" {st.target}:" if st.target else ""
        p.emit(0, f"{st.kind}{target} {call(st.call)}")
    if spec.rules:
        p.emit(0, f"rules({args(spec.rules)})")
    if spec.budget:
        p.emit(0, "budget(" + ", ".join(f"{b.figure} <= {bound(b)}" for b in spec.budget) + ")")
    for b in spec.blocks:
        p.lines.append("")
        ps = f"({params(b.params)})" if b.params else ""
        p.block(0, f"block {b.name}{ps} {{", b.body)
    if spec.body:
        p.lines.append("")
        p.body(spec.body, 0)
    return "\n".join(p.lines).lstrip("\n") + "\n"


# ----------------------------------------------------------------------------- YAML


def _yaml_value(e: A.Expr) -> object:
    # Plain literals stay YAML scalars so the file reads naturally; everything else is a string.
    if isinstance(e, A.Num) and not isinstance(e.value, bool) and e.value >= 0:
        return e.value
    if isinstance(e, A.Const) and e.value is not None:
        return e.value
    return expr(e)


def _yaml_body(stmts: Sequence[A.Stmt]) -> list:
    return [_yaml_stmt(st) for st in stmts]


def _yaml_stmt(st: A.Stmt) -> object:
    if isinstance(st, A.Let):
        return {"let": {st.name: _yaml_value(st.value)}}
    if isinstance(st, A.If):
        out: dict = {"if": expr(st.cond), "then": _yaml_body(st.then)}
        if st.orelse is not None:
            out["else"] = _yaml_body(st.orelse)
        return out
    if isinstance(st, A.Aux):
        out = {"aux": _yaml_element(st.element)}
        if st.args:
            out["args"] = args(st.args)
        return out
    if isinstance(st, A.Chain):
        if len(st.elements) == 1:
            return _yaml_element(st.elements[0])
        if all(isinstance(el, A.Call) for el in st.elements):
            return " -> ".join(labelled(el) for el in st.elements)
        return {"chain": [_yaml_element(el) for el in st.elements]}
    raise TypeError(type(st).__name__)


def _yaml_element(el: A.Element) -> object:
    if isinstance(el, A.Call):
        return {label_text(el.label): call(el)} if el.label else call(el)
    if isinstance(el, A.Group):
        inner: object = _yaml_body(el.body)
        return {label_text(el.label): inner} if el.label else {"group": inner}
    if isinstance(el, A.Concat):
        inner = {"concat": _yaml_body(el.body)}
    elif isinstance(el, A.Gate):
        inner = {"gate": _yaml_body(el.body)}
    elif isinstance(el, A.Residual):
        inner = {"residual": _yaml_body(el.body)}
        if el.args:
            inner["args"] = args(el.args)
        if el.shortcut is not None:
            sc: dict = {}
            if el.shortcut.name:
                sc["name"] = label_text(el.shortcut.name)
            if el.shortcut.cond is not None:
                sc["if"] = expr(el.shortcut.cond)
            sc["body"] = _yaml_body(el.shortcut.body)
            inner["shortcut"] = sc
    else:
        kw = "repeat" if isinstance(el, A.Repeat) else "dense"
        inner = {kw: args(el.args)}
        if el.var:
            inner["as"] = el.var
        inner["body"] = _yaml_body(el.body)
    return {label_text(el.label): inner} if el.label else inner


def to_yaml_data(spec: A.SpecFile) -> dict:
    """The YAML document for a spec, as plain Python data."""
    doc: dict = {}
    if spec.network:
        ps = f"({params(spec.network.params)})" if spec.network.params else ""
        doc["network"] = f"{spec.network.name}{ps}"
    if spec.input:
        doc["input"] = _input_text(spec.input)
    if spec.uses:
        doc["use"] = [u.path for u in spec.uses]
    if spec.lets:
        doc["let"] = [{let.name: _yaml_value(let.value)} for let in spec.lets]
    settings = []
    for st in spec.settings:
        settings.append({st.kind: call(st.call)} if st.target is None else {f"init {st.target}": call(st.call)})
    if settings:
        doc["settings"] = settings
    if spec.rules:
        doc["rules"] = args(spec.rules)
    if spec.budget:
        items = [(b.figure, bound(b) if b.unit else _yaml_value(b.value)) for b in spec.budget]
        figures = [figure for figure, _ in items]
        # a mapping reads best; a figure bounded twice (an error, reported by analysis) needs a list
        doc["budget"] = dict(items) if len(set(figures)) == len(figures) else [{f: v} for f, v in items]
    if spec.blocks:
        blocks: dict = {}
        for b in spec.blocks:
            key = f"{b.name}({params(b.params)})" if b.params else b.name
            while key in blocks:
                # A block defined twice (E111 when analyzed) keeps both definitions: YAML keys must
                # differ, so the later header is spelled differently ("B" -> "B()" -> "B( )" ...).
                key = f"{key[:-1]} )" if key.endswith(")") else f"{key}()"
            blocks[key] = _yaml_body(b.body)
        doc["blocks"] = blocks
    if spec.body:
        doc["layers"] = _yaml_body(spec.body)
    return doc


def to_yaml(spec: A.SpecFile) -> str:
    """Print a whole spec as YAML."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        # PyYAML (allow_unicode) writes U+0085/U+2028/U+2029 raw except in double quotes, where it
        # escapes them (\N, \L, \P); raw, the YAML front end refuses them (YAML 1.1 line breaks).
        style = '"' if any(ch in value for ch in "\x85\u2028\u2029") else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    return yaml.dump(to_yaml_data(spec), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     width=1000, allow_unicode=True)


# ----------------------------------------------------------------------------- use paths


@dataclass(frozen=True)
class MovedUse:
    """A ``use`` path rewritten for another folder: as written, as rewritten, and the file it names."""

    old: str
    new: str
    target: Path


def rebase_uses(spec: A.SpecFile, source: str | os.PathLike, output: str | os.PathLike) \
        -> tuple[A.SpecFile, list[MovedUse]]:
    """``spec``, read from ``source``, with each relative ``use`` path rewritten so that, written to
    ``output``, it names the same file; and the paths it rewrote.

    An import resolves against the importing file's directory with symbolic links resolved, so the
    new path is computed between resolved directories.  An absolute path, or one that names no file
    in ``source``'s directory tree (found through ``--search-path``, or missing), is kept as written:
    it resolves the same from the new folder, or fails the same."""
    try:
        src_dir, out_dir = Path(source).resolve().parent, Path(output).resolve().parent
    except (OSError, RuntimeError):  # a symlink loop: writing there fails with its own diagnostic
        return spec, []
    if src_dir == out_dir:
        return spec, []
    uses, moved = [], []
    for use in spec.uses:
        move = _moved(use.path, src_dir, out_dir)
        if move is not None:
            moved.append(move)
            use = dataclasses.replace(use, path=move.new)
        uses.append(use)
    return (dataclasses.replace(spec, uses=tuple(uses)) if moved else spec), moved


def _moved(path: str, src_dir: Path, out_dir: Path) -> MovedUse | None:
    """How ``use path`` is written from ``out_dir`` to name the file it names from ``src_dir``."""
    rel = Path(path)
    if not path or rel.is_absolute():
        return None
    try:
        target = (src_dir / rel).resolve()
        # Only the imports the spec's own tree provides: any other resolves through --search-path
        # (or not at all), from the new folder as from the old, and no path here reaches outside it.
        if not target.is_relative_to(src_dir) or not target.is_file() or (out_dir / rel).resolve() == target:
            return None
        new = Path(os.path.relpath(target, out_dir)).as_posix()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a name too long, another drive
        return None
    return MovedUse(path, new, target)


def search_root(moved: Sequence[MovedUse], output: str | os.PathLike) -> Path | None:
    """The directory ``--search-path`` must name for the rewritten imports that leave ``output``'s
    folder (imports are confined to the importing file's directory tree), or None when none does."""
    if not moved:
        return None
    out_dir = Path(output).resolve().parent
    outside = [str(m.target.parent) for m in moved if not m.target.is_relative_to(out_dir)]
    return Path(os.path.commonpath(outside)) if outside else None


#: A string literal of the text language (the grammar's STRING).
_STRING = re.compile(r'"([^"\\\n]|\\[\\"nt])*"' + r"|'([^'\\\n]|\\[\\'nt])*'")


def splice_uses(text: str, spec: A.SpecFile, moved: Sequence[MovedUse], rebased: A.SpecFile) -> str | None:
    """The text-language source ``text`` (parsed as ``spec``) with the moved ``use`` strings replaced
    where they stand, every other character (comments included) kept; None when that text does not
    parse back to ``rebased`` (the caller prints ``rebased`` instead)."""
    if not moved:
        return text
    new = {m.old: m.new for m in moved}
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    edits = []
    for use in spec.uses:
        if use.path not in new or not 1 <= use.loc.line <= len(starts) or use.loc.col < 1:
            continue
        m = _STRING.match(text, starts[use.loc.line - 1] + use.loc.col - 1)
        if m is None:
            return None
        edits.append((m.start(), m.end(), quote(new[use.path])))
    for start, end, lit in sorted(edits, reverse=True):
        text = text[:start] + lit + text[end:]
    from .loader import parse_source

    try:
        return text if parse_source(text, spec.file) == rebased else None
    except DiagnosticError:
        return None

