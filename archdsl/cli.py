"""The ``archdsl`` command line.  ``check``, ``summary`` and ``convert`` never import torch."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import TextIO

from . import __version__, limits
from .diagnostics import Diagnostic, DiagnosticBag, DiagnosticError, Loc, SourceCache, format_json, format_text

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _parse_shape(text: str) -> tuple:
    """``--input 3x224x224``; the height and width may be the symbols H and W (``3xHxW``, ``3x224xW``)."""
    parts = [p.strip() for p in text.replace(",", "x").replace("X", "x").split("x")]
    dims: list = []
    for i, p in enumerate(parts):
        if p.isdigit() and int(p) > 0:
            dims.append(int(p))
        elif (i, p) in ((1, "H"), (2, "W")):
            dims.append(p)
        else:
            dims = []
            break
    if len(dims) != 3 or len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected CxHxW like 3x224x224, or with the symbols H and W for any "
                                         f"size like 3xHxW, got {text!r}")
    return tuple(dims)


def _limit_pair(text: str) -> str:
    """``--limit NAME=VALUE``: checked here so a bad one is a usage error naming the valid limits."""
    try:
        limits.parse_limit_pairs([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


_LIMIT_HELP = "raise or lower a resource limit (repeatable); 'archdsl limits' lists them"


def _add_limit_option(p: argparse.ArgumentParser, dest: str = "limit") -> None:
    p.add_argument("--limit", dest=dest, action="append", default=[], type=_limit_pair, metavar="NAME=VALUE",
                   help=_LIMIT_HELP)


_COLOR_CHOICES = ("auto", "always", "never")


def _add_color_option(p: argparse.ArgumentParser, dest: str = "color") -> None:
    p.add_argument("--color", dest=dest, choices=_COLOR_CHOICES, default=None,
                   help="colour diagnostics: auto (default: on a terminal; honours NO_COLOR, FORCE_COLOR), "
                        "always, never")


class _Quiet(argparse.Action):
    """``-q``: list only the errors (it shares ``severity`` with ``--severity``/``--show``, the last one
    wins) and print no status line (``ok: ...``, ``wrote ...``)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)  # type: ignore[arg-type]

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        namespace.severity = "error"   # the listing options' shared destination
        namespace.quiet = True


def _add_quiet_option(p: argparse.ArgumentParser, what: str) -> None:
    """``-q/--quiet`` for a command without a listing: it prints only errors; ``what`` says what it drops."""
    p.add_argument("-q", "--quiet", action="store_true", help=f"print only errors: no {what}")


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
    p.add_argument("-q", "--quiet", action=_Quiet, dest="severity",
                   help="list only the errors (as --severity error), counting warnings and infos in one line; "
                        "no status line ('ok: ...', 'wrote ...')")
    p.set_defaults(listing_flag="--show" if show else "--severity")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a network parameter (repeatable)")
    p.add_argument("--input", type=_parse_shape, metavar="CxHxW", help="override the input shape")
    p.add_argument("--search-path", action="append", default=[], metavar="DIR",
                   help="extra directory 'use' imports may read from")
    p.add_argument("--budget", action="append", default=[], metavar="FIGURE<=BOUND",
                   help="hold the network to a budget (repeatable), adding to the spec's or replacing its bound "
                        "of that figure: params, macs, depth or activations, e.g. --budget params<=5.5M")


