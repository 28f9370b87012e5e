"""The ``archdsl`` command line.  ``check``, ``summary`` and ``convert`` never import torch."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from . import __version__, limits
from .diagnostics import Diagnostic, DiagnosticBag, DiagnosticError, Loc, SourceCache, format_json, format_text

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _parse_shape(text: str) -> tuple[int, int, int]:
    parts = text.lower().replace(",", "x").split("x")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected CxHxW like 3x224x224, got {text!r}")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def _limit_pair(text: str) -> str:
    """``--limit NAME=VALUE``: checked here so a bad one is a usage error naming the valid limits."""
    try:
        limits.parse_limit_pairs([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


_LIMIT_HELP = (f"raise or lower a resource limit (repeatable; also ARCHDSL_LIMITS=NAME=VALUE,...): "
               f"{', '.join(limits.names())}; see docs/robustness.md")


def _add_limit_option(p: argparse.ArgumentParser, dest: str = "limit") -> None:
    p.add_argument("--limit", dest=dest, action="append", default=[], type=_limit_pair, metavar="NAME=VALUE",
                   help=_LIMIT_HELP)


_SEVERITIES = ("error", "warning", "info")   # most severe first
_SEVERITY_HELP = ("list the diagnostics of this severity or worse (default: warning; errors are always listed) and "
                  "count the others in one line; the exit status does not change")
_JSON_HELP = "; --format json lists every diagnostic unless --severity, --show or -q is given"


def _add_listing_options(p: argparse.ArgumentParser, *, show: bool = False) -> None:
    """``--severity``, ``-q/--quiet`` (and, with ``show``, ``--show``): what a command lists.

    They share one destination, so the last one given wins.
    """
    p.add_argument("--severity", choices=_SEVERITIES, default=None,
                   help=_SEVERITY_HELP + (_JSON_HELP if show else ""))
    if show:
        p.add_argument("--show", choices=_SEVERITIES, dest="severity",
                       help="the same as --severity: '--show info' lists the infos too")
    p.add_argument("-q", "--quiet", action="store_const", const="error", dest="severity",
                   help="list only the errors (as --severity error); warnings and infos are counted in one line")
    p.set_defaults(listing_flag="--show" if show else "--severity")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a network parameter (repeatable)")
    p.add_argument("--input", type=_parse_shape, metavar="CxHxW", help="override the input shape")
    p.add_argument("--search-path", action="append", default=[], metavar="DIR",
                   help="extra directory 'use' imports may read from")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for every subcommand."""
    ap = argparse.ArgumentParser(prog="archdsl", description="Declarative CNN architectures: check, summarize, "
                                 "compile to PyTorch, render.")
    ap.add_argument("--version", action="version", version=f"archdsl {__version__}")
    # Before the subcommand too; its own dest, as a subcommand's default would overwrite it.
    _add_limit_option(ap, dest="global_limit")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("check", help="parse, infer shapes and costs, report every problem")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    _add_common(p)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--select", action="append", metavar="CODES",
                   help="run only these design rules (comma-separated codes or prefixes, e.g. R3,R401)")
    p.add_argument("--ignore", action="append", metavar="CODES", help="skip these design rules")
    p.add_argument("--strict", action="store_true", help="fail (exit 1) on warnings too, listed or not")
    _add_listing_options(p, show=True)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("summary", help="per-layer table of shapes, params and MACs")
    p.add_argument("spec", metavar="SPEC")
    _add_common(p)
    p.add_argument("--depth", type=_positive_int, default=None, metavar="N", help="collapse scopes deeper than N")
    p.add_argument("--format", choices=("text", "json", "md", "csv"), default="text")
    _add_listing_options(p)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("convert", help="convert a spec between the text language and YAML")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.arch or OUT.yaml")
    p.set_defaults(func=cmd_convert)

    for register in _EXTENSIONS:
        register(sub)
    for parser in {id(p): p for p in sub.choices.values()}.values():
        _add_limit_option(parser)  # every subcommand, the extensions' included
    return ap


