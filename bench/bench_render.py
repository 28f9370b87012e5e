"""Benchmark: `archdsl render` time for Inception v3 at full depth, and its ratio to `archdsl check`.

Measures, in one run and on the same spec:
  * in-process phases: analyze, view model + DOT, Graphviz layout to SVG (``dot -Tsvg``);
  * whole commands as a user runs them (fresh processes): ``archdsl check SPEC`` and
    ``archdsl render SPEC -o OUT.svg`` / ``OUT.html`` / ``OUT.dot``; best of ``--repeats``.
Prints each figure and render/check ratios.  Run: ``python bench/bench_render.py [--spec PATH] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archdsl.backends import render as R  # noqa: E402
from archdsl.pipeline import analyze  # noqa: E402


def best_of(repeats: int, fn) -> float:
    """Best wall time of ``fn()`` over ``repeats`` calls."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def command(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "archdsl", *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"archdsl {' '.join(args)} failed:\n{proc.stderr}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "specs" / "inception_v3.arch"))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    spec = args.spec
    have_dot = shutil.which("dot") is not None

    res = analyze(spec)
    assert res.ok, [d.message for d in res.diags]
    graph = res.graph
    print(f"spec: {spec}  ({graph.g.number_of_nodes()} IR nodes, {len(graph.scopes)} scopes, full depth)")

    t_analyze = best_of(args.repeats, lambda: analyze(spec))
    model_holder = {}

    def build() -> None:
        model = R.build_model(graph)
        model_holder["dot"] = R.to_dot(model, R.initial_open(model, None))

    t_dot = best_of(args.repeats, build)
    print(f"  analyze (parse, shapes, costs)     {t_analyze * 1000:8.1f} ms")
    print(f"  view model + DOT                   {t_dot * 1000:8.1f} ms")
    if have_dot:
        t_layout = best_of(args.repeats, lambda: R.run_dot(model_holder["dot"], "svg"))
        print(f"  Graphviz layout + SVG (dot -Tsvg)  {t_layout * 1000:8.1f} ms")
    else:
        print("  Graphviz 'dot' not installed: layout not measured (apt-get install graphviz)")

    with tempfile.TemporaryDirectory() as tmp:
        t_check = best_of(args.repeats, lambda: command(["check", spec]))
        print(f"process: archdsl check                {t_check * 1000:8.1f} ms")
        outs = ["dot"] + (["svg", "html"] if have_dot else [])
        for fmt in outs:
            out = str(Path(tmp) / f"out.{fmt}")
            t = best_of(args.repeats, lambda out=out: command(["render", spec, "-o", out]))
            print(f"process: archdsl render -o OUT.{fmt:<5}  {t * 1000:8.1f} ms   ({t / t_check:.2f}x check)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
