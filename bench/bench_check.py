"""Benchmark: `check`/`summary` time on the zoo and on generated specs of 1k, 10k and 100k layers.

Prints per-layer time for each generated size and the ratio of the 100k figure to the 1k figure
(target: within 2x, i.e. linear scaling).  Run: ``python bench/bench_check.py [--sizes 1000,10000,100000]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archdsl import limits, report  # noqa: E402
from archdsl.pipeline import analyze  # noqa: E402


def generated_spec(layers: int) -> str:
    """A flat spec of ``layers`` layers: conv/bn/relu triples with a concat every 30 layers."""
    lines = ["network generated(width = 16)", "input 3x32x32", "stem: conv2d(width, 3, padding = 1)"]
    n = 1
    i = 0
    while n < layers - 3:
        if i % 10 == 9:
            lines.append(f"m{i}: concat {{ a: conv2d(8, 1) b: conv2d(8, 3, padding = 1) }}")
            n += 3
        else:
            lines.append(f"c{i}: conv2d(width, 3, padding = 1, bias = false) -> b{i}: batchnorm -> relu")
            n += 3
        i += 1
    lines.append("global_avgpool -> flatten -> fc: linear(10)")
    return "\n".join(lines) + "\n"


def time_in_process(path: Path, repeats: int) -> tuple[float, int]:
    """Best wall time of analyze + summary JSON, and the node count."""
    best = float("inf")
    nodes = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = analyze(path)
        assert res.ok, [d.message for d in res.diags]
        report.summary_json(res.graph)
        best = min(best, time.perf_counter() - t0)
        nodes = res.graph.g.number_of_nodes()
    return best, nodes


def time_process(args: list[str], repeats: int = 5) -> float:
    """Best wall time of a whole ``python -m archdsl`` process."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "archdsl", *args], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    print("== zoo: whole-process `archdsl check` (best of 5)")
    for spec in sorted((ROOT / "specs").glob("*.arch")):
        print(f"  {spec.name:24s} {time_process(['check', str(spec)]) * 1000:8.1f} ms")

    print("== generated specs: in-process analyze + summary (best of repeats)")
    per_layer = {}
    # the generated specs are far beyond the default size limits, which guard against hostile input
    with tempfile.TemporaryDirectory() as tmp, limits.scoped({"file_bytes": 1 << 30, "nodes": 10_000_000}):
        for size in (int(s) for s in args.sizes.split(",")):
            path = Path(tmp) / f"gen{size}.arch"
            path.write_text(generated_spec(size))
            analyze(path)  # warm caches (grammar)
            t, nodes = time_in_process(path, args.repeats if size <= 10000 else 1)
            per_layer[size] = t / nodes
            print(f"  {size:>7,} layers ({nodes:>7,} nodes): {t:8.3f} s  {per_layer[size] * 1e6:7.2f} us/node")
    sizes = sorted(per_layer)
    if len(sizes) > 1:
        ratio = per_layer[sizes[-1]] / per_layer[sizes[0]]
        print(f"per-node time ratio {sizes[-1]:,} vs {sizes[0]:,}: {ratio:.2f}x (target <= 2.0)")


if __name__ == "__main__":
    main()
