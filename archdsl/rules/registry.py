"""The rule registry: one :class:`Rule` per code, with its severity, rationale and source paper.

A rule is a function ``check(ctx) -> iterable of Diagnostic`` registered with :func:`rule`.  The
code is stable (documented in ``docs/rules.md``); the severity is the default one a finding gets
(a rule may lower it to ``info`` for a milder case and says so in its ``severity_note``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..diagnostics import Diagnostic

#: Papers the rules cite, by short key.
PAPERS = {
    "rethinking": 'Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision"',
    "googlenet": 'Szegedy et al. 2015, "Going Deeper with Convolutions"',
    "bn": 'Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network Training by Reducing '
          'Internal Covariate Shift"',
    "resnet": 'He et al. 2016, "Deep Residual Learning for Image Recognition"',
    "densenet": 'Huang et al. 2017, "Densely Connected Convolutional Networks"',
}


@dataclass(frozen=True)
class Rule:
    """One design rule."""

    code: str
    name: str
    severity: str
    summary: str
    rationale: str
    source: str
    options: tuple[str, ...]
    check: Callable[..., Iterable[Diagnostic]]
    severity_note: str = ""


RULES: dict[str, Rule] = {}


def rule(code: str, name: str, severity: str, summary: str, rationale: str, source: str,
         options: tuple[str, ...] = (), severity_note: str = "") -> Callable:
    """Register the decorated ``check(ctx)`` function as rule ``code``."""

    def deco(fn: Callable[..., Iterable[Diagnostic]]) -> Callable[..., Iterable[Diagnostic]]:
        if code in RULES:
            raise ValueError(f"rule {code} registered twice")
        RULES[code] = Rule(code, name, severity, summary, rationale, PAPERS.get(source, source), options, fn,
                           severity_note)
        return fn

    return deco


def all_rules() -> list[Rule]:
    """Every rule, in code order (importing the rule modules first)."""
    from . import checks  # noqa: F401  (registers the rules)

    return [RULES[c] for c in sorted(RULES)]
