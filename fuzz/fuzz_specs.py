"""Coverage-guided fuzzing of every front-to-back path with atheris.

Each input is a spec (text language or YAML, chosen by its first byte); it goes through
``analyze`` with the design rules (parse, elaborate, shapes, costs, rules), the diagnostic
formatter, both printers (each printed form must re-parse to the same AST) and, when it is clean,
the summary reports, the DOT renderer (source generation only; no ``dot`` subprocess) and the
PyTorch code generator (whose output must be valid Python).  Any Python exception that escapes is
a finding: it is recorded under ``fuzz/findings/`` with the input, and fuzzing continues.  At exit
the harness prints (and writes to ``--stats``) the executions and findings.

Run for N minutes::

    pip install atheris
    python fuzz/fuzz_specs.py --minutes 10 --stats stats.json fuzz/corpus

The corpus directory is seeded from ``specs/`` and ``fuzz/seeds/`` (small specs using every
language feature, fast to execute) automatically when empty; the specs' libraries
(``specs/lib``) are copied next to the fuzzed file so that ``use "lib/..."`` resolves.  Re-run
one input (a finding, say) without libFuzzer::

    python fuzz/fuzz_specs.py --replay fuzz/findings/XXXX.input
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import atheris  # noqa: E402

# Coverage feedback comes from archdsl's own modules (instrumenting networkx, lark, ... would only
# slow every execution); the lazily imported ones are imported here so that they are instrumented.
with atheris.instrument_imports(include=["archdsl"]):
    import archdsl.frontend.printer as printer  # noqa: E402
    import archdsl.frontend.text  # noqa: E402, F401
    import archdsl.frontend.yaml_frontend  # noqa: E402, F401
    import archdsl.rules  # noqa: E402, F401
    from archdsl import report  # noqa: E402
    from archdsl.backends import render  # noqa: E402
    from archdsl.backends.codegen import CodegenError, generate  # noqa: E402
    from archdsl.diagnostics import format_json, format_text  # noqa: E402
    from archdsl.frontend.loader import decode_spec_bytes, parse_source  # noqa: E402
    from archdsl.pipeline import analyze  # noqa: E402

STATS = {"executions": 0, "findings": 0, "clean_specs": 0, "started": time.time()}
FINDINGS = ROOT / "fuzz" / "findings"
WORK = Path(tempfile.mkdtemp(prefix="archdsl-fuzz-"))
shutil.copytree(ROOT / "specs" / "lib", WORK / "lib")
SEEN: set[str] = set()
#: Diagnostics that report archdsl's own bugs (a design rule that raised; generated code that does
#: not parse or calls a forbidden builtin): the fuzzer counts them as findings.
INTERNAL_ERRORS = frozenset({"R000", "E399"})
OPTIONS = {"deadline": float("inf"), "stats": None, "replay": False, "corpus": None}


def _record(data: bytes, exc: BaseException) -> None:
    sig = f"{type(exc).__name__}:{traceback.extract_tb(exc.__traceback__)[-1][:3] if exc.__traceback__ else ''}"
    if isinstance(exc, AssertionError):  # our own checks raise from one place: tell them apart by message
        sig += str(exc)[:40]
    if sig in SEEN:
        return
    SEEN.add(sig)
    STATS["findings"] += 1
    if OPTIONS["replay"]:
        traceback.print_exception(exc)
        return
    FINDINGS.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(data).hexdigest()[:12]
    (FINDINGS / f"{digest}.input").write_bytes(data)
    (FINDINGS / f"{digest}.txt").write_text("".join(traceback.format_exception(exc)))


def _backends(res) -> None:
    """The back half on a clean analysis: reports, DOT source, generated PyTorch source."""
    graph = res.graph
    report.render_text(graph)
    report.render_json(graph, depth=1)
    model = render.build_model(graph, res.diags, frozenset(render.SHOW_KEYS), res.file)
    render.model_json(model)
    for depth in (None, 1):
        render.to_dot(model, render.initial_open(model, depth), "LR" if depth else "TB")
    try:
        generate(graph, source_name=res.file)  # parses its own output with ast.parse
        generate(graph, source_name=res.file, fold_bn=True)
    except CodegenError as exc:  # located codegen diagnostics are an answer, not a crash ...
        for d in exc.diagnostics:
            format_text(d, res.sources)
        internal = [d for d in exc.diagnostics if d.code in INTERNAL_ERRORS]
        if internal:  # ... unless the generator caught its own bug
            raise AssertionError(f"{internal[0].code}: {internal[0].message}") from None


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
        res = analyze(path, rules=True)
        diags = res.diags.sorted()
        internal = [d for d in diags if d.code in INTERNAL_ERRORS]
        if internal:  # a crash that archdsl caught and reported (a rule that raised, say) is still a crash
            raise AssertionError(f"{internal[0].code}: {internal[0].message}")
        for d in diags:
            format_text(d, res.sources)
        format_json(diags)
        if res.spec is not None:
            for printed, as_yaml in ((printer.to_text(res.spec), False), (printer.to_yaml(res.spec), True)):
                if parse_source(printed, "<printed>", yaml=as_yaml) != res.spec:
                    kind = "YAML" if as_yaml else "text"
                    raise AssertionError(f"printed {kind} spec does not re-parse to the same AST")
        if res.ok and res.graph is not None and res.graph.input_shape is not None:
            STATS["clean_specs"] += 1
            _backends(res)
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
    if OPTIONS["corpus"]:
        STATS["corpus_files"] = sum(1 for f in Path(OPTIONS["corpus"]).iterdir() if f.is_file())
    line = json.dumps(STATS)
    print(f"\narchdsl fuzz: {line}", file=sys.stderr)
    if stats_path:
        Path(stats_path).write_text(line + "\n")


def _replay(inputs: list[str]) -> None:
    """Run saved inputs through the target once each, printing what escapes (exit 1 if anything)."""
    bad = 0
    OPTIONS["replay"] = True
    for name in inputs:
        before = STATS["findings"]
        SEEN.clear()
        test_one_input(Path(name).read_bytes())
        status = "FINDING" if STATS["findings"] > before else "ok"
        bad += status != "ok"
        print(f"{status}: {name}")
    sys.exit(1 if bad else 0)


def main() -> None:
    """Parse our options, seed the corpus, hand the rest to libFuzzer."""
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--stats", default=None)
    ap.add_argument("--replay", nargs="+", default=None, metavar="INPUT")
    ours, rest = ap.parse_known_args()
    if ours.replay:
        _replay(ours.replay)
        return
    corpus = next((a for a in rest if not a.startswith("-")), None)
    if corpus:
        cdir = Path(corpus)
        cdir.mkdir(parents=True, exist_ok=True)
        if not any(cdir.iterdir()):
            for seed_dir in (ROOT / "specs", ROOT / "fuzz" / "seeds"):
                for spec in sorted(seed_dir.rglob("*")):
                    if spec.is_file() and spec.suffix in (".arch", ".yaml"):
                        (cdir / spec.name).write_bytes(spec.read_bytes())
    OPTIONS["deadline"] = time.time() + ours.minutes * 60
    OPTIONS["stats"] = ours.stats
    OPTIONS["corpus"] = corpus
    FINDINGS.mkdir(parents=True, exist_ok=True)
    # -timeout: a clean zoo spec (rules, renderer, code generator twice) takes seconds under
    # instrumentation on a busy machine; only a real hang should stop the run.  libFuzzer's own
    # artifacts (timeouts, slow units, out-of-memory) go with the findings, not the working directory.
    args = [sys.argv[0], *rest, f"-max_total_time={int(ours.minutes * 60) + 60}", "-timeout=120",
            f"-dict={ROOT / 'fuzz' / 'archdsl.dict'}", "-rss_limit_mb=4096", f"-artifact_prefix={FINDINGS}/"]
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
