"""``archdsl sweep``: the command line of :mod:`archdsl.sweep`.

Importing this module registers the subcommand with :mod:`archdsl.cli`; it imports nothing heavy
(the analysis is imported when the command runs), and the command never imports torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import cli
from .diagnostics import DiagnosticError, SourceCache

FORMATS = ("text", "csv", "json", "md")
PLOT_FORMATS = ("svg", "png")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` subcommand."""
    p = sub.add_parser("sweep", help="analyze a spec over a grid of network parameters; Pareto front of params "
                                     "and MACs",
                       description="Analyze SPEC once per setting of its network parameters and print one row "
                                   "per point: the parameters, params, MACs (eval), activations (output "
                                   "elements of every layer at batch 1) and depth (conv/linear layers on the "
                                   "longest path), with the points on the Pareto front of params and MACs "
                                   "marked. Exit 0 when every point analyzed, 1 when one failed (its errors are "
                                   "listed once, with the points they stop), 2 on a bad command line.")
    p.add_argument("spec", metavar="SPEC", help=cli.SPEC_HELP)
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="a network parameter and its values (repeatable, one -p per parameter). Values are "
                        "expressions as for -p elsewhere; commas inside brackets belong to the value: "
                        "-p 'strides=[1,2],[2,2]' is two values")
    p.add_argument("--zip", action="store_true",
                   help="pair the parameters' values positionally (all must have as many values) instead of "
                        "taking every combination")
    p.add_argument("--input", type=cli._parse_shape, metavar="CxHxW", help="override the input shape")
    p.add_argument("--search-path", action="append", default=[], metavar="DIR",
                   help="extra directory 'use' imports may read from")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text: an aligned table (default); csv; json: one document; md: a Markdown table")
    p.add_argument("--plot", metavar="OUT", help="also draw MACs against params, the front highlighted: OUT.svg, "
                                                 "or OUT.png (needs Pillow)")
    p.add_argument("-j", "--jobs", type=cli._positive_int, default=None, metavar="N",
                   help="worker processes (default: one per CPU when the points look long enough to gain "
                        "from it, else none)")
    cli._add_quiet_option(p, "progress bar, summary line or 'wrote' line")
    p.set_defaults(func=cmd_sweep)


def _plot_format(out: str) -> str | None:
    ext = Path(out).suffix.lower().lstrip(".")
    return ext if ext in PLOT_FORMATS else None


def cmd_sweep(args: argparse.Namespace) -> int:
    """``archdsl sweep``: the table on stdout; exit 1 when a point failed."""
    from . import sweep

    fmt = _plot_format(args.plot) if args.plot else None
    if args.plot and fmt is None:
        cli.usage_error(f"archdsl sweep: error: --plot {args.plot!r}: the file name must end in .svg or .png")
        return cli.EXIT_USAGE
    if fmt == "png":
        from .backends.sweep_plot import PlotError, check_png

        try:
            check_png()
        except PlotError as exc:
            cli.print_diagnostic(exc.diagnostic)
            return cli.EXIT_ERRORS
    try:
        axes = _axes(args.param)
        points = sweep.make_points(axes, args.zip)
    except sweep.SweepUsageError as exc:
        cli.usage_error(f"archdsl sweep: error: {exc}")
        return cli.EXIT_USAGE
    except _BadValue as bad:
        cli.print_diagnostic(bad.error.diagnostic, bad.sources)
        return cli.EXIT_ERRORS
    # without -j: one worker per CPU, if the points left after a warm one look worth it
    with _progress(len(points)) as advance:
        ran = sweep.run(args.spec, points, args.input, tuple(args.search_path), args.jobs or sweep.cpu_count(),
                        advance, None if args.jobs else sweep.PARALLEL_MIN_SECONDS)
    results = ran.results
    for text in sweep.format_errors(results):
        _print_error(text)
    front = sweep.pareto_front(results)
    sys.stdout.write(sweep.render(args.format, args.spec, axes, results, front))
    failed = sum(not r.ok for r in results)
    if args.plot and not _write_plot(args.plot, fmt or "svg", args.spec, results, front):
        return cli.EXIT_ERRORS
    cli.status(f"{len(results)} point{'s' if len(results) != 1 else ''}, {failed} failed; Pareto front "
               f"(params, MACs): {_which(sorted(front))}"
               + (f"; {ran.workers} worker{'s' if ran.workers != 1 else ''}" if ran.workers else ""))
    return cli.EXIT_ERRORS if failed else cli.EXIT_OK


