"""Writing a rewrite back into the spec's own text, so every line the rewrite does not touch -- and
every comment -- stays as the author wrote it.

``archdsl transform`` rewrites the AST; this module turns that rewrite into text edits on the
original source: a rewritten call is replaced by the printed factors (from its label to its closing
parenthesis, so a trailing comment on the line stays), a retargeted call gets its new block name, a
block's new ``let`` lines go above its first statement, and a cloned block is the original block's
text (comments included) with the clone's edits, inserted after it.  The caller re-parses the result
and compares it with the rewritten AST, so a splice can never write something else than the rewrite.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from .. import ast as A
from ..diagnostics import Loc
from ..frontend.printer import expr, labelled


class SpliceError(Exception):
    """The source text does not line up with the AST (the caller falls back to the printer)."""


@dataclass
class BlockEdit:
    """One output copy of a block: the original (``name`` unchanged) or a clone, with its rewrites."""

    block: A.Block
    name: str
    repl: dict[Loc, list[A.Call]] = field(default_factory=dict)
    lets: list[A.Let] = field(default_factory=list)


@dataclass
class Edits:
    """A rewrite as positions in the source: replaced calls, new lets, renamed calls, block copies."""

    blocks: list[BlockEdit] = field(default_factory=list)
    top_repl: dict[Loc, list[A.Call]] = field(default_factory=dict)
    top_lets: list[A.Let] = field(default_factory=list)
    retarget: dict[Loc, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- tokens


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<qname>`[^`\n]*`)
  | (?P<word>[A-Za-z0-9_.]+)
  | (?P<arrow>->)
  | (?P<other>.)
""", re.X | re.S)

_OPEN, _CLOSE = "([{", ")]}"


@dataclass(frozen=True)
class Tok:
    """A significant token: its text and offsets."""

    text: str
    start: int
    end: int


class Source:
    """The spec text as significant tokens (comments and whitespace skipped), found by location."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.toks: list[Tok] = []
        self.comments: list[Tok] = []
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup
            if kind == "comment":
                self.comments.append(Tok(m.group(), m.start(), m.end()))
            elif kind != "ws":
                self.toks.append(Tok(m.group(), m.start(), m.end()))
        self.by_start = {t.start: i for i, t in enumerate(self.toks)}

    def offset(self, loc: Loc) -> int:
        """The offset of a 1-based line and column."""
        if not 1 <= loc.line <= len(self.line_starts):
            raise SpliceError(f"no line {loc.line}")
        return self.line_starts[loc.line - 1] + loc.col - 1

    def index(self, loc: Loc) -> int:
        """The token starting at ``loc``."""
        i = self.by_start.get(self.offset(loc))
        if i is None:
            raise SpliceError(f"no token at {loc.line}:{loc.col}")
        return i

    def expect(self, i: int, text: str) -> int:
        """``i`` when token ``i`` is ``text``."""
        if not 0 <= i < len(self.toks) or self.toks[i].text != text:
            raise SpliceError(f"expected {text!r}")
        return i

    def match(self, i: int) -> int:
        """The token closing the bracket opened at token ``i``."""
        depth = 0
        for j in range(i, len(self.toks)):
            t = self.toks[j].text
            if t in _OPEN:
                depth += 1
            elif t in _CLOSE:
                depth -= 1
                if depth == 0:
                    return j
        raise SpliceError("unbalanced brackets")

    def line_of(self, pos: int) -> int:
        """The 0-based line holding offset ``pos``."""
        return bisect_right(self.line_starts, pos) - 1


# ---------------------------------------------------------------------------------- spans


def element_first(src: Source, el: A.Element) -> int:
    """The first token of an element: its label, else ``inline``, else the token at its location."""
    i = src.index(el.loc)
    if isinstance(el, A.Call) and el.inline:
        i = src.expect(i - 1, "inline")
    if el.label is not None:
        i = src.expect(i - 1, ":") - 1
        if i < 0:
            raise SpliceError("label expected")
    return i


def call_span(src: Source, call: A.Call) -> tuple[int, int]:
    """Offsets of a call, from its label to its closing parenthesis."""
    first = element_first(src, call)
    last = src.index(call.loc)
    if last + 1 < len(src.toks) and src.toks[last + 1].text == "(":
        last = src.match(last + 1)
    return src.toks[first].start, src.toks[last].end


def stmt_start(src: Source, st: A.Stmt) -> int:
    """The offset where a statement begins."""
    if isinstance(st, A.Chain):
        return src.toks[element_first(src, st.elements[0])].start
    i = src.index(st.loc)
    if isinstance(st, A.Let):
        i = src.expect(i - 1, "let")
    return src.toks[i].start


@dataclass(frozen=True)
class BlockSpan:
    """A block definition's text: from ``block`` to its closing brace; where its name and body open."""

    start: int
    end: int
    name: tuple[int, int]
    brace: int


