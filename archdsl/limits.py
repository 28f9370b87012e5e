"""Resource limits that keep hostile or broken specs from hanging or exhausting a run.

Every limit has its own diagnostic (see docs/robustness.md).  Defaults suit real networks with
a wide margin (the largest zoo spec has under 2,000 nodes); change them with
``--limit NAME=VALUE`` on the command line or ``ARCHDSL_LIMITS="nodes=5000000,..."``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """The configurable limits; names are what ``--limit`` accepts."""

    file_bytes: int = 4 * 1024 * 1024   # E005: spec file size
    nesting: int = 200                  # E152: brackets/blocks nested in text, YAML levels
    yaml_nodes: int = 1_000_000         # E150: YAML nodes after alias expansion
    repeat: int = 100_000               # E150: one repeat/dense count
    nodes: int = 2_000_000              # E150: IR nodes after expansion
    int_digits: int = 18                # E151: integer magnitude (10**18)
    channels: int = 1 << 20             # E153: channels of any tensor
    spatial: int = 1 << 16              # E153: height or width of any tensor
    import_depth: int = 16              # E152: chain of 'use' imports
    call_depth: int = 64                # E152: nested block instantiation
    memory_bytes: int = 0               # E154: parameter memory (0 = this machine's RAM)


DEFAULT = Limits()
_current = DEFAULT


def current() -> Limits:
    """The limits in force for this process."""
    return _current


def configure(overrides: dict[str, int]) -> Limits:
    """Replace the limits in force (unknown names raise ValueError with the valid ones)."""
    global _current
    names = {f.name for f in dataclasses.fields(Limits)}
    bad = sorted(set(overrides) - names)
    if bad:
        raise ValueError(f"unknown limit {bad[0]!r}; limits: {', '.join(sorted(names))}")
    _current = dataclasses.replace(DEFAULT, **overrides)
    return _current


def parse_limit_pairs(pairs: list[str]) -> dict[str, int]:
    """``["nodes=10", "repeat=5"]`` -> dict; ValueError on malformed pairs."""
    out: dict[str, int] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not value.strip().isdigit():
            raise ValueError(f"bad limit {pair!r}: write NAME=INTEGER")
        out[key.strip()] = int(value)
    return out


def from_environment() -> None:
    """Apply ``ARCHDSL_LIMITS`` if set."""
    raw = os.environ.get("ARCHDSL_LIMITS", "").strip()
    if raw:
        configure(parse_limit_pairs([p for p in raw.split(",") if p.strip()]))


def machine_memory_bytes() -> int:
    """Physical memory of this machine (0 when it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0