class _BadValue(Exception):
    """A ``-p`` value that does not parse or evaluate, with the option's text to show under it."""

    def __init__(self, error: DiagnosticError, sources: SourceCache) -> None:
        super().__init__(error.diagnostic.message)
        self.error, self.sources = error, sources


def _axes(pairs: Sequence[str]) -> list:
    """Parse every ``-p``; a bad value becomes :class:`_BadValue` with its option as the source line."""
    from . import sweep

    for pair in pairs:
        try:
            sweep.parse_axis(pair)
        except DiagnosticError as exc:
            sources = SourceCache()
            sources.register(sweep.COMMAND_LINE, pair)  # the caret points into the option as typed
            raise _BadValue(exc, sources) from None
    return sweep.parse_axes(pairs)


def _print_error(text: str) -> None:
    colors = cli._colors(sys.stderr)
    print(colors.paint_diagnostic(text) if colors else text, file=sys.stderr)


def _which(indices: Sequence[int]) -> str:
    return ("points " if len(indices) != 1 else "point ") + ", ".join(map(str, indices)) if indices else "none"


def _write_plot(out: str, fmt: str, spec: str, results: Sequence[Any], front: set[int]) -> bool:
    """Draw the ok points to ``out``; False (after printing why) when it cannot be written."""
    from .backends.sweep_plot import Dot, PlotError, layout, to_png, to_svg
    from .diagnostics import Diagnostic, Loc
    from .expr import show
    from .io import report_written, write_atomic

    # a label is the point's values only; the legend names the parameters once
    dots = [Dot(r.params, r.macs, ", ".join(show(v) for _, v in r.point.values) or "defaults",
                r.point.index in front) for r in results
            if r.ok and isinstance(r.params, int) and isinstance(r.macs, int)]
    if not dots:
        cli.status(f"note: no plot written: no point has figures to draw ({out})")
        return True
    names = [name for name, _ in results[0].point.values]
    prims = layout(dots, f"{Path(spec).name}: MACs vs params, {len(dots)} points",
                   f"labels: {', '.join(names)}" if names else "")
    try:
        write_atomic(out, to_svg(prims) if fmt == "svg" else to_png(prims))
    except PlotError as exc:
        cli.print_diagnostic(exc.diagnostic)
        return False
    except OSError as exc:
        cli.print_diagnostic(Diagnostic("E005", f"cannot write {out}: {exc.strerror or exc}", Loc(out, 1, 1)))
        return False
    report_written(out)
    return True


class _progress:
    """A transient progress bar on stderr when it is a terminal (and not ``-q``); otherwise nothing.

    Used as ``with _progress(n) as advance:``; ``advance`` is called once per finished point."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Any = None

    def __enter__(self) -> Callable[[Any], None] | None:
        if cli.is_quiet() or not _is_tty(sys.stderr) or self.total < 2:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        # No refresh thread (auto_refresh off, redrawn as each point ends): the workers are forked
        # while the bar is up, and forking a process that runs another thread can deadlock the child.
        self.bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=Console(file=sys.stderr), transient=True, auto_refresh=False)
        self.bar.start()
        task = self.bar.add_task("sweep", total=self.total)

        def advance(_result: Any) -> None:
            self.bar.update(task, advance=1, refresh=True)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


cli._EXTENSIONS.append(register)
