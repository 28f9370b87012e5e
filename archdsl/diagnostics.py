"""Located diagnostics: the one way archdsl reports a problem with a spec.

Every failure, from a stray byte to a channel mismatch, becomes a :class:`Diagnostic` with a
stable code, a source location, the module path it concerns and a hint.  Passes *collect*
diagnostics in a :class:`DiagnosticBag` rather than stopping at the first one.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

ERROR = "error"
WARNING = "warning"
INFO = "info"
#: Severity of follow-on errors (a use of a value whose definition already failed): never shown.
SUPPRESSED = "suppressed"
_SEVERITY_RANK = {ERROR: 0, WARNING: 1, INFO: 2, SUPPRESSED: 3}


@dataclass(frozen=True, order=True)
class Loc:
    """A position in a spec file: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NOWHERE = Loc("<unknown>", 0, 0)

#: Module paths named in an "in N instances" note before "(and K more)".
SHOWN_INSTANCES = 3


@dataclass(frozen=True)
class Label:
    """A secondary location of a diagnostic (the concat branch that differs), shown with its own caret."""

    loc: Loc
    message: str


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a spec: code, severity, message, location, module path and hint.

    ``labels`` are secondary locations, each with a short message; ``instances`` are the module
    paths of every instance of a block that produced this same finding (set when there are several:
    the finding is reported once, at its source location)."""

    code: str
    message: str
    loc: Loc = NOWHERE
    severity: str = ERROR
    path: str = ""
    hint: str = ""
    evidence: dict = field(default_factory=dict, compare=False, hash=False)
    notes: tuple[str, ...] = ()
    labels: tuple[Label, ...] = ()
    instances: tuple[str, ...] = ()

    @property
    def is_error(self) -> bool:
        """True for errors (which make a command fail)."""
        return self.severity == ERROR

    def sort_key(self) -> tuple:
        """Order by stage, then file position, then severity, then code.

        Reading and parsing errors (``E0xx``) come first: a file that does not load leaves its
        importers with follow-on errors (an unknown block), which must not be read first."""
        return (not self.code.startswith("E0"), self.loc.file, self.loc.line, self.loc.col,
                _SEVERITY_RANK[self.severity], self.code)

    def instance_note(self) -> str:
        """``in 9 instances: layer1.0, layer1.1, layer1.2 (and 6 more)``; ``""`` for a single instance."""
        if len(self.instances) < 2:
            return ""
        shown = ", ".join(p or "<network>" for p in self.instances[:SHOWN_INSTANCES])
        more = len(self.instances) - SHOWN_INSTANCES
        return f"in {len(self.instances)} instances: {shown}" + (f" (and {more} more)" if more > 0 else "")

    def to_json(self) -> dict:
        """The JSON object documented for ``check --format json``."""
        out = {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.loc.file,
            "line": self.loc.line,
            "column": self.loc.col,
            "path": self.path,
            "hint": self.hint,
        }
        if self.evidence:
            out["evidence"] = self.evidence
        if self.notes or self.instances:
            out["notes"] = [*self.notes, *filter(None, [self.instance_note()])]
        if self.labels:
            out["labels"] = [{"message": lb.message, "file": lb.loc.file, "line": lb.loc.line,
                              "column": lb.loc.col} for lb in self.labels]
        if self.instances:
            out["instances"] = list(self.instances)
        return out


class DiagnosticError(Exception):
    """Raised inside a pass to abandon one construct; the pass records it and carries on."""

    def __init__(self, diagnostic: Diagnostic, source_text: str | None = None) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        #: Text to show under the diagnostic when the file itself could not be decoded (a lossy
        #: decoding of the bytes read), else None.
        self.source_text = source_text


class DiagnosticBag:
    """An ordered, de-duplicated collection of diagnostics from one run.

    One mistake is one diagnostic: findings with the same code, severity, message and location
    (a mistake inside a block used N times) are merged into the first, which lists the module
    path of every instance (:attr:`Diagnostic.instances`)."""

    def __init__(self) -> None:
        #: The first diagnostic of each mistake, and (in parallel) the module paths of its
        #: instances (an ordered set) and the notes every instance shares; merged when read.
        self._items: list[Diagnostic] = []
        self._paths: list[dict[str, None]] = []
        self._notes: list[tuple[str, ...]] = []
        #: (code, severity, message, loc) -> index in _items
        self._where: dict[tuple, int] = {}
        #: How many follow-on diagnostics were dropped (a pass can tell that something failed).
        self.suppressed = 0

    def add(self, diag: Diagnostic) -> None:
        """Record a diagnostic, or merge it into the one already recorded for the same mistake;
        drop it when it is a follow-on."""
        if diag.severity == SUPPRESSED:
            self.suppressed += 1
            return
        key = (diag.code, diag.severity, diag.message, diag.loc)
        paths = diag.instances or (diag.path,)
        at = self._where.get(key)
        if at is None:
            self._where[key] = len(self._items)
            self._items.append(diag)
            self._paths.append(dict.fromkeys(paths))
            self._notes.append(diag.notes)
            return
        known = self._paths[at]
        if any(p not in known for p in paths):
            known.update(dict.fromkeys(paths))
            # each instance's own notes (where it was instantiated) would only repeat the instances
            self._notes[at] = tuple(n for n in self._notes[at] if n in diag.notes)

    def _merged(self, at: int) -> Diagnostic:
        """The diagnostic recorded at ``at``, standing for all of its instances."""
        paths = self._paths[at]
        if len(paths) < 2:
            return self._items[at]
        return replace(self._items[at], instances=tuple(paths), notes=self._notes[at])

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        """Record several diagnostics."""
        for d in diags:
            self.add(d)

    def error(self, code: str, message: str, loc: Loc, path: str = "", hint: str = "") -> None:
        """Record an error."""
        self.add(Diagnostic(code, message, loc, ERROR, path, hint))

    def warning(self, code: str, message: str, loc: Loc, path: str = "", hint: str = "") -> None:
        """Record a warning."""
        self.add(Diagnostic(code, message, loc, WARNING, path, hint))

    @property
    def has_errors(self) -> bool:
        """True if any recorded diagnostic is an error."""
        return any(d.is_error for d in self._items)

    def sorted(self) -> list[Diagnostic]:
        """Diagnostics in file order (parsing errors first: see :meth:`Diagnostic.sort_key`)."""
        return sorted(self, key=Diagnostic.sort_key)

    def __iter__(self) -> Iterator[Diagnostic]:
        return (self._merged(i) for i in range(len(self._items)))

    def __len__(self) -> int:
        return len(self._items)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ``did you mean 'x'?`` hint for an unknown name, or ``""`` when nothing is close."""
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in candidates}
        if word.lower() in lowered:
            matches = [lowered[word.lower()]]
    return f"did you mean '{matches[0]}'?" if matches else ""


