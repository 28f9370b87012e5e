"""Between archdsl's locations (1-based lines and character columns) and LSP positions (0-based lines,
columns in the client's code units: UTF-16 unless the client negotiated UTF-8 or UTF-32), and from
archdsl diagnostics to LSP diagnostics."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from lsprotocol import types

from ..diagnostics import ERROR, INFO, WARNING, Diagnostic, Label, Loc

#: The documentation a diagnostic's ``codeDescription`` links to: the checkout's docs folder (the project
#: publishes no web site), the diagnostics table for E/W codes, the rule catalogue for R codes.
DOCS = Path(__file__).resolve().parents[2] / "docs"

SEVERITY = {ERROR: types.DiagnosticSeverity.Error, WARNING: types.DiagnosticSeverity.Warning,
            INFO: types.DiagnosticSeverity.Information}

#: The token a location points at, to give a range an end: a name, a number, a string, an operator.
_TOKEN = re.compile(r'[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|"(?:[^"\\\n]|\\.)*"?|`[^`\n]*`?|->|\S')

#: ``file, 1-based line`` -> that line's text (None when unknown).
LineSource = Callable[[str, int], "str | None"]


def units(text: str, encoding: str) -> int:
    """Length of ``text`` in the client's code units."""
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def from_units(line: str, character: int, encoding: str) -> int:
    """The character index in ``line`` of a client column ``character`` (clamped to the line)."""
    if encoding == types.PositionEncodingKind.Utf32:
        return max(0, min(character, len(line)))
    count = 0
    for i, ch in enumerate(line):
        if count >= character:
            return i
        count += units(ch, encoding)
    return len(line)


class Positions:
    """Converts locations to LSP ranges with the source lines the analysis read."""

    def __init__(self, line_of: LineSource, encoding: str = types.PositionEncodingKind.Utf16) -> None:
        self.line_of = line_of
        self.encoding = encoding

    def position(self, file: str, line: int, col: int) -> types.Position:
        """The LSP position of 1-based ``line``/``col`` in ``file``."""
        text = self.line_of(file, line) or ""
        return types.Position(line=max(line - 1, 0), character=units(text[: max(col - 1, 0)], self.encoding))

    def range(self, loc: Loc) -> types.Range:
        """The range of ``loc``: to its end where the location has one, else over the token it points at."""
        start = self.position(loc.file, loc.line, loc.col)
        end_line, end_col = getattr(loc, "end_line", None), getattr(loc, "end_col", None)
        if end_line and end_col:
            return types.Range(start=start, end=self.position(loc.file, end_line, end_col))
        text = self.line_of(loc.file, loc.line) or ""
        m = _TOKEN.match(text, max(loc.col - 1, 0)) if loc.col - 1 < len(text) else None
        width = len(m.group()) if m else 0
        return types.Range(start=start, end=self.position(loc.file, loc.line, loc.col + width))


def code_url(code: str) -> str | None:
    """Where a code is documented: the rules' catalogue for Rxxx, the diagnostics table otherwise (None
    when archdsl does not run from a checkout that has them)."""
    doc = DOCS / ("rules.md" if code.startswith("R") else "diagnostics.md")
    return doc.as_uri() if doc.is_file() else None


def diagnostic(d: Diagnostic, pos: Positions, uri_of: Callable[[str], str]) -> types.Diagnostic:
    """An archdsl diagnostic as an LSP one: the same code, message and hint; labels as related information."""
    message = d.message
    if d.path and not d.instances:
        message += f"\nin: {d.path}"
    if d.hint:
        message += f"\nhint: {d.hint}"
    for note in (*d.notes, *filter(None, [d.instance_note()])):
        message += f"\nnote: {note}"
    related = [types.DiagnosticRelatedInformation(
        location=types.Location(uri=uri_of(lb.loc.file), range=pos.range(lb.loc)), message=lb.message)
        for lb in d.labels if lb.loc.line > 0]
    url = code_url(d.code)
    return types.Diagnostic(
        range=pos.range(d.loc), message=message, severity=SEVERITY.get(d.severity, types.DiagnosticSeverity.Hint),
        code=d.code, code_description=types.CodeDescription(href=url) if url else None, source="archdsl",
        related_information=related or None)


def document_diagnostics(diags: list[Diagnostic], file: str, pos: Positions, uri_of: Callable[[str], str],
                         home: Loc | None = None) -> list[types.Diagnostic]:
    """The diagnostics to publish for the document analysed as ``file``, in file order.

    A finding located in another file (a broken library it imports) is shown at ``home`` (its first
    ``use``; else the top of the document) with its own location as related information, so that it
    is not lost."""
    return [diagnostic(d if d.loc.file == file else _moved_home(d, home or Loc(file, 1, 1)), pos, uri_of)
            for d in diags]


def _moved_home(d: Diagnostic, home: Loc) -> Diagnostic:
    label = (Label(d.loc, "reported here"),) if d.loc.line > 0 else ()
    return replace(d, loc=home, message=f"{d.message} ({d.loc})", labels=label + d.labels)
