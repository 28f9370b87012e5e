"""``archdsl render``: architecture diagrams (SVG, PNG, PDF, DOT, interactive HTML).

Importing this module registers the subcommand with :mod:`archdsl.cli`; neither importing it nor
running ``render`` imports torch.
"""

from __future__ import annotations

import argparse

from .. import cli
from ..diagnostics import Diagnostic, Loc


def _show(text: str) -> frozenset[str]:
    from .render import SHOW_KEYS

    items = {t.strip() for t in text.split(",") if t.strip()}
    if items in ({"none"}, set()):
        return frozenset()
    if "all" in items:
        return frozenset(SHOW_KEYS)
    bad = sorted(items - set(SHOW_KEYS))
    if bad:
        raise argparse.ArgumentTypeError(f"unknown --show item(s) {', '.join(bad)}; "
                                         f"choose from {', '.join(SHOW_KEYS)}, all, none")
    return frozenset(items)


def _depth(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--depth must be a positive integer, got {text!r}")
    return int(text)


#: render.FORMATS and render.DIRECTIONS, without importing render (it imports the IR, hence networkx):
#: every command registers this one, even ``--help`` (tests/test_startup.py checks they agree).
FORMATS = ("svg", "png", "pdf", "dot", "html", "mmd")
DIRECTIONS = ("TB", "LR")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``render`` subcommand."""
    p = sub.add_parser("render", help="draw the architecture: SVG, PNG, PDF, DOT, Mermaid or an interactive HTML "
                                      "viewer",
                       description="Draw a spec as a diagram. Blocks are labelled clusters; --depth collapses "
                                   "them into single nodes. Needs Graphviz's 'dot' except for -o OUT.dot and "
                                   "-o OUT.mmd (a Mermaid flowchart, drawn by code hosts inside Markdown).")
    p.add_argument("spec", metavar="SPEC", help=cli.SPEC_HELP)
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="OUT.svg, OUT.png, OUT.pdf, OUT.dot, OUT.html or OUT.mmd (the format follows the "
                        "extension)")
    p.add_argument("--format", choices=FORMATS, default=None, help="output format (default: from OUT's extension)")
    p.add_argument("--depth", type=_depth, default=None, metavar="N",
                   help="collapse blocks N or more levels deep into single nodes (as 'summary --depth')")
    p.add_argument("--expand", action="append", default=[], metavar="PATH",
                   help="draw block PATH and everything inside it in full (repeatable)")
    p.add_argument("--direction", choices=DIRECTIONS, default="TB", help="top-to-bottom (default) or left-to-right")
    p.add_argument("--show", type=_show, default=None, metavar="LIST",
                   help="annotations, comma-separated: shapes (edge tensor shapes; the default), params, macs, "
                        "all, none")
    p.add_argument("--no-rules", action="store_true",
                   help="do not run the design rules (their findings are outlined in red by default)")
    cli._add_common(p)
    cli._add_listing_options(p)
    p.set_defaults(func=cmd_render)


def _run_rules(res) -> None:
    """Add the design-rule findings to ``res.diags`` when the rules package is available."""
    try:
        from ..rules import run_rules
    except ImportError:
        return
    run_rules(res)


def cmd_render(args: argparse.Namespace) -> int:
    """``archdsl render``: exit 0 when the diagram was written, 1 otherwise."""
    from ..io import report_written
    from .render import DEFAULT_SHOW, RenderError, RenderOptions, render_graph

    res = cli._analyze(args.spec, args)
    if not res.ok or res.graph is None:
        diags = res.diags.sorted() or [Diagnostic("E114", "not a network (a library of blocks?)",
                                                  Loc(args.spec, 1, 1))]
        cli._print_diags(diags, res.sources, listing=cli.listing_of(args))
        return cli.EXIT_ERRORS
    if res.graph.input_shape is None:
        cli._print_diags([Diagnostic("E114", "no input shape; pass --input CxHxW", Loc(args.spec, 1, 1))],
                         res.sources)
        return cli.EXIT_ERRORS
    if not args.no_rules:
        _run_rules(res)
    options = RenderOptions(depth=args.depth, expand=tuple(args.expand), direction=args.direction,
                            show=DEFAULT_SHOW if args.show is None else args.show)
    notes: list[str] = []
    try:
        render_graph(res.graph, args.output, args.format, options, res.diags, args.spec, notes)
    except RenderError as exc:
        cli._print_diags([exc.diagnostic], res.sources)
        return cli.EXIT_ERRORS
    others = [d for d in res.diags.sorted() if not d.code.startswith("R")]
    if others:
        cli._print_diags(others, res.sources, listing=cli.listing_of(args))
    findings = sum(1 for d in res.diags if d.code.startswith("R") and d.path and d.severity != "info")
    note = f"{findings} rule finding{'s' if findings != 1 else ''} outlined in red; 'archdsl check' explains them" \
        if findings else ""
    report_written(args.output, "; ".join(filter(None, [note, *notes])))
    return cli.EXIT_OK


cli._EXTENSIONS.append(register)
