"""Reading spec files: bytes -> text (with limits) -> AST, for either front end."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .. import ast as A
from ..diagnostics import Diagnostic, DiagnosticError, Loc, SourceCache

#: Largest spec file accepted, in bytes.
MAX_FILE_BYTES = 4 * 1024 * 1024
YAML_SUFFIXES = (".yaml", ".yml")
TEXT_SUFFIXES = (".arch",)


def read_spec_text(path: str | Path, display: str | None = None) -> str:
    """Read a spec file as text: size-limited, UTF-8 (BOM stripped), no NUL bytes."""
    p = Path(path)
    name = display or str(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DiagnosticError(Diagnostic("E005", f"file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}",
                                             Loc(name, 1, 1)))
        data = p.read_bytes()
    except DiagnosticError:
        raise
    except IsADirectoryError:
        raise DiagnosticError(Diagnostic("E005", "is a directory, not a spec file", Loc(name, 0, 0))) from None
    except OSError as exc:
        raise DiagnosticError(Diagnostic("E005", f"cannot read file: {exc.strerror or exc}",
                                         Loc(name, 0, 0))) from None
    return decode_spec_bytes(data, name)


def decode_spec_bytes(data: bytes, name: str) -> str:
    """Decode spec bytes as UTF-8, locating the first bad byte or NUL."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DiagnosticError(Diagnostic("E006", f"invalid UTF-8 byte 0x{data[exc.start]:02x}", Loc(name, line, col),
                                         hint="save the file as UTF-8")) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        col = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise DiagnosticError(Diagnostic("E002", "NUL byte in spec file", Loc(name, line, col)))
    return text.replace("\r\n", "\n").replace("\r", "\n")


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
    text = read_spec_text(path, name)
    if sources is not None:
        sources.register(name, text)
    return parse_source(text, name, yaml=is_yaml(path))


def assemble(stmts: Sequence[object], file: str) -> A.SpecFile:
    """Sort top-level statements of a text file into the fields of a :class:`SpecFile`."""
    network = input_decl = None
    uses, lets, settings, blocks, body, rules = [], [], [], [], [], []
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
        else:
            body.append(st)
    return A.SpecFile(network, input_decl, tuple(uses), tuple(lets), tuple(settings), tuple(blocks),
                      tuple(body), file, tuple(rules))
