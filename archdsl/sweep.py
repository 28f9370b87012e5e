"""``archdsl sweep``: analyze one spec at many network-parameter settings and compare the results.

Each *point* is one setting of the swept parameters; it is analyzed exactly as ``archdsl summary
-p ...`` would analyze it (:func:`archdsl.pipeline.analyze`, no design rules), and reported by its
parameters (``Graph.total_params``), eval MACs (``Graph.eval_macs``), activations and depth
(:mod:`archdsl.metrics`).  The points on the Pareto front of (params, MACs) are marked.

Values: ``-p NAME=V1,V2,...`` lists a parameter's values, each an archdsl expression as for
``-p``; only commas outside brackets, parentheses and strings separate values, so
``-p 'strides=[1,2],[2,2]'`` gives two list values.  The points are the cartesian product of
the parameters (the first parameter varies slowest), or with ``zipped`` the i-th values of every
parameter together.  Output order is the point order, whatever ran in parallel.  Nothing here
imports torch.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import Any

from . import limits
from .diagnostics import Diagnostic, DiagnosticError, Loc, SourceCache, format_text
from .expr import Value, evaluate, show

COMMAND_LINE = "<command line>"
#: Without ``-j``, workers start only when the points left would take longer than this in one
#: process (estimated from a warm point): on 2 cores forking them costs about 0.1 s of CPU time, and
#: a 0.3 s rest (MobileNetV2, 40 points) ran slower in two workers as often as faster.
PARALLEL_MIN_SECONDS = 0.5
#: Columns after the parameters, in every format.
METRICS = ("params", "macs", "activations", "depth")
#: Points named in an "affects" note before "and N more".
SHOWN_POINTS = 3


class SweepUsageError(ValueError):
    """A mistake on the command line that is not about a value's syntax (exit status 2)."""


@dataclass(frozen=True)
class Axis:
    """One swept parameter: its name and values (each also as written, for messages)."""

    name: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Point:
    """One setting of every swept parameter (1-based ``index`` in output order)."""

    index: int
    values: tuple[tuple[str, Value], ...]

    def describe(self) -> str:
        """``width_mult=0.5 depth=2``: the point as ``-p`` options would write it."""
        return " ".join(f"{k}={show(v)}" for k, v in self.values) or "(defaults)"


@dataclass(frozen=True)
class Result:
    """What one point's analysis gave: the four figures, or the errors that stopped it."""

    point: Point
    params: Any = None
    macs: Any = None
    activations: Any = None
    depth: Any = None
    errors: tuple[Diagnostic, ...] = ()
    #: Source lines of the files the errors point into, to show them under each diagnostic.
    lines: dict[str, list[str]] = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        """True when the point analyzed without errors."""
        return not self.errors

    def figures(self) -> dict[str, Any]:
        """The four figures by name, in :data:`METRICS` order."""
        return {"params": self.params, "macs": self.macs, "activations": self.activations, "depth": self.depth}


# ---------------------------------------------------------------------------------------- values


def split_values(text: str) -> list[tuple[str, int]]:
    """Split at the commas outside brackets, parentheses and strings: ``(piece, start index)`` pairs."""
    pieces: list[tuple[str, int]] = []
    depth, start, quote, escaped = 0, 0, False, False
    for i, ch in enumerate(text):
        if quote:  # inside a string: only its closing quote (not an escaped one) matters
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quote = False
            continue
        if ch == '"':
            quote = True
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            pieces.append((text[start:i], start))
            start = i + 1
    pieces.append((text[start:], start))
    return pieces


