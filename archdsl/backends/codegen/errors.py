"""Codegen errors, and the check every generated file passes before anyone sees or runs it."""

from __future__ import annotations

import ast

from ...diagnostics import Diagnostic, Loc


class CodegenError(Exception):
    """The spec cannot be compiled to PyTorch; ``diagnostics`` says why and where."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("; ".join(f"{d.loc}: {d.message}" for d in diagnostics))
        self.diagnostics = diagnostics


#: Builtins generated code never calls; a reference to one means spec text leaked into code.
FORBIDDEN_NAMES = frozenset({"eval", "exec", "compile", "__import__", "open", "globals", "locals", "vars",
                             "breakpoint", "input", "setattr", "delattr", "exit", "quit", "help"})


def check_source(src: str, source_name: str = "") -> ast.Module:
    """Parse generated ``src`` and refuse anything a generator bug could let through: a syntax error,
    or a reference to a builtin such as ``eval`` or ``__import__`` (raises :class:`CodegenError`)."""
    return check_source_imports(src, source_name, None)[0]


def check_source_imports(src: str, source_name: str = "",
                         allowed_imports: frozenset[str] | None = None) -> tuple[ast.Module, list]:
    """:func:`check_source`, and in the same walk over the tree the modules imported that are not
    in ``allowed_imports``: ``[name]`` for the first one (a relative import's name is None), ``[]``
    when there is none or ``allowed_imports`` is None."""
    loc = Loc(source_name or "<spec>", 1, 1)
    try:
        tree = ast.parse(src)
    except SyntaxError as exc:
        raise CodegenError([Diagnostic("E399", f"internal error: generated code does not parse: {exc.msg} "
                                       f"(generated line {exc.lineno})", loc)]) from None
    bad: list = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id in FORBIDDEN_NAMES:
                raise CodegenError([Diagnostic("E399", f"internal error: generated code refers to {node.id!r} "
                                               f"(generated line {node.lineno})", loc)])
        elif allowed_imports is not None and not bad:
            if isinstance(node, ast.Import):
                bad = [a.name for a in node.names if a.name not in allowed_imports][:1]
            elif isinstance(node, ast.ImportFrom) and node.module not in allowed_imports:
                bad = [node.module]
    return tree, bad
