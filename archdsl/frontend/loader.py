"""Reading spec files: bytes -> text (with limits) -> AST, for either front end."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path

from .. import ast as A
from .. import limits
from ..diagnostics import Diagnostic, DiagnosticError, Loc, SourceCache

YAML_SUFFIXES = (".yaml", ".yml")
TEXT_SUFFIXES = (".arch",)

#: Given a path and its display name: ``(text, parsed spec)``, or None to read the file from disk.
SpecSource = Callable[[Path | str, str], "tuple[str, A.SpecFile] | None"]
#: Where a host that keeps spec text in memory (the language server's open documents and its parse
#: cache) supplies files; None (everyone else): files are read from disk.
_SPEC_SOURCE: ContextVar[SpecSource | None] = ContextVar("archdsl_spec_source", default=None)


@contextlib.contextmanager
def spec_source(source: SpecSource) -> Iterator[None]:
    """Read spec files through ``source`` for the duration (it may answer None to fall back to disk)."""
    token = _SPEC_SOURCE.set(source)
    try:
        yield
    finally:
        _SPEC_SOURCE.reset(token)


def read_spec_text(path: str | Path, display: str | None = None) -> str:
    """Read a spec file as text: size-limited, UTF-8 (BOM stripped), no NUL bytes."""
    name = display or str(path)
    limit = limits.current().file_bytes
    try:
        # Read at most one byte past the limit: stat() alone would trust the size of a file that
        # grows meanwhile, or of a device like /dev/zero that reports 0 and never ends.
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
            size = os.fstat(fh.fileno()).st_size
    except IsADirectoryError:
        raise DiagnosticError(Diagnostic("E005", "is a directory, not a spec file", Loc(name, 1, 1))) from None
    except (OSError, ValueError) as exc:
        raise DiagnosticError(Diagnostic("E005", f"cannot read file: {getattr(exc, 'strerror', None) or exc}",
                                         Loc(name, 1, 1))) from None
    if len(data) > limit:
        size_text = f"{size:,} bytes" if size > limit else f"more than {limit:,} bytes"
        raise DiagnosticError(Diagnostic("E005", f"file is {size_text}; the limit is {limit:,}",
                                         Loc(name, 1, 1), hint="raise it with --limit file_bytes=N"))
    return decode_spec_bytes(data, name)


def decode_spec_bytes(data: bytes, name: str) -> str:
    """Decode spec bytes as UTF-8 (BOM stripped, line breaks normalized to ``\\n``), locating the
    first bad byte or NUL by line and character column, as every other diagnostic is located."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Everything before the bad byte is valid UTF-8: count lines and columns in characters.
        line, col = _position(_normalize_newlines(data[: exc.start].decode("utf-8")))
        raise DiagnosticError(Diagnostic("E006", f"invalid UTF-8 byte 0x{data[exc.start]:02x}", Loc(name, line, col),
                                         hint="save the file as UTF-8"),
                              source_text=_normalize_newlines(data.decode("utf-8", "replace"))) from None
    text = _normalize_newlines(text)
    nul = text.find("\x00")
    if nul >= 0:
        line, col = _position(text[:nul])
        raise DiagnosticError(Diagnostic("E002", "NUL byte in spec file", Loc(name, line, col)), source_text=text)
    return text


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _position(before: str) -> tuple[int, int]:
    """1-based line and column of the character that follows ``before``."""
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def is_yaml(path: str | Path) -> bool:
    """True when the file name says YAML."""
    return str(path).lower().endswith(YAML_SUFFIXES)


def parse_source(text: str, file: str, yaml: bool = False) -> A.SpecFile:
    """Parse spec text from either front end into a :class:`SpecFile`."""
    if yaml:
        from .yaml_frontend import parse_yaml

        return parse_yaml(text, file)
    from .text import parse_text

    return assemble(parse_text(text, file), file)


def load_spec_file(path: str | Path, sources: SourceCache | None = None, display: str | None = None) -> A.SpecFile:
    """Read and parse one spec file; the text is remembered in ``sources`` for diagnostics."""
    name = display or str(path)
    source = _SPEC_SOURCE.get()
    given = source(path, name) if source is not None else None
    if given is not None:
        if sources is not None:
            sources.register(name, given[0])
        return given[1]
    try:
        text = read_spec_text(path, name)
    except DiagnosticError as exc:
        if sources is not None and exc.source_text is not None:
            sources.register(name, exc.source_text)  # show the undecodable line under the diagnostic
        raise
    if sources is not None:
        sources.register(name, text)
    return parse_source(text, name, yaml=is_yaml(path))


def assemble(stmts: Sequence[object], file: str) -> A.SpecFile:
    """Sort top-level statements of a text file into the fields of a :class:`SpecFile`."""
    network = input_decl = None
    uses, lets, settings, blocks, body, rules, budget = [], [], [], [], [], [], []
    for st in stmts:
        if isinstance(st, A.NetworkDecl):
            if network is not None:
                raise DiagnosticError(Diagnostic("E113", "a spec declares one network", st.loc,
                                                 hint=f"already declared at {network.loc}"))
            network = st
        elif isinstance(st, A.InputDecl):
            if input_decl is not None:
                raise DiagnosticError(Diagnostic("E113", "input declared twice", st.loc,
                                                 hint=f"already declared at {input_decl.loc}"))
            input_decl = st
        elif isinstance(st, A.Use):
            uses.append(st)
        elif isinstance(st, A.Let):
            lets.append(st)
        elif isinstance(st, A.Setting):
            settings.append(st)
        elif isinstance(st, A.Block):
            blocks.append(st)
        elif isinstance(st, A.RulesDecl):
            rules.extend(st.args)
        elif isinstance(st, A.BudgetDecl):
            budget.extend(st.items)
        else:
            body.append(st)
    return A.SpecFile(network, input_decl, tuple(uses), tuple(lets), tuple(settings), tuple(blocks),
                      tuple(body), file, tuple(rules), tuple(budget))