SPEC_HELP = "a spec file: the text language (.arch) or YAML (.yaml, .yml)"


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for every subcommand."""
    ap = argparse.ArgumentParser(prog="archdsl", description="Declarative CNN architectures: check, summarize, "
                                 "compile to PyTorch, render.",
                                 epilog="'archdsl COMMAND --help' describes a command; 'archdsl limits' lists the "
                                        "resource limits; 'archdsl completion bash|zsh|fish' prints a completion "
                                        "script.")
    ap.add_argument("--version", action="version", version=f"archdsl {__version__}")
    # Before the subcommand too, each with its own dest, as a subcommand's default would overwrite it.
    _add_limit_option(ap, dest="global_limit")
    _add_color_option(ap, dest="global_color")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", title="commands",
                            help="one of these (each has its own --help)")
    sub.required = True

    p = sub.add_parser("check", help="parse, infer shapes and costs, report every problem",
                       description="Check each SPEC: parse it, resolve it into a graph, infer every shape and cost, "
                                   "run the design rules, and report every problem at its line and column. Exit 0 "
                                   "when no spec has an error, 1 otherwise, 2 on a bad command line.")
    p.add_argument("specs", nargs="+", metavar="SPEC", help=SPEC_HELP + " (one or more)")
    _add_common(p)
    p.add_argument("--format", choices=("text", "json", "github", "sarif"), default="text",
                   help="text: diagnostics for people, on stderr (default); json: one document on stdout; "
                        "github: GitHub Actions annotations (workflow commands) on stdout; sarif: a SARIF 2.1.0 "
                        "log on stdout (code scanning); see docs/ci.md")
    p.add_argument("--select", action="append", metavar="CODES",
                   help="run only these design rules (comma-separated codes or prefixes, e.g. R3,R401)")
    p.add_argument("--ignore", action="append", metavar="CODES", help="skip these design rules")
    p.add_argument("--strict", action="store_true", help="fail (exit 1) on warnings too, listed or not")
    _add_listing_options(p, show=True)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("summary", help="per-layer table of shapes, params and MACs",
                       description="Print SPEC's per-layer table on stdout: module path, output shape, parameters "
                                   "and MACs, with the totals; diagnostics go to stderr.")
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    _add_common(p)
    p.add_argument("--depth", type=_positive_int, default=None, metavar="N", help="collapse scopes deeper than N")
    p.add_argument("--format", choices=("text", "json", "md", "csv"), default="text",
                   help="text: an aligned table (default); json: every node; md: a Markdown table; csv")
    _add_listing_options(p)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("convert", help="convert a spec between the text language and YAML",
                       description="Convert SPEC to the other notation: the output's extension chooses YAML "
                                   "(.yaml, .yml) or the text language (anything else). Both hold the same AST.")
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.arch or OUT.yaml")
    _add_quiet_option(p, "'wrote' line")
    p.set_defaults(func=cmd_convert)

    for register in _EXTENSIONS:
        register(sub)
    _add_core_tail(sub)
    for parser in {id(p): p for p in sub.choices.values()}.values():
        _add_limit_option(parser)  # every subcommand, the extensions' included
        _add_color_option(parser)
        parser.set_defaults(quiet=False)  # -q sets it where a command has -q
    return ap


def _add_core_tail(sub: argparse._SubParsersAction) -> None:
    """``limits`` and ``completion``, listed after every other command."""
    p = sub.add_parser("limits", help="list the resource limits, their defaults and the values in force",
                       description="List every resource limit: its default, the value in force (after "
                                   "ARCHDSL_LIMITS and --limit) and what it bounds. Change one with --limit "
                                   "NAME=VALUE on any command, before or after the command name, or with "
                                   "ARCHDSL_LIMITS=NAME=VALUE,... in the environment.")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text: a table (default); json: one document")
    p.set_defaults(func=cmd_limits)

    p = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)",
                       description="Print a completion script for SHELL on stdout, generated from this command "
                                   "line's options. bash: source <(archdsl completion bash); zsh: source "
                                   "<(archdsl completion zsh) after compinit; fish: archdsl completion fish | "
                                   "source. Or save it where the shell loads completions from.")
    p.add_argument("shell", choices=("bash", "zsh", "fish"), metavar="SHELL", help="bash, zsh or fish")
    p.set_defaults(func=cmd_completion)


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


@dataclass(frozen=True)
class Output:
    """How the running command prints: ``--color`` (auto, always, never) and ``-q`` (no status lines)."""

    color: str = "auto"
    quiet: bool = False


_output = Output()


@contextlib.contextmanager
def output_scope(output: Output) -> Iterator[Output]:
    """Print as ``output`` says for the duration (tests call :func:`main` many times in one process)."""
    global _output
    previous, _output = _output, output
    try:
        yield output
    finally:
        _output = previous


def wants_color(choice: str | None, stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour what goes to ``stream`` for ``--color choice`` (None: auto).

    auto colours a terminal whose ``TERM`` is not ``dumb``; a non-empty ``NO_COLOR`` turns that off
    (no-color.org), a non-empty ``FORCE_COLOR`` turns it on without a terminal (force-color.org);
    ``NO_COLOR`` wins when both are set.  ``always`` and ``never`` override the environment.
    """
    if choice in ("always", "never"):
        return choice == "always"
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR") or env.get("FORCE_COLOR"):
        return not env.get("NO_COLOR")
    if env.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # not a file, or a closed or detached one
        return False


