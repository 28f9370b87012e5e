"""Benchmark: ``archdsl sweep`` in one process against worker processes (``-j``).

Times the sweep itself (``archdsl.sweep.run`` in this process, warm) and whole commands
(``python -m archdsl sweep ... -q``, start-up included) in alternating runs at ``-j 1`` and ``-j N``,
and reports the medians, the speed-ups and the machine's load average while it ran (other work on
the machine takes cores from the workers).  The workloads: MobileNetV2 over 10
width multipliers x 4 class counts (40 small points), and DenseNet-201 over 16 and over 64 class
counts (points of a 1,000-node network).

Run: ``python bench/bench_sweep.py [--runs 5] [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKLOADS = {
    "mobilenet_v2 40 points": ["specs/mobilenet_v2.arch", "-p", "width_mult=0.25,0.35,0.5,0.6,0.75,0.9,1.0,1.1,1.3,1.4",
                               "-p", "num_classes=10,100,1000,21843"],
    "densenet201 16 points": ["specs/densenet201.arch", "-p",
                              "num_classes=" + ",".join(str(10 * i) for i in range(1, 17))],
    "densenet201 64 points": ["specs/densenet201.arch", "-p",
                              "num_classes=" + ",".join(str(10 * i) for i in range(1, 65))],
}


def timed_run(argv: list[str], jobs: int) -> float:
    """Wall-clock seconds of :func:`archdsl.sweep.run` over the points ``argv`` names, in this process."""
    sys.path.insert(0, str(ROOT))
    from archdsl import sweep

    pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "-p"]
    points = sweep.make_points(sweep.parse_axes(pairs))
    start = time.perf_counter()
    results = sweep.run(str(ROOT / argv[0]), points, jobs=jobs).results
    took = time.perf_counter() - start
    assert all(r.ok for r in results)
    return took


def timed(argv: list[str]) -> float:
    """Wall-clock seconds of one ``archdsl sweep`` process (its output checked, then dropped)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "archdsl", "sweep", *argv, "-q"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed: {proc.stderr}")
    return took


def main() -> None:
    """Print one line per workload: median seconds serial and parallel, speed-up, load average."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    print(f"cpus: {len(os.sched_getaffinity(0))}, jobs: {args.jobs}, runs: {args.runs}")
    for name, argv in WORKLOADS.items():
        timed_run(argv, 1)  # warm this process's imports and caches once
        load = os.getloadavg()[0]
        line = []
        for what, measure in (("sweep.run", timed_run), ("command", lambda a, j: timed([*a, "-j", str(j)]))):
            serial: list[float] = []
            parallel: list[float] = []
            for _ in range(args.runs):  # alternating, so that a change in the machine's load hits both
                serial.append(measure(argv, 1))
                parallel.append(measure(argv, args.jobs))
            s, p = statistics.median(serial), statistics.median(parallel)
            line.append(f"{what}: -j 1 {s:.2f} s, -j {args.jobs} {p:.2f} s ({s / p:.2f}x)")
        print(f"{name}: " + "; ".join(line) + f" (load average {load:.2f} before, {os.getloadavg()[0]:.2f} after)")

if __name__ == "__main__":
    main()
