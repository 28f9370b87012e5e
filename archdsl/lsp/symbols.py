"""Document symbols: the network (with its top-level labelled layers), every block (with its labelled
layers as children), ``let`` bindings and top-level labels."""

from __future__ import annotations

from collections.abc import Callable

from lsprotocol import types

from .. import ast as A
from ..diagnostics import Loc
from . import index
from .hover import block_signature

#: ``Loc`` -> its range in the document (see :class:`archdsl.lsp.convert.Positions`).
RangeOf = Callable[[Loc], types.Range]


def _symbol(name: str, detail: str, kind: types.SymbolKind, loc: Loc, range_of: RangeOf,
            children: list[types.DocumentSymbol] | None = None) -> types.DocumentSymbol:
    r = range_of(loc)
    return types.DocumentSymbol(name=name, detail=detail, kind=kind, range=r, selection_range=r,
                                children=children or None)


def _labels(stmts: tuple[A.Stmt, ...], file: str, range_of: RangeOf, depth: int = 0) -> list[types.DocumentSymbol]:
    out = []
    for el in index.labelled(stmts):
        if el.loc.file != file or el.loc.line <= 0:
            continue
        kids = [] if depth > 8 else [k for body in A.element_bodies(el)
                                     for k in _labels(body, file, range_of, depth + 1)]
        kind = types.SymbolKind.Function if isinstance(el, A.Call) else types.SymbolKind.Namespace
        out.append(_symbol(el.label or "", index.element_name(el), kind, el.loc, range_of, kids))
    return out


def document_symbols(spec: A.SpecFile, file: str, range_of: RangeOf) -> list[types.DocumentSymbol]:
    """The outline of the document analysed as ``file``."""
    out: list[types.DocumentSymbol] = []
    if spec.network is not None:
        params = ", ".join(p.name for p in spec.network.params)
        out.append(_symbol(spec.network.name, f"network({params})", types.SymbolKind.Module, spec.network.loc,
                           range_of))
    for let in spec.lets:
        out.append(_symbol(let.name, "let", types.SymbolKind.Constant, let.loc, range_of))
    for block in spec.blocks:
        out.append(_symbol(block.name, f"block {block_signature(block)}", types.SymbolKind.Class, block.loc, range_of,
                           _labels(block.body, file, range_of)))
    out += _labels(spec.body, file, range_of)
    return [s for s in out if s.name]