def parse_axis(pair: str) -> Axis:
    """``NAME=V1,V2,...`` -> an :class:`Axis`; a bad pair or value raises a located DiagnosticError."""
    from .frontend.text import parse_text

    key, sep, raw = pair.partition("=")
    name = key.strip()
    if not sep or not name.isidentifier():
        raise DiagnosticError(Diagnostic("E113", f"bad sweep parameter {pair!r}", Loc(COMMAND_LINE, 1, 1),
                                         hint="write -p name=v1,v2,..., e.g. -p width_mult=0.5,0.75,1.0"))
    values = []
    for piece, start in split_values(raw):
        offset = len(key) + 1 + start
        if not piece.strip():
            raise DiagnosticError(Diagnostic("E113", f"empty value in -p {pair}", Loc(COMMAND_LINE, 1, offset + 1),
                                             hint="separate values with single commas: -p name=v1,v2"))
        values.append(evaluate(parse_text(piece, COMMAND_LINE, start="expr_start", col_offset=offset), {}))
    return Axis(name, tuple(values))


def parse_axes(pairs: Sequence[str]) -> list[Axis]:
    """Every ``-p``, in order; a parameter given twice is a :class:`SweepUsageError`."""
    axes: list[Axis] = []
    for pair in pairs:
        axis = parse_axis(pair)
        if any(a.name == axis.name for a in axes):
            raise SweepUsageError(f"parameter {axis.name!r} given twice; list all its values in one -p: "
                                  f"-p {axis.name}=v1,v2,...")
        axes.append(axis)
    return axes


def make_points(axes: Sequence[Axis], zipped: bool = False) -> list[Point]:
    """The cartesian product of the axes (first axis slowest), or with ``zipped`` the i-th values together."""
    names = [a.name for a in axes]
    if zipped:
        lengths = {a.name: len(a.values) for a in axes}
        if len(set(lengths.values())) > 1:
            given = ", ".join(f"{n} has {k}" for n, k in lengths.items())
            raise SweepUsageError(f"--zip needs the same number of values for every parameter: {given}")
        combos: Iterable[tuple] = zip(*(a.values for a in axes))
    else:
        combos = itertools.product(*(a.values for a in axes))
    return [Point(i, tuple(zip(names, combo))) for i, combo in enumerate(combos, start=1)]


# ---------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Task:
    """Everything a worker needs to analyze one point (picklable)."""

    spec: str
    point: Point
    input_shape: Any
    search_paths: tuple[str, ...]
    limits: limits.Limits


def analyze_point(task: Task) -> Result:
    """Analyze one point: its figures, or its errors with the source lines they point into."""
    from . import metrics
    from .budget import is_symbolic, symbolic_figures
    from .pipeline import analyze

    with limits.scoped(task.limits):
        res = analyze(task.spec, dict(task.point.values), task.input_shape, task.search_paths)
    graph = res.graph
    errors = tuple(replace(d, evidence={}) for d in res.diags.sorted() if d.is_error)
    if not errors and graph is None:
        errors = (Diagnostic("E114", "not a network (a library of blocks?)", Loc(task.spec, 1, 1)),)
    if errors:
        files = {d.loc.file for d in errors} | {lb.loc.file for d in errors for lb in d.labels}
        return Result(task.point, errors=errors,
                      lines={f: res.sources._lines[f] for f in sorted(files) if f in res.sources._lines})
    assert graph is not None
    if is_symbolic(graph):
        # a symbolic input (input 3xHxW): the figures are expressions, as summary --format json
        # writes them; the concrete costs were computed at one representative size only
        from .passes.symbolic import expr_source

        sym = symbolic_figures(graph)
        return Result(task.point, *(None if sym[k] is None else expr_source(sym[k])
                                    for k in ("params", "macs", "activations")),
                      metrics.depth(graph))
    return Result(task.point, graph.total_params(), graph.eval_macs(), metrics.activations(graph),
                  metrics.depth(graph))


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass
class Run:
    """How a sweep ran: its results in point order and the worker processes it used (0: none)."""

    results: list[Result]
    workers: int = 0


