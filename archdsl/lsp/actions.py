"""Code actions: where a design rule's factorization (R301 stacked 3x3, R302 asymmetric) is one that
``archdsl transform --factorize`` really rewrites, a quick fix applies that rewrite to the document
(the transform's own planning and verification; the text spliced into the source, comments kept)."""

from __future__ import annotations

from collections.abc import Callable

from lsprotocol import types

from ..diagnostics import Diagnostic, DiagnosticError
from ..frontend.loader import is_yaml, parse_source
from ..frontend.printer import leading_comments, to_text, to_yaml
from .documents import DocAnalysis, normalize_text

#: The rules whose finding a transform can fix.
FIXABLE = ("R301", "R302")


def kind_of(d: Diagnostic) -> str | None:
    """The ``--factorize`` kind that fixes an R301/R302 finding (``5x5``, ``7x7``, ``asym``), else None."""
    if d.code == "R302":
        return "asym"
    kernel = d.evidence.get("kernel") if d.code == "R301" else None
    if isinstance(kernel, (list, tuple)) and kernel and isinstance(kernel[0], int):
        return f"{kernel[0]}x{kernel[0]}"
    return None


def rewritten_text(result, text: str, path: str) -> str:
    """The rewritten spec as ``archdsl transform`` writes it, from the in-memory ``text``: the rewrite
    spliced into the source (every comment kept), else the printed spec under the leading comments."""
    from ..transforms.splice import SpliceError, splice

    if not is_yaml(path):
        try:
            out = splice(text, result.before.spec, result.edits)
            if parse_source(out, path) == result.spec:
                return out
        except (SpliceError, DiagnosticError):
            pass
    return leading_comments(text) + (to_yaml(result.spec) if is_yaml(path) else to_text(result.spec))


def _rewrite(da: DocAnalysis, kind: str, search_paths: tuple[str, ...]) -> tuple[str, int] | None:
    """(new text, convs rewritten) for ``--factorize=kind``, None when nothing would be rewritten."""
    key = ("factorize", kind)
    if key not in da.memo:
        from ..transforms.factorize import TransformError, parse_kinds, rewrite

        try:
            result = rewrite(da.res, parse_kinds(kind), None, {}, search_paths)
            da.memo[key] = (rewritten_text(result, normalize_text(da.text, da.path), da.path),
                            len(result.rewrites)) if result.rewrites else None
        except (TransformError, DiagnosticError):
            da.memo[key] = None
    return da.memo[key]


def code_actions(da: DocAnalysis, uri: str, lines: int, first: int, last: int, search_paths: tuple[str, ...],
                 to_lsp: Callable[[Diagnostic], types.Diagnostic]) -> list[types.CodeAction]:
    """Quick fixes for the fixable findings on 0-based lines ``first``..``last`` of the document
    (``lines``: its line count, for the whole-document edit)."""
    from ..transforms.factorize import rewritable

    out: list[types.CodeAction] = []
    seen: set[str] = set()
    for d in da.res.diags.sorted():
        kind = kind_of(d) if d.code in FIXABLE and d.loc.file == da.path else None
        if kind is None or kind in seen or not first <= d.loc.line - 1 <= last:
            continue
        paths = d.instances or (d.path,)
        if not any(p in rewritable(da.res, kind) for p in paths):
            continue
        done = _rewrite(da, kind, search_paths)
        if done is None:
            continue
        seen.add(kind)
        text, n = done
        edit = types.TextEdit(range=types.Range(start=types.Position(line=0, character=0),
                                                end=types.Position(line=lines, character=0)), new_text=text)
        out.append(types.CodeAction(
            title=f"Factorize {kind} convs ({n} conv{'s' if n != 1 else ''}; archdsl transform --factorize={kind})",
            kind=types.CodeActionKind.QuickFix, diagnostics=[to_lsp(d)], is_preferred=True,
            edit=types.WorkspaceEdit(changes={uri: [edit]})))
    return out
