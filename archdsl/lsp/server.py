"""The pygls server: documents in, diagnostics out (debounced), and the feature requests answered
from the latest analysis of each document.  Imported only by ``archdsl lsp``.

Every handler is guarded: an exception inside a feature is logged to the client and the request
answered with nothing, so a half-typed file can never take the server down."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from .. import __version__
from ..diagnostics import Loc
from . import actions, completion, convert, definition, hover, symbols
from .documents import DocAnalysis, Workspace

#: Seconds after the last change before a document is analysed again (``debounce`` setting, in ms).
DEFAULT_DEBOUNCE_MS = 200
#: Severities, most severe first.
SEVERITIES = ("error", "warning", "info")
log = logging.getLogger("archdsl.lsp")
F = TypeVar("F", bound=Callable[..., Any])
#: What ends a line in LSP positions (and for archdsl): not form feeds, U+2028 and the other breaks
#: of str.splitlines(), which pygls' Document.lines also splits at.
LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class Settings:
    """What a client may set (initializationOptions, or ``archdsl`` in workspace/didChangeConfiguration)."""

    debounce_ms: int = DEFAULT_DEBOUNCE_MS
    rules: bool = True
    search_paths: tuple[str, ...] = field(default_factory=tuple)
    #: Publish diagnostics of this severity or worse, as ``check`` lists them (infos: the R6xx reports).
    severity: str = "warning"

    def update(self, options: Any) -> None:
        """Take ``debounce`` (ms), ``rules`` (bool), ``searchPaths`` (list of folders) and ``severity``
        (error, warning, info) from a JSON object; anything else is ignored."""
        if isinstance(options, dict) and options.get("severity") in SEVERITIES:
            self.severity = options["severity"]
        if not isinstance(options, dict):
            return
        ms = options.get("debounce")
        if isinstance(ms, (int, float)) and not isinstance(ms, bool) and 0 <= ms <= 10_000:
            self.debounce_ms = int(ms)
        if isinstance(options.get("rules"), bool):
            self.rules = options["rules"]
        paths = options.get("searchPaths")
        if isinstance(paths, list) and all(isinstance(p, str) for p in paths):
            self.search_paths = tuple(paths)


class ArchdslServer(LanguageServer):
    """The language server: pygls' document sync plus archdsl's :class:`Workspace`."""

    def __init__(self, settings: Settings) -> None:
        # Full sync: pygls applies incremental changes to its splitlines() lines, which puts an edit on
        # the wrong line after a form feed or U+2028 in the text; a whole-document change cannot be misplaced.
        super().__init__("archdsl", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full)
        self.settings = settings
        self.state = Workspace(settings.search_paths, settings.rules)
        self._timers: dict[str, asyncio.TimerHandle] = {}

    # ------------------------------------------------------------------ documents
    def sync(self, uri: str) -> None:
        """Copy pygls' text of ``uri`` into the archdsl workspace."""
        doc = self.workspace.get_text_document(uri)
        if uri in self.state.docs:
            self.state.change(uri, doc.source, doc.version)
        else:
            self.state.open(uri, path_of(uri, doc.language_id), doc.source, doc.version)

    def schedule(self, uri: str, delay: float, force: bool = False, cascade: bool = True) -> None:
        """Analyse ``uri`` and publish its diagnostics ``delay`` seconds from now, unless it changes first;
        ``force``: analyse even when the text did not change (a file it imports did); ``cascade``: then
        the documents importing it (not for a document scheduled by its import: an import cycle would
        go round forever)."""
        old = self._timers.pop(uri, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[uri] = loop.call_later(delay, self.publish, uri, force, cascade)

    def publish(self, uri: str, force: bool = False, cascade: bool = True) -> None:
        """Analyse ``uri`` (unless a request already analysed this text) and publish its diagnostics,
        then schedule the open documents that import it."""
        self._timers.pop(uri, None)
        try:
            da = self.state.analyze(uri) if force else self.state.analysis(uri)
            if da is None:
                return
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
                uri=uri, version=da.version, diagnostics=self.lsp_diagnostics(da)))
            for other in self.state.dependents(uri) if cascade else ():
                self.schedule(other, self.settings.debounce_ms / 1000, force=True, cascade=False)
        except Exception:  # noqa: BLE001 - a bug in a pass must not stop the server
            self.report(f"archdsl: analysing {uri} failed")

    def report(self, what: str) -> None:
        """Log the exception being handled to the client (and stderr)."""
        text = f"{what}:\n{traceback.format_exc()}"
        log.error(text)
        try:
            self.window_log_message(types.LogMessageParams(type=types.MessageType.Error, message=text))
        except Exception:  # noqa: BLE001 - the client may be gone
            pass

    # ------------------------------------------------------------------ conversions
    def positions(self, da: DocAnalysis) -> convert.Positions:
        """Location -> range converter for an analysis, in the negotiated position encoding."""
        return convert.Positions(da.res.sources.line, self.workspace.position_codec.encoding)

    def lsp_diagnostics(self, da: DocAnalysis) -> list[types.Diagnostic]:
        """The document's diagnostics as LSP diagnostics."""
        spec = da.res.spec
        home = spec.uses[0].loc if spec is not None and spec.uses else None
        shown = [d for d in da.res.diags.sorted() if d.is_error or (
            d.severity in SEVERITIES and SEVERITIES.index(d.severity) <= SEVERITIES.index(self.settings.severity))]
        return convert.document_diagnostics(shown, da.path, self.positions(da), uri_of, home)

    def cursor(self, uri: str, pos: types.Position) -> tuple[list[str], int, int]:
        """The document's lines and the cursor as a 0-based line and character index."""
        lines = document_lines(self.workspace.get_text_document(uri).source)
        if pos.line >= len(lines):
            # the empty line after a final newline (or past the end): nothing there, not the line above
            return [*lines, ""], len(lines), 0
        char = convert.from_units(lines[pos.line], pos.character, self.workspace.position_codec.encoding)
        return lines, pos.line, char


