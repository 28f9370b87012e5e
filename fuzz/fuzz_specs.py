"""Coverage-guided fuzzing of every front-to-back path with atheris.

Each input is a spec (text language or YAML, chosen by its first byte); it goes through
``analyze`` (parse, elaborate, shapes, costs, rules), the printers and, when it is clean, the code
generator.  Any Python exception that escapes is a finding: it is recorded under
``fuzz/findings/`` with the input, and fuzzing continues.  At exit the harness prints (and
writes to ``--stats``) the executions and findings.

Run for N minutes::

    pip install atheris
    python fuzz/fuzz_specs.py --minutes 10 fuzz/corpus

The corpus directory is seeded from ``specs/`` automatically when empty.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import atheris  # noqa: E402

with atheris.instrument_imports():
    import archdsl.frontend.printer as printer  # noqa: E402
    from archdsl.frontend.loader import decode_spec_bytes, parse_source  # noqa: E402
    from archdsl.pipeline import analyze  # noqa: E402

STATS = {"executions": 0, "findings": 0, "clean_specs": 0, "started": time.time()}
FINDINGS = ROOT / "fuzz" / "findings"
WORK = Path(tempfile.mkdtemp(prefix="archdsl-fuzz-"))
SEEN: set[str] = set()
OPTIONS = {"deadline": float("inf"), "stats": None}


def _record(data: bytes, exc: BaseException) -> None:
    sig = f"{type(exc).__name__}:{traceback.extract_tb(exc.__traceback__)[-1][:3] if exc.__traceback__ else ''}"
    if sig in SEEN:
        return
    SEEN.add(sig)
    STATS["findings"] += 1
    FINDINGS.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(data).hexdigest()[:12]
    (FINDINGS / f"{digest}.input").write_bytes(data)
    (FINDINGS / f"{digest}.txt").write_text("".join(traceback.format_exception(exc)))


def _codegen(path: Path) -> None:
    try:
        from archdsl.backends.codegen import compile_source  # type: ignore[attr-defined]
    except ImportError:
        return
    compile_source(path)


def test_one_input(data: bytes) -> None:
    """The fuzz target: one spec through every stage; unexpected exceptions are findings."""
    STATS["executions"] += 1
    if time.time() > OPTIONS["deadline"]:
        # libFuzzer leaves with _exit, skipping atexit: report here, once the budget is spent.
        _report(OPTIONS["stats"])
        os._exit(0)
    yaml = data[:1] in (b"-", b"{", b"%") or data.startswith(b"network:")
    path = WORK / ("spec.yaml" if yaml else "spec.arch")
    path.write_bytes(data)
    try:
        res = analyze(path)
        if res.spec is not None:
            text = printer.to_text(res.spec)
            printer.to_yaml(res.spec)
            reparsed = parse_source(text, "<printed>")
            if reparsed != res.spec:
                raise AssertionError("printed spec does not re-parse to the same AST")
        if res.ok and res.graph is not None:
            STATS["clean_specs"] += 1
            _codegen(path)
    except Exception as exc:  # noqa: BLE001 - every escape is a finding
        _record(data, exc)
    try:
        decode_spec_bytes(data, "<bytes>")
    except Exception as exc:  # noqa: BLE001
        if type(exc).__name__ != "DiagnosticError":
            _record(data, exc)


def _report(stats_path: str | None) -> None:
    STATS["seconds"] = round(time.time() - STATS["started"], 1)
    STATS["findings_dir"] = str(FINDINGS)
    line = json.dumps(STATS)
    print(f"\narchdsl fuzz: {line}", file=sys.stderr)
    if stats_path:
        Path(stats_path).write_text(line + "\n")


def main() -> None:
    """Parse our options, seed the corpus, hand the rest to libFuzzer."""
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--stats", default=None)
    ours, rest = ap.parse_known_args()
    corpus = next((a for a in rest if not a.startswith("-")), None)
    if corpus:
        cdir = Path(corpus)
        cdir.mkdir(parents=True, exist_ok=True)
        if not any(cdir.iterdir()):
            for spec in sorted((ROOT / "specs").rglob("*")):
                if spec.is_file():
                    (cdir / spec.name).write_bytes(spec.read_bytes())
    OPTIONS["deadline"] = time.time() + ours.minutes * 60
    OPTIONS["stats"] = ours.stats
    args = [sys.argv[0], *rest, f"-max_total_time={int(ours.minutes * 60) + 60}", "-timeout=20",
            f"-dict={ROOT / 'fuzz' / 'archdsl.dict'}", "-rss_limit_mb=4096"]
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
