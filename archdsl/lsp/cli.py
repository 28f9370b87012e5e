"""Subcommand ``archdsl lsp``: the language server over stdio (docs/lsp.md).

Registering is all that happens at import time: pygls is imported only when the command runs, so the
other commands' start-up does not pay for it; without pygls the command fails with E345 and the
install command as the hint."""

from __future__ import annotations

import argparse
import os

from .. import cli as _cli
from ..diagnostics import Diagnostic, Loc

#: The environment variable that sets the debounce delay (ms) when neither the command line nor the
#: client does.
DEBOUNCE_ENV = "ARCHDSL_LSP_DEBOUNCE_MS"
INSTALL_HINT = "pip install 'archdsl[lsp]'"


def _ms(text: str) -> int:
    if not text.strip().isdigit() or int(text) > 10_000:
        raise argparse.ArgumentTypeError(f"expected milliseconds from 0 to 10000, got {text!r}")
    return int(text)


def _register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lsp", help="run the language server (LSP over stdin/stdout) for editors",
                       description="Serve the Language Server Protocol on stdin/stdout for .arch and archdsl YAML "
                                   "files: diagnostics as 'check' reports them (design rules included), hover "
                                   "with shapes and costs, go to definition, completion, document symbols and "
                                   "factorization quick fixes. An editor starts it; see docs/lsp.md.")
    p.add_argument("--debounce", type=_ms, default=None, metavar="MS",
                   help=f"analyse this long after the last change (default: ${DEBOUNCE_ENV}, else 200)")
    p.add_argument("--no-rules", dest="rules", action="store_false", help="do not run the design rules")
    p.add_argument("--severity", choices=("error", "warning", "info"), default="warning",
                   help="publish diagnostics of this severity or worse (default: warning, as 'check' lists them)")
    p.add_argument("--search-path", action="append", default=[], metavar="DIR",
                   help="extra directory 'use' imports may read from")
    p.add_argument("--stdio", action="store_true", help="accepted for clients that pass it (stdio is the only "
                                                        "transport)")
    _cli._add_quiet_option(p, "start-up line in the log (stderr); errors only")
    p.set_defaults(func=cmd_lsp)


def missing_pygls(exc: ImportError) -> Diagnostic:
    """E345: pygls (or lsprotocol) is not installed; the hint installs the ``lsp`` extra."""
    top = (exc.name or "pygls").split(".")[0]
    what = "which is not installed" if top == "pygls" else f"whose dependency {top} is not installed"
    return Diagnostic("E345", f"archdsl lsp needs pygls, {what}", Loc("<command line>", 1, 1), hint=INSTALL_HINT)


def _debounce(args: argparse.Namespace) -> int | None:
    if args.debounce is not None:
        return args.debounce
    env = os.environ.get(DEBOUNCE_ENV, "").strip()
    return int(env) if env.isdigit() and int(env) <= 10_000 else None


def cmd_lsp(args: argparse.Namespace) -> int:
    """``archdsl lsp``: serve until the client exits."""
    try:
        from .server import DEFAULT_DEBOUNCE_MS, Settings, serve
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("pygls", "lsprotocol", "cattrs", "attrs"):
            raise
        _cli.print_diagnostic(missing_pygls(exc))
        return _cli.EXIT_ERRORS
    ms = _debounce(args)
    settings = Settings(DEFAULT_DEBOUNCE_MS if ms is None else ms, args.rules, tuple(args.search_path),
                        args.severity)
    return serve(settings, quiet=args.quiet)


_cli._EXTENSIONS.append(_register)
