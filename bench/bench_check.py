"""Benchmark: `check`/`summary` time on the zoo and on generated specs of 1k, 10k and 100k layers.

Prints per-layer time for each generated size and the ratio of the 100k figure to the 1k figure
(target: within 2x, i.e. linear scaling).  Run: ``python bench/bench_check.py [--sizes 1000,10000,100000]``.

``--ratio`` measures start-up instead: the whole-process CPU time (user + sys of the child) of
``python -m archdsl check specs/inception_v3.arch`` against a process that builds the same network
with ``torchvision.models.inception_v3()`` and prints ``torchinfo.summary`` of it, in alternating
runs; the ratio of the medians is the figure (target: >= 20).  The reference runs in another Python
that has torchvision and torchinfo (``--reference-python``, default ``$ARCHDSL_REFERENCE_PYTHON``,
else ``.venv-ref/bin/python``), once with torch's default threads and once single-threaded (idle
worker threads spin, which counts as CPU time).  ``--compare DIR`` adds another checkout's
``archdsl check`` (a "before").  Run: ``python bench/bench_check.py --ratio [--runs 11]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
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


REFERENCE_CODE = ("import torchvision, torchinfo\n"
                  "m = torchvision.models.inception_v3()\n"
                  "torchinfo.summary(m, (1, 3, 299, 299))\n")


def child_cpu(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """User + sys CPU seconds of one child process (all its threads), run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1) or "Traceback" in proc.stderr:  # check exits 1 on errors in the spec
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def startup_ratio(runs: int, reference_python: str, compare: Path | None) -> None:
    """Alternating runs of archdsl check and of the torchvision + torchinfo reference; medians and ratios."""
    # Bytecode is written and used, as in an installed package (a first run of each writes it).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    single = {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    check = ["-m", "archdsl", "check", "specs/inception_v3.arch"]
    cases = {"archdsl check": ([sys.executable, *check], ROOT, env)}
    if compare is not None:
        cases[f"archdsl check ({compare})"] = ([sys.executable, *check], compare, env)
    cases["torchvision + torchinfo"] = ([reference_python, "-c", REFERENCE_CODE], ROOT, env)
    cases["torchvision + torchinfo, 1 thread"] = ([reference_python, "-c", REFERENCE_CODE], ROOT, single)
    for argv, cwd, case_env in cases.values():
        child_cpu(argv, cwd, case_env)  # warm-up: bytecode, file cache
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, (argv, cwd, case_env) in cases.items():
            times[name].append(child_cpu(argv, cwd, case_env))
    print(f"== start-up: whole-process CPU time (user + sys), {runs} alternating runs, {os.cpu_count()} CPUs")
    print(f"  {'process':44s} {'median ms':>10s} {'min ms':>8s} {'max ms':>8s}")
    for name, ts in times.items():
        print(f"  {name:44s} {statistics.median(ts) * 1e3:10.0f} {min(ts) * 1e3:8.0f} {max(ts) * 1e3:8.0f}")
    ours = statistics.median(times["archdsl check"])
    for name in cases:
        if name.startswith("torchvision"):
            print(f"ratio {name} / archdsl check: {statistics.median(times[name]) / ours:.1f}x (target >= 20)")
    if compare is not None:
        before = statistics.median(times[f"archdsl check ({compare})"])
        print(f"archdsl check, {compare} / this checkout: {before / ours:.2f}x")


def main() -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ratio", action="store_true", help="measure the start-up ratio against torchvision + torchinfo")
    ap.add_argument("--runs", type=int, default=11, help="alternating runs of each process for --ratio")
    ap.add_argument("--reference-python", default=os.environ.get("ARCHDSL_REFERENCE_PYTHON",
                                                                 str(ROOT / ".venv-ref" / "bin" / "python")),
                    help="a Python with torchvision and torchinfo, for --ratio")
    ap.add_argument("--compare", type=Path, default=None, metavar="DIR",
                    help="with --ratio: also time `archdsl check` from the checkout in DIR")
    args = ap.parse_args()
    if args.ratio:
        startup_ratio(args.runs, args.reference_python, args.compare)
        return

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
