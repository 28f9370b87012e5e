"""Go to definition: a block name (local or imported through ``use``) -> its ``block`` line, a ``use``
string -> the imported file, a name in an expression -> its ``let``, block parameter or network
parameter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import ast as A
from ..diagnostics import DiagnosticError, Loc
from ..pipeline import resolve_import
from . import index
from .documents import DocAnalysis


@dataclass(frozen=True)
class Target:
    """Where a definition is: a file and a location in it (line 0: the file itself)."""

    file: str
    loc: Loc
    length: int = 0


def definition(da: DocAnalysis, line_text: str, line: int, char: int,
               search_paths: tuple[str, ...] = ()) -> Target | None:
    """The definition of what is at 0-based ``line``/``char`` (``line_text`` is that line), or None."""
    spec = da.res.spec
    if spec is None:
        return None
    used = _use_at(spec, da.path, line_text, line + 1, char)
    if used is not None:
        try:
            target = resolve_import(Path(da.path), used.path, used.loc, search_paths)
        except DiagnosticError:
            return None
        return Target(str(target), Loc(str(target), 1, 1))
    word = index.word_at(line_text, char)
    if word is None:
        return None
    bdef = da.res.blocks.get(word.text)
    if bdef is not None and _is_call_name(da, spec, line + 1, word):
        return Target(bdef.block.loc.file, bdef.block.loc, len(word.text))
    found = _name_definition(spec, da.path, word.text, line + 1)
    if found is not None:
        return Target(found.file, found, len(word.text))
    if bdef is not None:
        return Target(bdef.block.loc.file, bdef.block.loc, len(word.text))
    return None


def _use_at(spec: A.SpecFile, file: str, line_text: str, line: int, char: int) -> A.Use | None:
    s = index.string_at(line_text, char)
    if s is None:
        return None
    for use in spec.uses:
        if use.loc.file == file and use.loc.line == line and use.path == s.text:
            return use
    return None


def _is_call_name(da: DocAnalysis, spec: A.SpecFile, line: int, word: index.Word) -> bool:
    by_line = da.cached("calls", lambda: index.calls_by_line(spec, da.path))
    return any(c.loc.col - 1 == word.start for c in by_line.get(line, []))


def _name_definition(spec: A.SpecFile, file: str, name: str, line: int) -> Loc | None:
    """Where ``name`` used on ``line`` is bound: a ``let`` of the enclosing block before the line, the
    block's parameter, a global ``let``, a network parameter (the nearest wins)."""
    block = index.enclosing_block(spec, line)
    if block is not None:
        local = [st for st in index.walk_stmts(block.body) if isinstance(st, A.Let) and st.name == name]
        before = [st for st in local if st.loc.line <= line]
        if before:
            return before[-1].loc
        for p in block.params:
            if p.name == name:
                return p.loc
        if local:
            return local[0].loc
    for let in spec.lets:
        if let.name == name:
            return let.loc
    nested = [st for st in index.walk_stmts(spec.body) if isinstance(st, A.Let) and st.name == name]
    before = [st for st in nested if st.loc.line <= line]
    if before:
        return before[-1].loc
    for p in spec.network.params if spec.network else ():
        if p.name == name:
            return p.loc
    return None