class SourceCache:
    """Source text of every file read in a run, to print the offending line under a diagnostic."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}

    def register(self, file: str, text: str) -> None:
        """Remember the text of ``file`` (line breaks already normalized to ``\\n``)."""
        # Only "\n" ends a line, as for the parsers: str.splitlines() would also split at form
        # feeds, U+2028 and friends and show the wrong line under a diagnostic.
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        self._lines[file] = lines

    def line(self, file: str, lineno: int) -> str | None:
        """The 1-based line ``lineno`` of ``file`` if known."""
        lines = self._lines.get(file)
        if lines is None or not 1 <= lineno <= len(lines):
            return None
        return lines[lineno - 1]


#: Longest source excerpt shown under a diagnostic; longer lines show a window around the column.
_SHOWN = 200


def _visible(text: str, same_width: bool = False) -> str:
    """``text`` safe to print on a terminal: control, bidi-override and other non-printable
    characters become escapes (``\\x1b``), or U+FFFD when columns must stay aligned for the caret.
    Spec text is untrusted: an escape sequence in a comment must not reach the terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch == "\t" or ch.isprintable() else "\ufffd" if same_width else ascii(ch)[1:-1]
                   for ch in text)


def _excerpt(src: str, col: int) -> tuple[str, int]:
    """The part of a source line to show and the caret's column in it."""
    if len(src) <= _SHOWN:
        return src, col
    start = max(0, min(col - 1 - _SHOWN // 2, len(src) - _SHOWN))
    shown = src[start:start + _SHOWN]
    prefix, suffix = ("... " if start else ""), (" ..." if start + _SHOWN < len(src) else "")
    return prefix + shown + suffix, col - start + len(prefix)


def _caret_line(source_line: str, col: int) -> str:
    # Reproduce tabs so the caret lines up under the character in any terminal.
    prefix = "".join("\t" if ch == "\t" else " " for ch in source_line[: max(col - 1, 0)])
    return prefix + "^"


def _source_lines(loc: Loc, sources: SourceCache | None) -> list[str]:
    """The source line at ``loc`` and a caret under its column (nothing when the text is unknown)."""
    src = sources.line(loc.file, loc.line) if sources else None
    if src is None:
        return []
    shown, col = _excerpt(_visible(src, same_width=True), loc.col)
    return [f"    {shown}", f"    {_caret_line(shown, col)}"]


def format_text(diag: Diagnostic, sources: SourceCache | None = None) -> str:
    """``file:line:col: severity[CODE]: message`` with the source line, a caret and the hint.

    Then, in this order: ``= in:`` the module path (or, for a finding in several instances of a
    block, an ``= note: in N instances: ...`` line instead), each secondary label as an
    ``= note:`` line with its own source line and caret, ``= hint:``, the other notes."""
    head = _visible(f"{diag.loc}: {diag.severity}[{diag.code}]: {diag.message}")
    lines = [head, *_source_lines(diag.loc, sources)]
    if diag.path and not diag.instances:
        lines.append(f"    = in: {_visible(diag.path)}")
    for label in diag.labels:
        # the location is spelled out: a label may point into another file (a library's block)
        lines.append(f"    = note: {_visible(label.message)} ({_visible(str(label.loc))})")
        lines.extend(_source_lines(label.loc, sources))
    if diag.hint:
        lines.append(f"    = hint: {_visible(diag.hint)}")
    for note in (*diag.notes, *filter(None, [diag.instance_note()])):
        lines.append(f"    = note: {_visible(note)}")
    return "\n".join(lines)


def format_json(diags: Sequence[Diagnostic]) -> str:
    """The ``{"diagnostics": [...]}`` document for ``--format json``."""
    return json.dumps({"diagnostics": [d.to_json() for d in diags]}, indent=2, sort_keys=False)