def _colors(stream: TextIO) -> ModuleType | None:
    """:mod:`archdsl.cli_color` when ``stream`` gets colour in this run, else None (and no import)."""
    if not wants_color(_output.color, stream):
        return None
    from . import cli_color

    return cli_color


def _print_diags(diags: Sequence[Diagnostic], sources: SourceCache, stream: TextIO | None = None,
                 listing: Listing = DEFAULT_LISTING) -> None:
    """List ``diags`` as ``listing`` says, one line for the unlisted ones, then the closing count line."""
    stream = stream or sys.stderr
    colors = _colors(stream) if diags else None
    hidden = []
    for d in diags:
        if listing.lists(d):
            text = format_text(d, sources)
            print(colors.paint_diagnostic(text) if colors else text, file=stream)
        else:
            hidden.append(d)
    lines = ([hidden_line(hidden, listing.flag)] if hidden else []) + ([closing_line(diags)] if diags else [])
    for line in lines:
        print(colors.paint_counts(line) if colors else line, file=stream)


def print_diagnostic(diag: Diagnostic, sources: SourceCache | None = None, stream: TextIO | None = None) -> None:
    """One diagnostic in the text form, coloured as ``--color`` says (for commands that list their own)."""
    stream = stream or sys.stderr
    text = format_text(diag, sources)
    colors = _colors(stream)
    print(colors.paint_diagnostic(text) if colors else text, file=stream)


def status(text: str, stream: TextIO | None = None) -> None:
    """A status line (``ok: ...``, ``wrote PATH``, progress) on stderr; ``-q`` drops it."""
    if not _output.quiet:
        print(text, file=stream or sys.stderr)


def is_quiet() -> bool:
    """True when the running command was given ``-q``: print only errors."""
    return _output.quiet


def usage_error(text: str) -> None:
    """``archdsl CMD: error: ...``, a command-line mistake the command itself finds, on stderr."""
    colors = _colors(sys.stderr)
    print(colors.paint_error_prefix(text) if colors else text, file=sys.stderr)


def _analyze(path: str, args: argparse.Namespace):
    from .pipeline import Analysis, analyze, parse_overrides

    try:
        overrides = parse_overrides(args.param)
        budget = _cli_budget(args)
    except DiagnosticError as exc:
        res = Analysis(path)
        res.diags.add(exc.diagnostic)
        return res
    return analyze(path, overrides, args.input, tuple(args.search_path), rules=getattr(args, "rules", None),
                   budget=budget)


def _cli_budget(args: argparse.Namespace) -> tuple:
    """``--budget`` bounds as budget clauses (budget parsing is imported only when one is given)."""
    if not getattr(args, "budget", None):
        return ()
    from .budget import parse_cli_budgets

    return parse_cli_budgets(args.budget)