def block_span(src: Source, b: A.Block) -> BlockSpan:
    """Where block ``b`` is written."""
    i = src.index(b.loc)
    src.expect(i - 1, "block")
    j = i + 1
    if j < len(src.toks) and src.toks[j].text == "(":
        j = src.match(j) + 1
    src.expect(j, "{")
    end = src.match(j)
    name = src.toks[i]
    return BlockSpan(src.toks[i - 1].start, src.toks[end].end, (name.start, name.end), src.toks[j].end)


# ---------------------------------------------------------------------------------- edits


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str


def _apply(text: str, base: int, edits: Sequence[_Edit]) -> str:
    """``text`` (which starts at offset ``base`` of the source) with ``edits`` applied."""
    out: list[str] = []
    pos = base
    for e in sorted(edits, key=lambda e: (e.start, e.end)):
        if e.start < pos:
            raise SpliceError("overlapping edits")
        out.append(text[pos - base:e.start - base])
        out.append(e.text)
        pos = e.end
    out.append(text[pos - base:])
    return "".join(out)


def _let_lines(lets: Sequence[A.Let]) -> list[str]:
    return [f"let {let.name} = {expr(let.value)}" for let in lets]


def _insert_before(src: Source, pos: int, lines: list[str], floor: int) -> _Edit:
    """Lines inserted above the statement at ``pos`` (and above the comment lines right over it,
    never above ``floor``), with its indentation; inline when the statement does not start its line."""
    text = src.text
    begin = text.rfind("\n", 0, pos) + 1
    indent = text[begin:pos]
    if indent.strip():
        return _Edit(pos, pos, " ".join(lines) + " ")
    while begin > floor:
        prev = text.rfind("\n", 0, begin - 1) + 1
        if prev < floor or not text[prev:begin].lstrip().startswith("#"):
            break
        begin = prev
    return _Edit(begin, begin, "".join(f"{indent}{line}\n" for line in lines))


def _replacements(src: Source, repl: dict[Loc, list[A.Call]], calls: dict[Loc, A.Call]) -> list[_Edit]:
    out = []
    for loc, new in repl.items():
        start, end = call_span(src, calls[loc])
        out.append(_Edit(start, end, " -> ".join(labelled(c) for c in new) + _inner_comments(src, start, end)))
    return out


def _inner_comments(src: Source, start: int, end: int) -> str:
    """The comments written inside a replaced call (between its arguments), kept after the
    replacement; the rest of the line, if any, moves to the next line."""
    inner = [c.text for c in src.comments if start <= c.start < end]
    if not inner:
        return ""
    text = src.text
    eol = text.find("\n", end)
    rest = text[end:] if eol < 0 else text[end:eol]
    begin = text.rfind("\n", 0, start) + 1
    indent = text[begin:len(text[begin:start]) - len(text[begin:start].lstrip()) + begin]
    return "  " + "  ".join(inner) + ("\n" + indent if rest.strip() else "")