def run(spec: str, points: Sequence[Point], input_shape: Any = None, search_paths: tuple[str, ...] = (),
        jobs: int = 1, on_done: Callable[[Result], None] | None = None,
        min_parallel_seconds: float | None = None) -> Run:
    """Analyze every point, with up to ``jobs`` worker processes when above 1; results in point order.

    The first points run in this process: the imports and caches the first one warms (about 0.1 s,
    several points' worth) are then inherited by every forked worker instead of being paid again.
    With ``min_parallel_seconds`` the second point's time (a warm one) estimates the rest, and the
    workers start only when the rest would take longer than that in this process.  ``on_done`` is
    called in this process as each point finishes (for progress)."""
    tasks = [Task(str(spec), p, input_shape, tuple(search_paths), limits.current()) for p in points]
    done: dict[int, Result] = {}
    pending = list(tasks)

    def finish(r: Result) -> None:
        done[r.point.index] = r
        if on_done:
            on_done(r)

    serial = 1 if min_parallel_seconds is None else 2
    while pending and (jobs <= 1 or len(done) < serial or len(pending) < 2):
        start = time.perf_counter()
        finish(analyze_point(pending.pop(0)))
        took = time.perf_counter() - start
        if min_parallel_seconds is not None and len(done) == serial and took * len(pending) < min_parallel_seconds:
            jobs = 1  # the rest is quicker here than starting workers
    workers = min(jobs, len(pending)) if pending else 0
    if pending:
        _in_workers(pending, workers, finish)
    return Run([done[p.index] for p in points], workers)


def _in_workers(tasks: Sequence[Task], workers: int, finish: Callable[[Result], None]) -> None:
    """Analyze ``tasks`` in ``workers`` processes, calling ``finish`` with each result as it comes."""
    reported: set[int] = set()
    try:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for fut in as_completed([pool.submit(analyze_point, t) for t in tasks]):
                r = fut.result()
                reported.add(r.point.index)
                finish(r)
    except BrokenProcessPool:  # a worker was killed (the kernel's out-of-memory killer, a signal)
        for t in tasks:
            if t.point.index not in reported:
                finish(_worker_died(t))


def _worker_died(task: Task) -> Result:
    """The result of a point whose worker process died before it reported."""
    return Result(task.point, errors=(Diagnostic(
        "E150", "a worker process died before this point was analyzed (out of memory?)", Loc(task.spec, 1, 1),
        hint="rerun with -j 1 to analyze the points one at a time in this process"),))


def pareto_front(results: Sequence[Result]) -> set[int]:
    """Indices of the points no other point dominates: none has params <= and MACs <= with one strictly less.

    Only points that analyzed and have integer figures take part (a failed point is on no front)."""
    pts = [(r.point.index, r.params, r.macs) for r in results
           if r.ok and isinstance(r.params, int) and isinstance(r.macs, int)]
    front = set()
    for i, p, m in pts:
        if not any(p2 <= p and m2 <= m and (p2 < p or m2 < m) for j, p2, m2 in pts if j != i):
            front.add(i)
    return front


# ---------------------------------------------------------------------------------------- errors


def grouped_errors(results: Sequence[Result]) -> tuple[list[Diagnostic], SourceCache]:
    """Every distinct error once, in the order first met, each with a note naming the points it stops."""
    seen: dict[tuple, list[Point]] = {}
    first: dict[tuple, Diagnostic] = {}
    sources = SourceCache()
    for r in results:
        for f, lines in r.lines.items():
            sources._lines.setdefault(f, lines)
        for d in r.errors:
            key = (d.code, d.message, d.loc, d.path, d.hint)
            first.setdefault(key, d)
            seen.setdefault(key, []).append(r.point)
    total = len(results)
    return [replace(first[k], notes=first[k].notes + (_affects(pts, total),)) for k, pts in seen.items()], sources


def _affects(points: Sequence[Point], total: int) -> str:
    """``in point 2 of 6 (width_mult=0.1)``, ``in all 6 points``, ``in points 2, 3, 5 and 2 more (...)``."""
    if len(points) == total and total > 1:
        return f"in all {total} points"
    shown = points[:SHOWN_POINTS]
    which = ", ".join(str(p.index) for p in shown)
    settings = "; ".join(p.describe() for p in shown)
    more = f" and {len(points) - len(shown)} more" if len(points) > len(shown) else ""
    noun = "point" if len(points) == 1 else "points"
    return f"in {noun} {which}{more} of {total} ({settings})"