#: Subcommand registrars added by other modules (compile, render, rules, transform).
_EXTENSIONS: list[Callable[[argparse._SubParsersAction], None]] = []


@dataclass(frozen=True)
class Listing:
    """Which diagnostics a command lists: those of severity ``minimum`` or worse; errors always.

    The rest are counted in one line that names ``flag``, the option that lists them.
    """

    minimum: str = "warning"
    flag: str = "--severity"

    def lists(self, diag: Diagnostic) -> bool:
        """True if ``diag`` is listed in full."""
        return diag.is_error or _rank(diag.severity) <= _rank(self.minimum)


DEFAULT_LISTING = Listing()


def _rank(severity: str) -> int:
    """0 for errors, 1 for warnings, 2 for infos (and anything else)."""
    return _SEVERITIES.index(severity) if severity in _SEVERITIES else len(_SEVERITIES) - 1


def listing_of(args: argparse.Namespace) -> Listing:
    """The listing policy a command line asked for (``--severity``, ``--show``, ``-q``), else the default."""
    return Listing(getattr(args, "severity", None) or "warning", getattr(args, "listing_flag", "--severity"))


def _count(n: int, noun: str) -> str:
    """``1 error``, ``2 errors``, ``0 infos``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def closing_line(diags: Sequence[Diagnostic]) -> str:
    """``N errors, M warnings, K infos``: every diagnostic counted, listed or not."""
    counts = [sum(d.severity == sev for d in diags) for sev in _SEVERITIES]
    return ", ".join(_count(n, sev) for n, sev in zip(counts, _SEVERITIES, strict=True))


def hidden_line(hidden: Sequence[Diagnostic], flag: str) -> str:
    """``5 infos not shown (--show info lists them)``: the one line that stands for unlisted diagnostics."""
    counts = [(sev, sum(d.severity == sev for d in hidden)) for sev in _SEVERITIES]
    present = [(sev, n) for sev, n in counts if n]
    least = present[-1][0]
    what = " and ".join(_count(n, sev) for sev, n in present)
    return f"{what} not shown ({flag} {least} lists {'it' if len(hidden) == 1 else 'them'})"


def _print_diags(diags: Sequence[Diagnostic], sources: SourceCache, stream: TextIO | None = None,
                 listing: Listing = DEFAULT_LISTING) -> None:
    """List ``diags`` as ``listing`` says, one line for the unlisted ones, then the closing count line."""
    stream = stream or sys.stderr
    hidden = []
    for d in diags:
        if listing.lists(d):
            print(format_text(d, sources), file=stream)
        else:
            hidden.append(d)
    if hidden:
        print(hidden_line(hidden, listing.flag), file=stream)
    if diags:
        print(closing_line(diags), file=stream)


def _analyze(path: str, args: argparse.Namespace):
    from .pipeline import Analysis, analyze, parse_overrides

    try:
        overrides = parse_overrides(args.param)
    except DiagnosticError as exc:
        res = Analysis(path)
        res.diags.add(exc.diagnostic)
        return res
    return analyze(path, overrides, args.input, tuple(args.search_path), rules=getattr(args, "rules", None))


def cmd_check(args: argparse.Namespace) -> int:
    """``archdsl check``: exit 0 when clean, 1 on errors (or, with ``--strict``, warnings)."""
    from .rules import RuleUsageError, request_from_cli

    try:
        args.rules = request_from_cli(args.select, args.ignore)
    except RuleUsageError as exc:
        print(f"archdsl check: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    all_diags: list[Diagnostic] = []
    sources = SourceCache()
    failed = False
    for spec in args.specs:
        res = _analyze(spec, args)
        sources._lines.update(res.sources._lines)
        diags = res.diags.sorted()
        all_diags.extend(diags)
        failed |= res.diags.has_errors or (args.strict and any(d.severity == "warning" for d in diags))
    listing = listing_of(args)
    if args.format == "json":  # machines get every finding unless a filter was asked for
        print(format_json(all_diags if args.severity is None else [d for d in all_diags if listing.lists(d)]))
    else:
        _print_diags(all_diags, sources, listing=listing)
        if not failed and not all_diags:
            print(f"ok: {len(args.specs)} spec{'s' if len(args.specs) != 1 else ''} checked", file=sys.stderr)
    return EXIT_ERRORS if failed else EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    """``archdsl summary``: the per-layer table."""
    from . import report

    res = _analyze(args.spec, args)
    if not res.ok or res.graph is None:
        _print_diags(res.diags.sorted() or [Diagnostic("E114", "not a network (a library of blocks?)",
                                                       Loc(args.spec, 1, 1))], res.sources, listing=listing_of(args))
        return EXIT_ERRORS
    render = {"text": report.render_text, "json": report.render_json, "md": report.render_markdown,
              "csv": report.render_csv}[args.format]
    sys.stdout.write(render(res.graph, args.depth))
    _print_diags(res.diags.sorted(), res.sources, listing=listing_of(args))
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    """``archdsl convert``: text <-> YAML, same AST."""
    from .frontend.loader import is_yaml, load_spec_file
    from .frontend.printer import to_text, to_yaml
    from .io import write_atomic

    sources = SourceCache()
    try:
        spec = load_spec_file(args.spec, sources)
        out = to_yaml(spec) if is_yaml(args.output) else to_text(spec)
        write_atomic(args.output, out)
    except DiagnosticError as exc:
        _print_diags([exc.diagnostic], sources)
        return EXIT_ERRORS
    except OSError as exc:
        _print_diags([Diagnostic("E005", f"cannot write {args.output}: {exc.strerror or exc}",
                                 Loc(args.output, 0, 0))], sources)
        return EXIT_ERRORS
    return EXIT_OK


def _limits_for(args: argparse.Namespace) -> limits.Limits | None:
    """``ARCHDSL_LIMITS``, then ``--limit`` before and after the subcommand (later ones win)."""
    try:
        from_env = limits.parse_limit_pairs(limits.environment_pairs())
    except ValueError as exc:
        print(f"archdsl: error: ARCHDSL_LIMITS: {exc}", file=sys.stderr)
        return None
    given = limits.parse_limit_pairs(args.global_limit + getattr(args, "limit", []))
    return limits.make({**from_env, **given})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for the console script and ``python -m archdsl``."""
    _load_extensions()
    parser = build_parser()
    args = parser.parse_args(argv)
    in_force = _limits_for(args)
    if in_force is None:
        return EXIT_USAGE
    # Scoped: a run's limits end with it (tests call main() many times in one process).
    with limits.scoped(in_force), limits.recursion_headroom():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except RecursionError:  # a safety net: the front ends bound nesting, with a location, first
        _print_diags([Diagnostic("E152", "input nested too deeply to process", Loc(_spec_of(args), 1, 1),
                                 hint="simplify the spec, or lower --limit nesting=N")], SourceCache())
        return EXIT_ERRORS
    except MemoryError:
        _print_diags([Diagnostic("E150", "input too large to process in memory", Loc(_spec_of(args), 1, 1),
                                 hint="lower the limits (--limit nodes=N, --limit repeat=N)")], SourceCache())
        return EXIT_ERRORS
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _spec_of(args: argparse.Namespace) -> str:
    """The spec a command was working on, to locate a diagnostic that has no better place."""
    specs = getattr(args, "specs", None) or [getattr(args, "spec", None) or "<command line>"]
    return str(specs[0])


def _load_extensions() -> None:
    # Importing these modules registers their subcommands; each must stay cheap (no torch).
    from .backends import cli_compile, cli_render  # noqa: F401
    from .rules import cli as rules_cli  # noqa: F401


__all__ = ["main", "build_parser", "DiagnosticBag", "Path"]