def _retargets(src: Source, retarget: dict[Loc, str], lo: int, hi: int) -> list[_Edit]:
    out = []
    for loc, name in retarget.items():
        t = src.toks[src.index(loc)]
        if lo <= t.start and t.end <= hi:
            out.append(_Edit(t.start, t.end, name))
    return out


def _block_edits(src: Source, be: BlockEdit, span: BlockSpan, calls: dict[Loc, A.Call],
                 retarget: dict[Loc, str]) -> list[_Edit]:
    edits = _replacements(src, be.repl, calls) + _retargets(src, retarget, span.start, span.end)
    if be.lets:
        if not be.block.body:
            raise SpliceError(f"block {be.block.name} has no statement to put its lets above")
        edits.append(_insert_before(src, stmt_start(src, be.block.body[0]), _let_lines(be.lets), span.brace))
    return edits


def _after_block(src: Source, span: BlockSpan, copies: list[str]) -> _Edit:
    """The clones, each after a blank line, below the line that closes the original block."""
    text = src.text
    eol = text.find("\n", span.end)
    rest = text[span.end:] if eol < 0 else text[span.end:eol]
    indent = text[text.rfind("\n", 0, span.start) + 1:span.start]
    indent = indent if not indent.strip() else ""
    body = "".join(f"\n{indent}{c}\n" for c in copies)
    if rest.strip() and not rest.lstrip().startswith("#"):
        return _Edit(span.end, span.end, body)
    if eol < 0:
        return _Edit(len(text), len(text), "\n" + body.rstrip("\n"))
    return _Edit(eol + 1, eol + 1, body)


def _calls(spec: A.SpecFile) -> dict[Loc, A.Call]:
    out: dict[Loc, A.Call] = {}
    for stmts in [spec.body] + [b.body for b in spec.blocks]:
        for el in A.iter_elements(stmts):
            if isinstance(el, A.Call):
                out[el.loc] = el
    return out


def splice(text: str, spec: A.SpecFile, edits: Edits) -> str:
    """``text`` (the source of ``spec``) with ``edits`` written in; SpliceError when they do not fit."""
    src = Source(text)
    calls = _calls(spec)
    spans = {b.name: block_span(src, b) for b in spec.blocks}
    out = _replacements(src, edits.top_repl, calls)
    blocks = {b.name for b in spec.blocks}
    outside = {loc: n for loc, n in edits.retarget.items()
               if not any(s.start <= src.offset(loc) < s.end for s in spans.values())}
    out += _retargets(src, outside, 0, len(text))
    clones: dict[str, list[str]] = {}
    for be in edits.blocks:
        span = spans[be.block.name]
        block_edits = _block_edits(src, be, span, calls, edits.retarget)
        if be.name == be.block.name:
            out += block_edits
            continue
        block_edits.append(_Edit(*span.name, be.name))
        clones.setdefault(be.block.name, []).append(_apply(text[span.start:span.end], span.start, block_edits))
    originals = {be.block.name for be in edits.blocks if be.name == be.block.name}
    for name in blocks - originals:
        out += _retargets(src, edits.retarget, spans[name].start, spans[name].end)
    for name, copies in clones.items():
        out.append(_after_block(src, spans[name], copies))
    if edits.top_lets:
        out.append(_top_lets(src, spec, edits.top_lets))
    return _apply(text, 0, out)


def _top_lets(src: Source, spec: A.SpecFile, lets: list[A.Let]) -> _Edit:
    """New global lets: above the first network statement when every existing let is above it, else
    at the end (the spec's lets keep their order either way)."""
    lines = _let_lines(lets)
    if spec.body:
        pos = stmt_start(src, spec.body[0])
        if all(src.offset(let.loc) < pos for let in spec.lets):
            return _insert_before(src, pos, lines, 0)
    end = len(src.text)
    sep = "" if src.text.endswith("\n") or not src.text else "\n"
    return _Edit(end, end, sep + "".join(f"{line}\n" for line in lines))
