"""What the features look up in an analysed document: the calls, blocks, ``let`` bindings and
parameters its AST declares, the graph nodes and block scopes each call produced, and the word under
the cursor."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .. import ast as A
from ..diagnostics import Loc
from ..ir import Graph, ScopeInfo

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Word:
    """An identifier in a line: its text and its character span [start, end)."""

    text: str
    start: int
    end: int


def word_at(line: str, char: int) -> Word | None:
    """The identifier the cursor is on (or just after)."""
    for m in WORD.finditer(line):
        if m.start() <= char <= m.end():
            return Word(m.group(), m.start(), m.end())
        if m.start() > char:
            break
    return None


def string_at(line: str, char: int) -> Word | None:
    """The double-quoted string the cursor is in (its contents and their span)."""
    for m in re.finditer(r'"([^"\n]*)"', line):
        if m.start() <= char <= m.end():
            return Word(m.group(1), m.start(1), m.end(1))
    return None


def walk_stmts(stmts: tuple[A.Stmt, ...] | list[A.Stmt]) -> Iterator[A.Stmt | A.Element]:
    """Every statement and element in ``stmts``, nested ones included (lets too), in source order."""
    stack: list = list(reversed(stmts))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, A.Chain):
            stack.extend(reversed(node.elements))
        elif isinstance(node, A.If):
            stack.extend(reversed((*node.then, *(node.orelse or ()))))
        elif isinstance(node, A.Aux):
            stack.append(node.element)
        elif not isinstance(node, (A.Let, A.Call)):
            for body in reversed(A.element_bodies(node)):
                stack.extend(reversed(body))


def all_stmts(spec: A.SpecFile) -> Iterator[A.Stmt | A.Element]:
    """Every statement and element of the spec: the network's body and every block's."""
    yield from walk_stmts(spec.body)
    for block in spec.blocks:
        yield from walk_stmts(block.body)


def calls(spec: A.SpecFile) -> list[A.Call]:
    """Every op or block call written in the spec."""
    return [st for st in all_stmts(spec) if isinstance(st, A.Call)]


def lets(spec: A.SpecFile) -> list[A.Let]:
    """Every ``let`` of the spec: the global ones and those inside blocks and groups."""
    return [*spec.lets, *(st for st in all_stmts(spec) if isinstance(st, A.Let))]


def labelled(stmts: tuple[A.Stmt, ...]) -> list[A.Element]:
    """The labelled elements directly in ``stmts`` (not inside another labelled one), in order."""
    out: list[A.Element] = []
    stack: list = list(reversed(stmts))
    while stack:
        node = stack.pop()
        if isinstance(node, A.Chain):
            stack.extend(reversed(node.elements))
        elif isinstance(node, A.If):
            stack.extend(reversed((*node.then, *(node.orelse or ()))))
        elif isinstance(node, A.Aux):
            stack.append(node.element)
        elif isinstance(node, A.Let):
            continue
        elif getattr(node, "label", None):
            out.append(node)
        elif not isinstance(node, A.Call):
            for body in reversed(A.element_bodies(node)):
                stack.extend(reversed(body))
    return out


def element_name(el: A.Element) -> str:
    """What an element is called in a symbol list: a call's name, else its kind (``concat``)."""
    return el.name if isinstance(el, A.Call) else type(el).__name__.lower()


def enclosing_block(spec: A.SpecFile, line: int) -> A.Block | None:
    """The block whose definition holds 1-based ``line``: the last top-level statement starting at
    or before the line, if that is a block (the AST has no end positions)."""
    anchors: list[tuple[int, object]] = []
    for group in (spec.uses, spec.lets, spec.settings, spec.blocks, spec.body):
        anchors.extend((st.loc.line, st) for st in group if st.loc.line > 0)
    for st in (spec.network, spec.input):
        if st is not None:
            anchors.append((st.loc.line, st))
    before = [a for a in anchors if a[0] <= line]
    if not before:
        return None
    top = max(before, key=lambda a: a[0])[1]
    return top if isinstance(top, A.Block) else None


def nodes_by_loc(graph: Graph | None) -> dict[Loc, list[int]]:
    """Graph nodes by the location of the call that made them (one per instance), in graph order."""
    out: dict[Loc, list[int]] = {}
    if graph is None:
        return out
    for nid, data in graph.g.nodes(data=True):
        if data["op"] not in ("input", "output"):
            out.setdefault(data["loc"], []).append(nid)
    return out


def block_scopes(graph: Graph | None) -> dict[Loc, list[ScopeInfo]]:
    """The block instances of the graph by the location of the call that made them."""
    out: dict[Loc, list[ScopeInfo]] = {}
    if graph is None:
        return out
    for info in graph.scopes.values():
        if info.kind == "block" and info.loc is not None:
            out.setdefault(info.loc, []).append(info)
    return out


def scope_nodes(graph: Graph, path: str) -> list[int]:
    """The nodes inside the scope ``path`` (its modules and its internal ``path@kind`` nodes)."""
    return [n for n, d in graph.g.nodes(data=True)
            if d["path"] == path or d["path"].startswith(path + ".") or d["path"].startswith(path + "@")]


def calls_by_line(spec: A.SpecFile, file: str) -> dict[int, list[A.Call]]:
    """The calls written in ``file`` by 1-based line, each line's in column order."""
    out: dict[int, list[A.Call]] = {}
    for c in calls(spec):
        if c.loc.file == file:
            out.setdefault(c.loc.line, []).append(c)
    for on_line in out.values():
        on_line.sort(key=lambda c: c.loc.col)
    return out


def call_at(by_line: dict[int, list[A.Call]], line: int, char: int) -> A.Call | None:
    """The call on 1-based ``line`` at 0-based ``char`` (``by_line``: :func:`calls_by_line`): the one
    whose name the cursor is on, else the last one starting before the cursor, else the first on the line."""
    on_line = by_line.get(line, [])
    if not on_line:
        return None
    for c in on_line:
        if c.loc.col - 1 <= char <= c.loc.col - 1 + len(c.name):
            return c
    before = [c for c in on_line if c.loc.col - 1 <= char]
    return before[-1] if before else on_line[0]
