"""Resource limits that keep hostile or broken specs from hanging or exhausting a run.

Every limit has its own diagnostic (see docs/robustness.md).  Defaults suit real networks with
a wide margin (the largest zoo spec, densenet201, has 709 nodes); change them with
``--limit NAME=VALUE`` on the command line, ``ARCHDSL_LIMITS="nodes=5000000,..."`` in the
environment of the command line, or :func:`configure` / :func:`scoped` from Python.

Passes read :func:`current` once per run (or per parser/walker), never per node, so the limits
cost nothing measurable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limits:
    """The configurable limits; names are what ``--limit`` accepts."""

    file_bytes: int = 128 * 1024        # E005: spec file size (zoo max 11 KB; YAML parses at ~26 us/byte)
    nesting: int = 200                  # E152: brackets/blocks/expressions in text, YAML levels
    yaml_nodes: int = 1_000_000         # E150: YAML nodes after alias expansion
    repeat: int = 100_000               # E150: one repeat/dense count
    nodes: int = 10_000                 # E150: IR nodes after expansion (zoo max 709; compile ~250 us/node)
    int_digits: int = 18                # E151: integer magnitude (10**18), literal length
    channels: int = 1 << 20             # E153: channels (or features) of any tensor
    spatial: int = 1 << 16              # E153: height or width of any tensor
    import_depth: int = 16              # E152: chain of 'use' imports
    call_depth: int = 64                # E152: nested block instantiation
    memory_bytes: int = 0               # E154: parameter memory (0 = this machine's RAM)
    render_nodes: int = 5_000           # E505: nodes drawn in one diagram (Graphviz is superlinear)
    dot_seconds: int = 120              # E502: time Graphviz 'dot' may take for one diagram
    #: Largest integer magnitude an expression may reach, ``10 ** int_digits`` (derived: the
    #: evaluator compares every integer against it, so it is computed once).
    max_int: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_int", 10**self.int_digits)


#: Bounds on the values a limit may take (``memory_bytes = 0`` means "this machine's RAM").
#: ``int_digits`` stays below CPython's own 4,300-digit int/str conversion limit.
_RANGES = {"memory_bytes": (0, 1 << 62), "int_digits": (1, 4000)}
_DEFAULT_RANGE = (1, 1 << 62)

#: The most Python frames :func:`recursion_headroom` allows: beyond ~20,000 frames of generator
#: recursion CPython overflows an 8 MiB C stack (a crash, not an exception).
_MAX_RECURSION = 8000
#: Frames a nesting level may take across the recursive passes (parser callbacks, evaluator,
#: elaborator, printers), measured with margin.
_FRAMES_PER_LEVEL = 10

DEFAULT = Limits()
_current = DEFAULT

#: What each limit bounds and the diagnostic that reports crossing it (``archdsl limits`` lists these;
#: docs/robustness.md has the reasons behind each default).
MEANINGS: dict[str, tuple[str, str]] = {
    "call_depth": ("E152", "depth of nested block calls"),
    "channels": ("E153", "channels (or flat features) of any tensor"),
    "dot_seconds": ("E502", "seconds Graphviz 'dot' may run for one diagram"),
    "file_bytes": ("E005", "size of a spec file in bytes"),
    "import_depth": ("E152", "chain of 'use' imports"),
    "int_digits": ("E151", "integer magnitude: at most 10**N, literals included"),
    "memory_bytes": ("E154", "float32 parameter memory in bytes (0: this machine's RAM)"),
    "nesting": ("E152", "nesting of brackets, blocks, expressions and YAML levels"),
    "nodes": ("E150", "IR nodes after every repeat and block is expanded"),
    "render_nodes": ("E505", "nodes drawn in one diagram (Graphviz is superlinear)"),
    "repeat": ("E150", "the count of one repeat or dense"),
    "spatial": ("E153", "height or width of any tensor"),
    "yaml_nodes": ("E150", "YAML nodes after alias expansion"),
}


def names() -> list[str]:
    """Every limit name, sorted."""
    return sorted(f.name for f in dataclasses.fields(Limits) if f.init)


def current() -> Limits:
    """The limits in force for this process."""
    return _current


def configure(overrides: Mapping[str, int]) -> Limits:
    """Replace the limits in force by the defaults with ``overrides`` applied.

    Unknown names and out-of-range values raise ValueError naming the valid choices.
    """
    global _current
    _current = make(overrides)
    return _current


def make(overrides: Mapping[str, int]) -> Limits:
    """The defaults with ``overrides`` applied, validated (ValueError on a bad name or value)."""
    valid = names()
    for name, value in overrides.items():
        if name not in valid:
            raise ValueError(f"unknown limit {name!r}; limits: {', '.join(valid)}")
        lo, hi = _RANGES.get(name, _DEFAULT_RANGE)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"limit {name} must be an integer from {lo:,} to {hi:,}, got {value!r}")
    return dataclasses.replace(DEFAULT, **overrides)


def reset() -> None:
    """Back to the defaults."""
    global _current
    _current = DEFAULT


@contextlib.contextmanager
def scoped(overrides: Mapping[str, int] | Limits) -> Iterator[Limits]:
    """Apply limits for the duration of a ``with`` block, then restore the previous ones."""
    global _current
    previous = _current
    _current = overrides if isinstance(overrides, Limits) else make(overrides)
    try:
        yield _current
    finally:
        _current = previous


def parse_limit_pairs(pairs: list[str]) -> dict[str, int]:
    """``["nodes=10", "repeat=5"]`` -> dict; ValueError on malformed pairs or unknown names."""
    out: dict[str, int] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip().replace("_", "")
        if not sep or not key or not value.isdigit():
            raise ValueError(f"bad limit {pair!r}: write NAME=INTEGER (limits: {', '.join(names())})")
        out[key] = int(value)
    make(out)  # validates names and ranges
    return out


def environment_pairs() -> list[str]:
    """The ``NAME=VALUE`` items of ``ARCHDSL_LIMITS`` (empty when unset)."""
    raw = os.environ.get("ARCHDSL_LIMITS", "")
    return [p for p in raw.split(",") if p.strip()]


def from_environment() -> None:
    """Apply ``ARCHDSL_LIMITS`` if set (ValueError when it is malformed)."""
    pairs = environment_pairs()
    if pairs:
        configure(parse_limit_pairs(pairs))


def machine_memory_bytes() -> int:
    """Physical memory of this machine (0 when it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def memory_budget() -> int:
    """Bytes of parameters a network may need: ``memory_bytes``, or this machine's RAM for 0
    (0 when neither is known: no check)."""
    return _current.memory_bytes or machine_memory_bytes()


@contextlib.contextmanager
def recursion_headroom() -> Iterator[None]:
    """Let the recursive passes reach the ``nesting`` limit without a RecursionError.

    Raises the interpreter's recursion limit (never lowers it, never beyond a C-stack-safe cap)
    for the duration, and restores it unless someone else changed it meanwhile.
    """
    before = sys.getrecursionlimit()
    wanted = min(_MAX_RECURSION, 1000 + _FRAMES_PER_LEVEL * _current.nesting)
    if wanted <= before:
        yield
        return
    sys.setrecursionlimit(wanted)
    try:
        yield
    finally:
        if sys.getrecursionlimit() == wanted:
            sys.setrecursionlimit(before)
