"""Design-rule checking: the papers' principles as a linter that quantifies every finding.

:func:`run_rules` runs after the shape and cost passes (``archdsl check`` asks for it through
``analyze(..., rules=...)``).  Each finding is a :class:`~archdsl.diagnostics.Diagnostic` with a
stable ``Rnnn`` code, a severity, the location of the line that chose the offending layer, its
module path, measured ``evidence`` and a hint holding the fix with its effect.  The rules live in
:mod:`archdsl.rules.checks`; ``archdsl rules`` lists them; ``docs/rules.md`` explains them.

Suppression: a comment ``# archdsl: ignore[R301]`` (several codes comma-separated, prefixes such as
``R3`` allowed, or bare ``# archdsl: ignore`` for every rule) on the reported line, or on the line
of any block call, group or repeat enclosing the layer (so one instance of a block can be exempted
at its call while a comment inside the block exempts every instance).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..diagnostics import WARNING, Diagnostic, Loc, SourceCache

if TYPE_CHECKING:
    from ..pipeline import Analysis
    from .config import OPTIONS, Config, RuleRequest, RuleUsageError, request_from_cli
    from .graphctx import Ctx
    from .registry import RULES, Rule, all_rules

# The names this package re-exports are imported on first use (PEP 562): importing the package
# (``archdsl --help`` does, to register ``archdsl rules``) must not import networkx, which the
# graph context needs, nor the AST, which the configuration needs.
_FROM_CONFIG = frozenset({"OPTIONS", "Config", "RuleRequest", "RuleUsageError", "request_from_cli"})
_FROM_REGISTRY = frozenset({"RULES", "Rule", "all_rules"})


def __getattr__(name: str) -> Any:
    """Import a re-exported name's module when the name is first used."""
    if name in _FROM_CONFIG:
        from . import config as module
    elif name in _FROM_REGISTRY:
        from . import registry as module
    elif name == "Ctx":
        from . import graphctx as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = module.__dict__[name]
    globals()[name] = value
    return value


__all__ = ["run_rules", "lint", "RuleRequest", "RuleUsageError", "request_from_cli", "all_rules", "RULES", "Rule",
           "OPTIONS", "Config"]

_SUPPRESS = re.compile(r"#\s*archdsl:\s*ignore\b(?:\[([^\]]*)\])?", re.IGNORECASE)


def _suppressed_codes(line: str | None) -> tuple[str, ...] | None:
    """Codes a line's ``# archdsl: ignore[...]`` comment names; ``()`` = all; None = no comment."""
    if not line or "#" not in line:
        return None
    m = _SUPPRESS.search(line)
    if m is None:
        return None
    if m.group(1) is None:
        return ()
    return tuple(c.strip().upper() for c in m.group(1).split(",") if c.strip())


def is_suppressed(code: str, locs: list[Loc], sources: SourceCache) -> bool:
    """Does a suppression comment on any of ``locs``' lines cover ``code``?"""
    for loc in locs:
        codes = _suppressed_codes(sources.line(loc.file, loc.line))
        if codes is not None and (not codes or any(code.startswith(c) for c in codes)):
            return True
    return False


def lint(res: Analysis, request: RuleRequest | None = None) -> list[Diagnostic]:
    """The rule findings (and configuration errors) for an analysed spec, suppressions applied."""
    from .config import RuleRequest, load_config
    from .graphctx import Ctx
    from .registry import all_rules

    request = request or RuleRequest()
    graph = res.graph
    if graph is None or graph.input_shape is None or res.diags.has_errors:
        return []
    rules = all_rules()
    cfg = load_config(res.spec, res.file, dict(graph.params), request, [r.code for r in rules])
    out: list[Diagnostic] = list(cfg.diags)
    spec = res.spec
    net_loc = spec.network.loc if spec is not None and spec.network is not None else Loc(res.file, 1, 1)
    enabled = [r for r in rules if cfg.enabled(r.code)]
    if not enabled:
        return out
    ctx = Ctx.build(graph, cfg.values, net_loc, res)
    for r in enabled:
        out.extend(_run_one(r, ctx, res.sources, net_loc))
    return out


def _run_one(r: Rule, ctx: Ctx, sources: SourceCache, net_loc: Loc) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    try:
        for d in r.check(ctx):
            nid = _node_of(ctx, d)
            locs = [d.loc] + (ctx.enclosing_call_lines(nid) if nid is not None else [net_loc])
            if not is_suppressed(d.code, locs, sources):
                found.append(d)
    except Exception as exc:  # a rule must never take `check` down; report it instead
        found.append(Diagnostic("R000", f"rule {r.code} failed: {type(exc).__name__}: {exc}", net_loc, WARNING,
                                hint="this is a bug in archdsl's rules; please report it with the spec"))
    return found


def _node_of(ctx: Ctx, d: Diagnostic) -> int | None:
    nid = ctx.origin.get(id(d))
    return nid if nid is not None else ctx.graph.paths.get(d.path) if d.path else None


def run_rules(res: Analysis, request: RuleRequest | bool | None = None) -> None:
    """Run the rules on ``res`` and record their findings in ``res.diags``."""
    if request is False:
        return
    from .config import RuleRequest

    req = request if isinstance(request, RuleRequest) else RuleRequest()
    res.diags.extend(lint(res, req))


def describe(r: Rule) -> dict[str, Any]:
    """A rule as plain data (``archdsl rules --format json``)."""
    from .config import OPTIONS

    return {"code": r.code, "name": r.name, "severity": r.severity, "severity_note": r.severity_note,
            "summary": r.summary, "rationale": r.rationale, "source": r.source,
            "options": {o: OPTIONS[o].default for o in r.options}}
