"""Subcommands ``archdsl rules`` (the rule catalogue) and ``archdsl transform`` (factorizations).

Imported by :func:`archdsl.cli.main` when present; registering is all that happens at import time,
and nothing here imports torch.
"""

from __future__ import annotations

import argparse
import json
import textwrap

from .. import cli as _cli


def _register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rules", help="list the design rules with their rationale and source paper",
                       description="List the design rules 'check' runs: code, severity, what each checks, why "
                                   "(the paper's argument), its source and its options.")
    p.add_argument("codes", nargs="*", metavar="CODE", help="only these rules (codes or prefixes)")
    p.add_argument("--format", choices=("text", "json", "md"), default="text",
                   help="text: for reading (default); json: rules and options; md: a Markdown table")
    p.set_defaults(func=cmd_rules)

    p = sub.add_parser("transform", help="rewrite a spec: factorize large or square convolutions",
                       description="Rewrite SPEC's large or square convolutions as the factorizations the rules "
                                   "R301/R302 suggest, verify that shapes are kept, write NEW and print the "
                                   "before/after cost table.")
    p.add_argument("spec", metavar="SPEC", help=_cli.SPEC_HELP)
    p.add_argument("--factorize", nargs="?", const="5x5,7x7,asym", metavar="KINDS",
                   help="which factorizations: NxN (odd N >= 5: stacked 3x3, R301), asym (n x n, n >= 5 -> "
                        "1 x n + n x 1 on medium grids, R302), asym3 (also 3x3 on medium grids); "
                        "default: 5x5,7x7,asym")
    p.add_argument("--grid", metavar="LO..HI", help="medium grid range for asym (default: the rules' grid, 12..20)")
    p.add_argument("-o", "--output", required=True, metavar="NEW", help="NEW.arch (or NEW.yaml)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a network parameter while analysing (the written spec keeps its defaults)")
    p.add_argument("--search-path", action="append", default=[], metavar="DIR",
                   help="extra directory 'use' imports may read from")
    _cli._add_quiet_option(p, "cost table, notes or 'wrote' line")
    p.set_defaults(func=cmd_transform)


def cmd_rules(args: argparse.Namespace) -> int:
    """``archdsl rules``: every rule with severity, rationale, source and options."""
    from . import OPTIONS, all_rules, describe
    from .config import unknown_codes

    rules = all_rules()
    codes = [c.upper() for c in args.codes]
    bad = unknown_codes(codes, [r.code for r in rules])
    if bad:
        code, hint = bad[0]
        _cli.usage_error(f"archdsl rules: error: unknown rule code {code!r} ({hint})")
        return _cli.EXIT_USAGE
    if codes:
        rules = [r for r in rules if any(r.code.startswith(c) for c in codes)]
    if args.format == "json":
        print(json.dumps({"rules": [describe(r) for r in rules],
                          "options": {k: {"default": o.default, "doc": o.doc} for k, o in OPTIONS.items()}},
                         indent=2, default=list))
        return _cli.EXIT_OK
    if args.format == "md":
        print("| Code | Name | Severity | Checks | Source |")
        print("|---|---|---|---|---|")
        for r in rules:
            sev = r.severity + (f" ({r.severity_note})" if r.severity_note else "")
            print(f"| {r.code} | {r.name} | {sev} | {r.summary} | {r.source} |")
        return _cli.EXIT_OK
    wrap = textwrap.TextWrapper(width=100, initial_indent="    ", subsequent_indent="    ")
    for r in rules:
        print(f"{r.code}  {r.severity:<7}  {r.name}")
        print(wrap.fill(r.summary[0].upper() + r.summary[1:] + "."))
        print(wrap.fill("Why: " + r.rationale))
        print(wrap.fill("Source: " + r.source))
        if r.severity_note:
            print(wrap.fill("Severity: " + r.severity_note))
        if r.options:
            print(wrap.fill("Options: " + ", ".join(f"{o} = {_show(OPTIONS[o].default)}" for o in r.options)))
        print()
    print("Configure: check --select/--ignore CODES, --strict; rules(name = value, ...) in the spec;")
    print("[tool.archdsl.rules] in pyproject.toml; suppress one line with  # archdsl: ignore[CODE]")
    return _cli.EXIT_OK


def _show(v: object) -> str:
    if isinstance(v, tuple):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return "all" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def cmd_transform(args: argparse.Namespace) -> int:
    """``archdsl transform``: rewrite the spec with the requested factorizations."""
    from ..transforms.factorize import TransformError, parse_grid, parse_kinds, transform_file

    try:
        kinds = parse_kinds(args.factorize)
        grid = parse_grid(args.grid) if args.grid else None
    except TransformError as exc:
        _cli.usage_error(f"archdsl transform: error: {exc}")
        return _cli.EXIT_USAGE
    return transform_file(args.spec, args.output, kinds, grid, args.param, tuple(args.search_path))


_cli._EXTENSIONS.append(_register)