def cmd_check(args: argparse.Namespace) -> int:
    """``archdsl check``: exit 0 when clean, 1 on errors (or, with ``--strict``, warnings)."""
    from .rules import RuleUsageError, request_from_cli

    try:
        args.rules = request_from_cli(args.select, args.ignore)
    except RuleUsageError as exc:
        usage_error(f"archdsl check: error: {exc}")
        return EXIT_USAGE
    all_diags: list[Diagnostic] = []
    sources = SourceCache()
    failed = False
    domains: list[str] = []
    for spec in args.specs:
        res = _analyze(spec, args)
        symbolic = res.graph.symbolic if res.graph is not None else None
        if symbolic is not None and not symbolic.domain.empty:  # asked for with 3xHxW: always said
            domains.append(f"{spec}: valid for {symbolic.domain.text()}")
        sources._lines.update(res.sources._lines)
        diags = res.diags.sorted()
        all_diags.extend(diags)
        failed |= res.diags.has_errors or (args.strict and any(d.severity == "warning" for d in diags))
    listing = listing_of(args)
    if args.format == "json":  # machines get every finding unless a filter was asked for
        print(format_json(all_diags if args.severity is None else [d for d in all_diags if listing.lists(d)]))
    elif args.format in ("github", "sarif"):  # listed as the text form lists them: infos with --show info
        from . import ci_formats

        listed = [d for d in all_diags if listing.lists(d)]
        text = (ci_formats.format_github if args.format == "github" else ci_formats.format_sarif)(listed, sources)
        if text:
            print(text)
    else:
        _print_diags(all_diags, sources, listing=listing)
        for line in domains:
            status(line)
        if not failed and not all_diags and not is_quiet():
            ok = f"ok: {len(args.specs)} spec{'s' if len(args.specs) != 1 else ''} checked"
            colors = _colors(sys.stderr)
            status(colors.paint_ok(ok) if colors else ok)
    return EXIT_ERRORS if failed else EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    """``archdsl summary``: the per-layer table."""
    from . import report

    res = _analyze(args.spec, args)
    # a network over its budget (E401) is fully analyzed: its table shows where the figures come from
    if res.graph is None or any(d.is_error and d.code != "E401" for d in res.diags):
        _print_diags(res.diags.sorted() or [Diagnostic("E114", "not a network (a library of blocks?)",
                                                       Loc(args.spec, 1, 1))], res.sources, listing=listing_of(args))
        return EXIT_ERRORS
    render = {"text": report.render_text, "json": report.render_json, "md": report.render_markdown,
              "csv": report.render_csv}[args.format]
    sys.stdout.write(render(res.graph, args.depth))
    _print_diags(res.diags.sorted(), res.sources, listing=listing_of(args))
    return EXIT_OK if res.ok else EXIT_ERRORS


def cmd_convert(args: argparse.Namespace) -> int:
    """``archdsl convert``: text <-> YAML, same AST, relative ``use`` paths rewritten for the output's
    folder; text to text keeps the source as written (comments included) but for those paths."""
    from .frontend.loader import is_yaml, parse_source, read_spec_text
    from .frontend.printer import rebase_uses, search_root, splice_uses, to_text, to_yaml
    from .io import report_written, write_atomic

    sources = SourceCache()
    try:
        text = read_spec_text(args.spec)  # read once: SPEC may be a pipe
        sources.register(args.spec, text)
        spec = parse_source(text, args.spec, yaml=is_yaml(args.spec))
        rebased, moved = rebase_uses(spec, args.spec, args.output)
        kept = None if is_yaml(args.spec) or is_yaml(args.output) else splice_uses(text, spec, moved, rebased)
        write_atomic(args.output, kept if kept is not None else
                     to_yaml(rebased) if is_yaml(args.output) else to_text(rebased))
    except DiagnosticError as exc:
        if exc.source_text is not None:  # show the undecodable line under the diagnostic
            sources.register(args.spec, exc.source_text)
        _print_diags([exc.diagnostic], sources)
        return EXIT_ERRORS
    except OSError as exc:
        _print_diags([Diagnostic("E005", f"cannot write {args.output}: {exc.strerror or exc}",
                                 Loc(args.output, 1, 1))], sources)
        return EXIT_ERRORS
    root = search_root(moved, args.output)
    if root is not None:  # imports are confined to the importing file's folder unless allowed
        status(f"note: {args.output} imports from outside its folder: check or compile it with --search-path {root}")
    report_written(args.output, ("use " + ", ".join(f"{m.old} -> {m.new}" for m in moved)) if moved else "")
    return EXIT_OK