def document_lines(source: str) -> list[str]:
    r"""The document's lines as LSP counts them (``\n``, ``\r\n`` or ``\r`` end one), without their ends;
    a final line break starts no line of its own."""
    lines = LINE_BREAK.split(source)
    return lines[:-1] if lines and lines[-1] == "" else lines


def same_line(da: DocAnalysis, lines: list[str], line: int) -> bool:
    """Whether ``line`` of the editor's text (``lines``) is the line the analysis read there: a document
    that does not parse answers from its last analysis that did, whose lines may have moved since."""
    old = document_lines(da.text)
    return line < len(old) and line < len(lines) and old[line] == lines[line]


def path_of(uri: str, language_id: str | None = None) -> str:
    """The absolute file path a document is analysed as (an unsaved one: a name in the current folder)."""
    path = to_fs_path(uri) if uri.startswith("file:") else None
    if path:
        return os.path.abspath(path)
    suffix = ".yaml" if (language_id or "").lower() in ("yaml", "archdsl-yaml") else ".arch"
    name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in uri.rsplit("/", 1)[-1].rsplit(":", 1)[-1])
    return str(Path.cwd() / ((name or "untitled") + suffix))


def uri_of(file: str) -> str:
    """The URI of an analysed file's name (absolute paths; ``<command line>`` stays as it is)."""
    return from_fs_path(file) if os.path.isabs(file) else file


