"""Benchmark: what the design rules add to `check` on the zoo (target: at most +30%).

Measured side by side, in one process and interleaved so machine noise hits both equally:
``analyze(spec)`` (parse, elaborate, shapes, costs) against ``analyze(spec, rules=True)`` (the same
plus every rule), best of N for each spec.  The ratio (with rules / without) is printed per spec and
for the whole zoo.  A second table times whole ``archdsl check`` processes with the rules switched
off (``--ignore R``) and on, which is what a user waits for.

Run: ``python bench/bench_rules.py [--repeats 15] [--process-repeats 5]``.  Tests never assert on
these numbers.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archdsl.pipeline import analyze  # noqa: E402
from archdsl.rules import RuleRequest  # noqa: E402

REQUEST = RuleRequest()


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def in_process(specs: list[Path], repeats: int) -> tuple[float, float]:
    print(f"{'spec':<22}{'check':>10}{'+ rules':>10}{'ratio':>8}  findings")
    tot0 = tot1 = 0.0
    for spec in specs:
        analyze(spec, rules=REQUEST)  # warm: grammar, imports, pyproject cache
        best0 = best1 = float("inf")
        for _ in range(repeats):
            best0 = min(best0, _time(lambda s=spec: analyze(s)))
            best1 = min(best1, _time(lambda s=spec: analyze(s, rules=REQUEST)))
        n = sum(1 for d in analyze(spec, rules=REQUEST).diags if d.code.startswith("R"))
        tot0 += best0
        tot1 += best1
        print(f"{spec.stem:<22}{best0 * 1e3:>8.1f}ms{best1 * 1e3:>8.1f}ms{best1 / best0:>8.2f}  {n}")
    print(f"{'zoo (sum)':<22}{tot0 * 1e3:>8.1f}ms{tot1 * 1e3:>8.1f}ms{tot1 / tot0:>8.2f}")
    return tot0, tot1


def process(specs: list[Path], repeats: int) -> tuple[float, float]:
    def run(extra: list[str]) -> float:
        return _time(lambda: subprocess.run([sys.executable, "-m", "archdsl", "check", *map(str, specs), *extra],
                                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    best0 = best1 = float("inf")
    for _ in range(repeats):
        best0 = min(best0, run(["--ignore", "R"]))
        best1 = min(best1, run([]))
    print(f"\n`archdsl check` on all {len(specs)} zoo specs, one process: {best0 * 1e3:.0f} ms without rules, "
          f"{best1 * 1e3:.0f} ms with (ratio {best1 / best0:.2f})")
    return best0, best1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--process-repeats", type=int, default=5)
    args = ap.parse_args()
    specs = sorted((ROOT / "specs").glob("*.arch"))
    t0, t1 = in_process(specs, args.repeats)
    if args.process_repeats:
        process(specs, args.process_repeats)
    ratio = t1 / t0
    verdict = "within" if ratio <= 1.30 else "OVER"
    print(f"\nrules add {100 * (ratio - 1):.1f}% to check on the zoo (in-process, best of {args.repeats}): "
          f"{verdict} the 30% target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
