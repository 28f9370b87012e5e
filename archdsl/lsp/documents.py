"""Open documents, their analyses and the parse cache the language server keeps between edits.

Analysis runs on the in-memory text of a document (not the file on disk): :func:`spec_source` makes
the loader ask :meth:`Workspace.source` for every file it reads, which answers with an open
document's text, else with the cached parse of the file on disk (keyed by resolved path, display
name, modification time and size), so a one-line edit re-parses only the edited file.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .. import ast as A
from .. import limits
from ..diagnostics import Diagnostic, DiagnosticError, Loc
from ..frontend.loader import decode_spec_bytes, is_yaml, parse_source, read_spec_text, spec_source
from ..pipeline import Analysis, analyze

T = TypeVar("T")
#: Parsed files on disk kept (imported libraries); the least recently used is dropped first.
CACHE_SIZE = 256


@dataclass
class Document:
    """An open document: its URI, the absolute path it is analysed as, its text and version."""

    uri: str
    path: str
    text: str
    version: int | None = None


@dataclass
class DocAnalysis:
    """One analysis of one version of a document."""

    path: str
    text: str
    version: int | None
    res: Analysis
    #: Resolved paths of every file this analysis read besides the document (its imports).
    imports: frozenset[str] = field(default_factory=frozenset)
    #: Results computed from this analysis on demand (the code actions' rewrites), by key.
    memo: dict = field(default_factory=dict)

    def cached(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()``, computed once per analysis (the features' indexes of the AST and graph)."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    @property
    def parsed(self) -> bool:
        """True when the document itself parsed (an AST is there to answer questions)."""
        return self.res.spec is not None


class ParseCache:
    """Parsed spec files by key, least recently used dropped beyond :data:`CACHE_SIZE`."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._items: OrderedDict[tuple, tuple[str, A.SpecFile]] = OrderedDict()
        self._size = size
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> tuple[str, A.SpecFile] | None:
        """The cached (text, AST) for ``key``, or None."""
        got = self._items.get(key)
        if got is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return got

    def put(self, key: tuple, value: tuple[str, A.SpecFile]) -> None:
        """Remember ``value`` under ``key``."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


def _resolved(path: str | Path) -> str:
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError, ValueError):
        return str(path)


def normalize_text(text: str, name: str) -> str:
    """Document text as the loader would read it from a file: size-limited, BOM stripped, line breaks
    normalized, a NUL byte or an unpaired surrogate a located error (E005/E002/E006)."""
    limit = limits.current().file_bytes
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > limit:
        raise DiagnosticError(Diagnostic("E005", f"file is {len(data):,} bytes; the limit is {limit:,}",
                                         Loc(name, 1, 1), hint="raise it with --limit file_bytes=N"))
    return decode_spec_bytes(data, name)


class Workspace:
    """The server's state: open documents, their latest and last parsed analyses, the parse cache."""

    def __init__(self, search_paths: tuple[str, ...] = (), rules: bool = True) -> None:
        self.search_paths = search_paths
        self.rules = rules
        self.docs: dict[str, Document] = {}        # by URI
        self._by_path: dict[str, Document] = {}    # by resolved path
        self.latest: dict[str, DocAnalysis] = {}   # by URI
        self.good: dict[str, DocAnalysis] = {}     # by URI: the last analysis whose document parsed
        self.cache = ParseCache()
        #: (resolved path, display name) -> ((version, text), (text, AST)) of open documents.
        self._doc_parses: dict[tuple, tuple] = {}

    # ------------------------------------------------------------------ documents
    def open(self, uri: str, path: str, text: str, version: int | None = None) -> Document:
        """Open (or replace) a document."""
        doc = Document(uri, path, text, version)
        old = self.docs.get(uri)
        if old is not None:
            self._forget(old.path)
        self.docs[uri] = doc
        self._by_path[_resolved(path)] = doc
        return doc

    def change(self, uri: str, text: str, version: int | None = None) -> Document | None:
        """New text for an open document (None when it is not open)."""
        doc = self.docs.get(uri)
        if doc is None:
            return None
        doc.text, doc.version = text, version
        return doc

    def close(self, uri: str) -> None:
        """Forget a document and its analyses."""
        doc = self.docs.pop(uri, None)
        if doc is not None:
            self._forget(doc.path)
        self.latest.pop(uri, None)
        self.good.pop(uri, None)

    def _forget(self, path: str) -> None:
        key = _resolved(path)
        self._by_path.pop(key, None)
        for k in [k for k in self._doc_parses if k[1] == key]:
            del self._doc_parses[k]

    def dependents(self, uri: str) -> list[str]:
        """URIs of the other open documents whose latest analysis read ``uri``'s file."""
        doc = self.docs.get(uri)
        if doc is None:
            return []
        key = _resolved(doc.path)
        return [u for u, a in self.latest.items() if u != uri and key in a.imports]

    # ------------------------------------------------------------------ analysis
    def analysis(self, uri: str) -> DocAnalysis | None:
        """The analysis of the document's current text (run now when the latest one is stale)."""
        doc = self.docs.get(uri)
        if doc is None:
            return None
        got = self.latest.get(uri)
        if got is not None and got.version == doc.version and got.text == doc.text:
            return got
        return self.analyze(uri)

    def usable(self, uri: str) -> DocAnalysis | None:
        """The current analysis if the document parses, else the last one that did (a half-typed file)."""
        got = self.analysis(uri)
        if got is not None and got.parsed:
            return got
        return self.good.get(uri, got)

    def analyze(self, uri: str) -> DocAnalysis | None:
        """Analyse the document's current text (design rules included when enabled) and remember it."""
        doc = self.docs.get(uri)
        if doc is None:
            return None
        read: set[str] = set()
        texts: dict[str, str] = {}

        def source(path: Path | str, name: str) -> tuple[str, A.SpecFile] | None:
            read.add(_resolved(path))
            return self.source(path, name, texts)

        with spec_source(source):
            res = analyze(doc.path, search_paths=self.search_paths, rules=True if self.rules else None)
        for name, text in texts.items():
            # the loader registers a file's text only once it parses: a syntax error's range needs it too
            if res.sources.line(name, 1) is None:
                res.sources.register(name, text)
        read.discard(_resolved(doc.path))
        out = DocAnalysis(doc.path, doc.text, doc.version, res, frozenset(read))
        self.latest[uri] = out
        if out.parsed:
            self.good[uri] = out
        return out

    def reading(self) -> contextlib.AbstractContextManager[None]:
        """A context in which the loader reads files as the analyses do (open documents first)."""
        return spec_source(self.source)

    def source(self, path: Path | str, name: str, texts: dict[str, str] | None = None) -> tuple[str, A.SpecFile]:
        """(text, AST) of a file the analysis reads: an open document's text, else the file on disk;
        ``texts`` gets each text read by its display name before it is parsed (the parse may fail)."""
        doc = self._by_path.get(_resolved(path))
        return self._document_source(doc, name, texts) if doc is not None else self._file_source(path, name, texts)

    def _document_source(self, doc: Document, name: str, texts: dict[str, str] | None = None
                         ) -> tuple[str, A.SpecFile]:
        """An open document, parsed once per version: one entry per document and display name."""
        key = ("doc", _resolved(doc.path), name)
        stamp = (doc.version, doc.text)
        kept = self._doc_parses.get(key)
        if kept is not None and kept[0] == stamp:
            self.cache.hits += 1
            return kept[1]
        self.cache.misses += 1
        text = normalize_text(doc.text, name)
        if texts is not None:
            texts[name] = text
        got = (text, parse_source(text, name, yaml=is_yaml(doc.path)))
        self._doc_parses[key] = (stamp, got)
        return got

    def _file_source(self, path: Path | str, name: str, texts: dict[str, str] | None = None
                     ) -> tuple[str, A.SpecFile]:
        """A file on disk, parsed again only when its modification time or size changes."""
        try:
            st = os.stat(path)
            key: tuple | None = ("file", _resolved(path), name, st.st_mtime_ns, st.st_size)
        except OSError:
            key = None  # read_spec_text reports it
        got = self.cache.get(key) if key is not None else None
        if got is None:
            text = read_spec_text(path, name)
            if texts is not None:
                texts[name] = text
            got = (text, parse_source(text, name, yaml=is_yaml(path)))
            if key is not None:
                self.cache.put(key, got)
        return got
