"""``archdsl schema``: print or write the JSON Schema for YAML specs (:mod:`archdsl.schema`)."""

from __future__ import annotations

import argparse

from . import cli


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``schema`` subcommand."""
    p = sub.add_parser("schema", help="print the JSON Schema for YAML specs (for editors)",
                       description="Print the JSON Schema (draft 2020-12) of archdsl's YAML specs, generated from "
                                   "the op registry, on stdout or into FILE. Point an editor's YAML extension at it "
                                   "(docs/schema.md): it validates and completes specs.")
    p.add_argument("-o", "--output", metavar="FILE", default=None, help="write the schema to FILE")
    cli._add_quiet_option(p, "'wrote' line")
    p.set_defaults(func=cmd_schema)


def cmd_schema(args: argparse.Namespace) -> int:
    """``archdsl schema``: the schema on stdout, or written to ``-o FILE``."""
    from .diagnostics import Diagnostic, Loc, SourceCache
    from .io import report_written, write_atomic
    from .schema import render_schema

    text = render_schema()
    if args.output is None:
        print(text, end="")
        return cli.EXIT_OK
    try:
        write_atomic(args.output, text)
    except OSError as exc:
        cli._print_diags([Diagnostic("E005", f"cannot write {args.output}: {exc.strerror or exc}",
                                     Loc(args.output, 1, 1))], SourceCache())
        return cli.EXIT_ERRORS
    report_written(args.output)
    return cli.EXIT_OK


cli._EXTENSIONS.append(register)