def guarded(server: ArchdslServer, default: Any = None) -> Callable[[F], F]:
    """Run a handler, answering ``default`` (and logging) instead of raising."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any) -> Any:
            try:
                return fn(*args)
            except Exception:  # noqa: BLE001 - never let a feature take the server down
                server.report(f"archdsl: {fn.__name__} failed")
                return default

        return inner  # type: ignore[return-value]

    return wrap


def build(settings: Settings) -> ArchdslServer:
    """The server with every feature registered."""
    server = ArchdslServer(settings)
    _register_sync(server)
    _register_features(server)
    return server


def _register_sync(server: ArchdslServer) -> None:
    @server.feature(types.INITIALIZE)
    @guarded(server)
    def initialize(ls: ArchdslServer, params: types.InitializeParams) -> None:
        ls.settings.update(params.initialization_options)
        ls.state.search_paths, ls.state.rules = ls.settings.search_paths, ls.settings.rules

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    @guarded(server)
    def configure(ls: ArchdslServer, params: types.DidChangeConfigurationParams) -> None:
        settings = params.settings.get("archdsl") if isinstance(params.settings, dict) else None
        ls.settings.update(settings)
        ls.state.search_paths, ls.state.rules = ls.settings.search_paths, ls.settings.rules
        for uri in ls.state.docs:
            ls.schedule(uri, 0, force=True)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    @guarded(server)
    def did_open(ls: ArchdslServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.sync(params.text_document.uri)
        ls.schedule(params.text_document.uri, 0, force=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    @guarded(server)
    def did_change(ls: ArchdslServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.sync(params.text_document.uri)
        ls.schedule(params.text_document.uri, ls.settings.debounce_ms / 1000)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    @guarded(server)
    def did_save(ls: ArchdslServer, params: types.DidSaveTextDocumentParams) -> None:
        # a saved library changes what the documents importing it read from disk
        for uri in ls.state.dependents(params.text_document.uri):
            ls.schedule(uri, 0, force=True, cascade=False)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    @guarded(server)
    def did_close(ls: ArchdslServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        dependents = ls.state.dependents(uri)
        timer = ls._timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        ls.state.close(uri)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        for other in dependents:  # they read the file from disk again
            ls.schedule(other, 0, force=True, cascade=False)


def _register_features(server: ArchdslServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @guarded(server)
    def on_hover(ls: ArchdslServer, params: types.HoverParams) -> types.Hover | None:
        uri = params.text_document.uri
        da = ls.state.usable(uri)
        if da is None:
            return None
        lines, line, char = ls.cursor(uri, params.position)
        if not same_line(da, lines, line):
            return None
        return hover.hover(da, line, char)

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    @guarded(server)
    def on_definition(ls: ArchdslServer, params: types.DefinitionParams) -> types.Location | None:
        uri = params.text_document.uri
        da = ls.state.usable(uri)
        if da is None:
            return None
        lines, line, char = ls.cursor(uri, params.position)
        target = definition.definition(da, lines[line] if lines else "", line, char, ls.state.search_paths)
        if target is None:
            return None
        if target.loc.line == 0 or target.loc == Loc(target.file, 1, 1) and not target.length:
            start = types.Position(line=0, character=0)
            return types.Location(uri=uri_of(target.file), range=types.Range(start=start, end=start))
        return types.Location(uri=uri_of(target.file), range=ls.positions(da).range(target.loc))

    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=["(", ",", "=", " ", ">", ":"]))
    @guarded(server)
    def on_completion(ls: ArchdslServer, params: types.CompletionParams) -> types.CompletionList | None:
        uri = params.text_document.uri
        if uri not in ls.state.docs:
            return None
        lines, line, char = ls.cursor(uri, params.position)
        text = "\n".join(lines)
        offset = sum(len(ln) + 1 for ln in lines[:line]) + char
        good = ls.state.good.get(uri)
        return types.CompletionList(is_incomplete=False, items=completion.complete(text, offset, good))

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guarded(server)
    def on_symbols(ls: ArchdslServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol] | None:
        da = ls.state.usable(params.text_document.uri)
        if da is None or da.res.spec is None:
            return None
        return symbols.document_symbols(da.res.spec, da.path, ls.positions(da).range)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
    @guarded(server, [])
    def on_code_action(ls: ArchdslServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        da = ls.state.analysis(uri)
        if da is None or not da.parsed:
            return []
        n_lines = len(document_lines(ls.workspace.get_text_document(uri).source))
        pos = ls.positions(da)
        with ls.state.reading():
            return actions.code_actions(da, uri, n_lines, params.range.start.line, params.range.end.line,
                                        ls.state.search_paths,
                                        lambda d: convert.diagnostic(d, pos, uri_of))


def serve(settings: Settings, quiet: bool = False) -> int:
    """Run the server on stdin/stdout until the client says exit; the log goes to stderr (a client
    shows it in its LSP log): one start-up line, then errors only (``quiet``: errors only)."""
    logging.basicConfig(level=logging.WARNING, format="archdsl lsp: %(message)s")
    log.setLevel(logging.ERROR if quiet else logging.INFO)
    log.info("archdsl %s serving LSP on stdio (debounce %d ms, design rules %s, severity %s)", __version__,
             settings.debounce_ms, "on" if settings.rules else "off", settings.severity)
    build(settings).start_io()
    return 0