def format_errors(results: Sequence[Result]) -> list[str]:
    """The grouped errors in the text form, one string per distinct error."""
    diags, sources = grouped_errors(results)
    return [format_text(d, sources) for d in diags]


# ---------------------------------------------------------------------------------------- tables


def _count(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else str(v)


def column_name(parameter: str) -> str:
    """A parameter's column header: its name, or ``NAME (-p)`` when a figure's column has that name
    (a network parameter ``depth`` beside the ``depth`` figure)."""
    return f"{parameter} (-p)" if parameter in (*METRICS, "pareto", "status") else parameter


def table(axes: Sequence[Axis], results: Sequence[Result], front: set[int], raw: bool = False) -> list[list[str]]:
    """Header plus one row of cells per point: parameters, figures, front mark, status.

    ``raw`` writes plain integers (CSV) instead of ``1,234,567``."""
    head = ["#", *(column_name(a.name) for a in axes), *METRICS, "pareto", "status"]
    rows = [head]
    for r in results:
        figures = [r.params, r.macs, r.activations, r.depth]
        cells = [str(v) if raw else _count(v) for v in figures] if r.ok else [""] * len(figures)
        rows.append([str(r.point.index), *(show(v) for _, v in r.point.values), *cells,
                     "yes" if r.point.index in front else "",
                     "ok" if r.ok else "failed"])
    return rows


def render_text(axes: Sequence[Axis], results: Sequence[Result], front: set[int]) -> str:
    """An aligned table; numbers right-aligned with thousands separators, front points marked ``yes``."""
    rows = table(axes, results, front)
    numeric = {0, *range(len(axes) + 1, len(axes) + 1 + len(METRICS))}
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out) + "\n"


def render_markdown(axes: Sequence[Axis], results: Sequence[Result], front: set[int]) -> str:
    """A Markdown table (``|`` and ``<`` escaped: a string value may hold them)."""
    rows = table(axes, results, front)
    esc = [[c.replace("|", "\\|").replace("<", "\\<") for c in row] for row in rows]
    align = ["---:" if i == 0 or len(axes) < i <= len(axes) + len(METRICS) else "---" for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(esc[0]) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in esc[1:]]
    return "\n".join(lines) + "\n"


def render_csv(axes: Sequence[Axis], results: Sequence[Result], front: set[int]) -> str:
    """CSV: raw integers, ``pareto`` is ``yes`` or empty, ``status`` ``ok`` or ``failed``."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(table(axes, results, front, raw=True))
    return buf.getvalue()


def _json_value(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_json_value(x) for x in v]
    return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)


def sweep_json(spec: str, axes: Sequence[Axis], results: Sequence[Result], front: set[int]) -> dict:
    """The ``--format json`` document: the spec, the parameters, then one object per point."""
    points = []
    for r in results:
        entry: dict[str, Any] = {"index": r.point.index,
                                 "parameters": {k: _json_value(v) for k, v in r.point.values},
                                 "ok": r.ok}
        for name, value in r.figures().items():
            entry[name] = _json_value(value) if r.ok else None
        entry["pareto"] = r.point.index in front
        entry["errors"] = [d.to_json() for d in r.errors]
        points.append(entry)
    return {"spec": spec, "parameters": [a.name for a in axes], "objectives": ["params", "macs"],
            "points": points}


def render_json(spec: str, axes: Sequence[Axis], results: Sequence[Result], front: set[int]) -> str:
    """Deterministic JSON of :func:`sweep_json`."""
    return json.dumps(sweep_json(spec, axes, results, front), indent=2) + "\n"


def render(fmt: str, spec: str, axes: Sequence[Axis], results: Sequence[Result], front: set[int]) -> str:
    """The table in ``fmt``: ``text``, ``csv``, ``json`` or ``md``."""
    if fmt == "json":
        return render_json(spec, axes, results, front)
    writer: Mapping[str, Callable[..., str]] = {"text": render_text, "csv": render_csv, "md": render_markdown}
    return writer[fmt](axes, results, front)