def _limits_for(args: argparse.Namespace) -> limits.Limits | None:
    """``ARCHDSL_LIMITS``, then ``--limit`` before and after the subcommand (later ones win)."""
    try:
        from_env = limits.parse_limit_pairs(limits.environment_pairs())
    except ValueError as exc:
        usage_error(f"archdsl: error: ARCHDSL_LIMITS: {exc}")
        return None
    given = limits.parse_limit_pairs(args.global_limit + getattr(args, "limit", []))
    return limits.make({**from_env, **given})


#: Short-lived commands that import no torch: as a program they run with the collector off (the
#: analysis pauses it anyway; the imports before it only allocate), and the heap is frozen at exit.
_NO_GC_COMMANDS = frozenset(("check", "summary", "convert", "rules", "limits", "completion"))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for the console script and ``python -m archdsl``."""
    import gc

    if argv is None and len(sys.argv) > 1 and sys.argv[1] in _NO_GC_COMMANDS:
        gc.disable()
    _load_extensions()
    parser = build_parser()
    args = parser.parse_args(argv)
    # Scoped: a run's limits and output settings end with it (tests call main() many times in one process).
    with output_scope(Output(args.color or args.global_color or "auto", bool(getattr(args, "quiet", False)))):
        in_force = _limits_for(args)
        if in_force is None:
            return EXIT_USAGE
        with limits.scoped(in_force), limits.recursion_headroom():
            rc = _run(args)
    if argv is None:
        # The process exits next: freezing the heap spares the collector's final pass over every
        # object (about 70 ms of a 300 ms `check`); tests that call main() keep normal collection.
        gc.freeze()
    return rc


def cmd_limits(args: argparse.Namespace) -> int:
    """``archdsl limits``: every resource limit with its default, the value in force and what it bounds."""
    rows = _limit_rows(args)
    if args.format == "json":
        import json

        print(json.dumps({"limits": rows}, indent=2))
        return EXIT_OK
    table = [("limit", "default", "in force", "code", "bounds")]
    for r in rows:
        value = f"{r['value']:,}" + ("" if r["set_by"] == "default" else f" ({r['set_by']})")
        table.append((str(r["name"]), f"{r['default']:,}", value, str(r["code"]), str(r["meaning"])))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[4])
    print("\nChange one with --limit NAME=VALUE (any command, before or after its name) or "
          "ARCHDSL_LIMITS=NAME=VALUE,...;\nwhy each default is what it is: docs/robustness.md#limits")
    return EXIT_OK


def _limit_rows(args: argparse.Namespace) -> list[dict[str, object]]:
    """One dict per limit, sorted by name: name, default, value (in force), set_by, code, meaning."""
    from_env = limits.parse_limit_pairs(limits.environment_pairs())  # valid: main checked it
    given = limits.parse_limit_pairs(args.global_limit + args.limit)
    defaults, current = asdict(limits.DEFAULT), asdict(limits.current())
    rows = []
    for name in limits.names():
        code, meaning = limits.MEANINGS[name]
        set_by = "--limit" if name in given else "ARCHDSL_LIMITS" if name in from_env else "default"
        rows.append({"name": name, "default": defaults[name], "value": current[name],
                     "set_by": set_by, "code": code, "meaning": meaning})
    return rows


def cmd_completion(args: argparse.Namespace) -> int:
    """``archdsl completion SHELL``: the completion script, generated from this parser."""
    from .completion import generate

    sys.stdout.write(generate(build_parser(), args.shell, tuple(limits.names())))
    return EXIT_OK


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
    from . import schema_cli, sweep_cli  # noqa: F401
    from .backends import cli_compile, cli_render  # noqa: F401
    from .lsp import cli as lsp_cli  # noqa: F401
    from .rules import cli as rules_cli  # noqa: F401
    from .train import cli as train_cli  # noqa: F401


__all__ = ["main", "build_parser", "DiagnosticBag", "Path"]
