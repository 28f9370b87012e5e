"""The labelled design-rule corpus (tests/rules/, format in tests/rules/README.md).

* every bad design gets exactly the findings its header names (recall) and no other warning
  (precision); every good design — a paper figure or a zoo block — draws no warning at all;
* ``test_corpus_precision_recall`` scores every rule over the whole corpus and prints the table
  (``pytest tests/test_rules_corpus.py -s -k precision``);
* fix closure: applying the fix a bad case prescribes (a text edit with the finding's own numbers,
  or ``archdsl transform``) removes its warnings without raising any other.
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from rules_corpus_support import (
    CORPUS,
    Case,
    CorpusFormatError,
    Evidence,
    Expect,
    FixError,
    Match,
    analyse,
    analysis_errors,
    apply_fixes,
    corpus_files,
    fill,
    match,
    parse_case,
    score,
    score_table,
    show,
    show_expects,
)

from archdsl.diagnostics import INFO, WARNING, Diagnostic, Loc
from archdsl.rules import all_rules

BAD = corpus_files("bad", CORPUS)
GOOD = corpus_files("good", CORPUS)
MIN_BAD, MIN_GOOD = 30, 15


def _id(p: Path) -> str:
    return f"{p.parent.name}/{p.name}"


@cache
def _case(path: Path) -> Case:
    try:
        return parse_case(path)
    except CorpusFormatError as exc:
        pytest.fail(str(exc), pytrace=False)


@cache
def _findings(path: Path) -> tuple[Diagnostic, ...]:
    """The case's findings; a spec that does not analyse is a failure of the corpus, said plainly."""
    res, found = analyse(path)
    errs = analysis_errors(res)
    if errs:
        pytest.fail(f"{_id(path)} does not analyse, so the rules cannot judge it:\n  " + "\n  ".join(errs),
                    pytrace=False)
    return tuple(found)


def _match(case: Case) -> Match:
    return match(case.expects, list(_findings(case.path)))


def _report(case: Case, m: Match) -> str:
    found = _findings(case.path)
    parts = [f"{case.name}:"]
    if m.missing:
        parts.append("expected but not found (false negatives):\n" + show_expects(m.missing))
    if m.unexpected:
        parts.append("warnings not expected (false positives):\n" + show(m.unexpected))
    unknown = sorted({e.code for e in case.expects} - {r.code for r in all_rules()})
    if unknown:
        parts.append(f"note: {', '.join(unknown)} is not a registered rule")
    parts.append("expected:\n" + show_expects(case.expects))
    parts.append("found:\n" + show(found))
    return "\n".join(parts)


@pytest.mark.parametrize("path", BAD, ids=_id)
def test_bad_design_gets_its_findings(path: Path) -> None:
    case = _case(path)
    m = _match(case)
    if not m.ok:
        pytest.fail(_report(case, m), pytrace=False)


@pytest.mark.parametrize("path", GOOD, ids=_id)
def test_good_design_draws_no_warning(path: Path) -> None:
    case = _case(path)
    warnings = [d for d in _findings(path) if d.severity == WARNING]
    if warnings:
        pytest.fail(f"{case.name} ({case.source}) must stay silent; warnings:\n{show(warnings)}\n"
                    f"all findings:\n{show(_findings(path))}", pytrace=False)


def test_corpus_precision_recall() -> None:
    """Per rule over the whole corpus: recall 1 and no false positive; prints the table (see it with -s)."""
    results = []
    for p in BAD + GOOD:
        case = _case(p)
        results.append((case, _match(case) if case.verdict == "bad" else None, list(_findings(p))))
    scores = score(results, [r.code for r in all_rules() if r.severity == WARNING])
    table = score_table(scores, len(BAD), len(GOOD))
    print("\n" + table)
    bad_rules = {c: s for c, s in scores.items() if s.fp or s.fn}
    details = [_report(case, m) for case, m, _ in results if m is not None and not m.ok]
    details += [f"{case.name}: warnings on a good design:\n{show(d for d in found if d.severity == WARNING)}"
                for case, m, found in results if m is None and any(d.severity == WARNING for d in found)]
    problems = []
    if len(BAD) < MIN_BAD or len(GOOD) < MIN_GOOD:
        problems.append(f"the corpus needs >= {MIN_BAD} bad and >= {MIN_GOOD} good designs; "
                        f"it has {len(BAD)} and {len(GOOD)}")
    if bad_rules:
        problems.append(f"rules with false positives or negatives: {', '.join(bad_rules)}\n{table}\n"
                        + "\n\n".join(details))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.mark.parametrize("path", BAD, ids=_id)
def test_fix_closure(path: Path, tmp_path: Path) -> None:
    """The prescribed fix removes the case's warnings (except ``# remains:``) and raises no new one."""
    case = _case(path)
    if not case.fixes:
        pytest.fail(f"{case.name} has no '# fix:' line; write the fix its finding prescribes, or "
                    "'# fix: none (reason)' when no mechanical fix exists", pytrace=False)
    reason = case.no_fix_reason
    if reason is not None:
        pytest.skip(f"no mechanical fix: {reason}")
    m = _match(case)
    first = next((d for e, d in m.matched if e == case.expects[0]), None)
    if first is None:
        pytest.fail(f"{case.name}: the first expected finding ({case.expects[0].where()}) is not produced, so "
                    f"its fix has no evidence to use\n" + _report(case, m), pytrace=False)
    before = Counter(d.code for d in _findings(path) if d.severity == WARNING)
    try:
        text = apply_fixes(case, path.read_text(encoding="utf-8"), first, tmp_path)
    except FixError as exc:
        pytest.fail(f"{case.name}: cannot apply the fix: {exc}", pytrace=False)
    fixed = tmp_path / f"fixed{path.suffix}"
    fixed.write_text(text, encoding="utf-8")
    res, after = analyse(fixed, (str(path.parent),))
    errs = analysis_errors(res)
    if errs:
        pytest.fail(f"{case.name}: the fixed spec does not analyse:\n  " + "\n  ".join(errs)
                    + f"\n--- fixed spec:\n{text}", pytrace=False)
    warned = Counter(d.code for d in after if d.severity == WARNING)
    survived = {c: n for c, n in warned.items() if c in before and n > case.remains.get(c, 0)}
    new = {c: n for c, n in warned.items() if c not in before and n > case.remains.get(c, 0)}
    stale = {c: sum(d.code == c for d in after) for c, n in case.remains.items()
             if sum(d.code == c for d in after) != n}
    if survived or new or stale:
        pytest.fail(
            f"{case.name}: fix closure fails\n"
            + (f"warnings that survive the fix: {survived}\n" if survived else "")
            + (f"new warnings after the fix: {new}\n" if new else "")
            + (f"'# remains:' says {dict(case.remains)}, the fixed spec has {stale}\n" if stale else "")
            + f"before:\n{show(_findings(path))}\nafter:\n{show(after)}\n--- fixed spec:\n{text}", pytrace=False)


def test_corpus_layout() -> None:
    """Only spec files and README.md in the corpus folders; every header parses."""
    stray = [p for d in ("bad", "good") if (CORPUS / d).is_dir() for p in (CORPUS / d).iterdir()
             if p.is_file() and p not in BAD + GOOD and p.name != ".gitkeep"]
    assert not stray, f"files the corpus would ignore (use .arch or .yaml): {stray}"
    problems = []
    for p in BAD + GOOD:
        try:
            parse_case(p)
        except CorpusFormatError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------- the harness itself
# Synthetic cases and findings, independent of what the rules currently report.

HEADER = """# expect: R401 @ 7:7
# expect: R301 x2
# expect: R302 @ 9 (the medium-grid one)
# fix: replace <<conv2d(16, 3, padding = 1)>> with <<conv2d(16, 3, padding = 1, bias = false)>>
# fix: replace <<relu>> with <<{layers} {wasted_params:>6} {kernel[0]}>>
# remains: R302
# why: the BN paper, section 3.2
"""


def _write(tmp_path: Path, verdict: str, name: str, text: str) -> Path:
    (tmp_path / verdict).mkdir(exist_ok=True)
    p = tmp_path / verdict / name
    p.write_text(text, encoding="utf-8")
    return p


def test_harness_parses_headers(tmp_path: Path) -> None:
    p = _write(tmp_path, "bad", "b.arch", HEADER + "\nnetwork b\ninput 3x8x8\n# Figure 5: a plain comment\n")
    c = parse_case(p)
    assert [(e.code, e.line, e.col, e.count) for e in c.expects] == [
        ("R401", 7, 7, 1), ("R301", None, None, 2), ("R302", 9, None, 1)]
    assert [f.kind for f in c.fixes] == ["replace", "replace"] and c.fixes[0].new.endswith("bias = false)")
    assert c.remains == Counter({"R302": 1}) and c.why == "the BN paper, section 3.2" and c.header_lines == 8
    assert parse_case(_write(tmp_path, "bad", "t.yaml", "# expect: R301\n# fix: transform --factorize=5x5\n"
                                                          "network: t\n")).fixes[0].factorize == "5x5"
    assert parse_case(_write(tmp_path, "bad", "n.arch", "# expect: R404\n# fix: none (a redesign)\nnetwork n\n")
                      ).no_fix_reason == "a redesign"
    assert parse_case(_write(tmp_path, "good", "g.arch", "# source: Rethinking, Figure 5\nnetwork g\n")).source
    for verdict, text, complaint in [
            ("bad", "# expects: R301\nnetwork x\n", "unknown directive"),
            ("bad", "# why: no finding named\nnetwork x\n", "at least one"),
            ("bad", "# expect: R301 at 3\nnetwork x\n", "is not 'CODE'"),
            ("bad", "# expect: R301\n# fix: swap <<a>> for <<b>>\nnetwork x\n", "is not 'replace"),
            ("bad", "# expect: R301\nnetwork x\n# fix: transform --factorize=5x5\n", "below the header"),
            ("good", "# source: x\n# expect: R301\nnetwork x\n", "stay silent"),
            ("good", "# Figure 5: no source line\nnetwork x\n", "# source:")]:
        with pytest.raises(CorpusFormatError, match=complaint):
            parse_case(_write(tmp_path, verdict, "x.arch", text))


def test_harness_matches_and_scores(tmp_path: Path) -> None:
    def d(code: str, line: int, col: int, sev: str = WARNING) -> Diagnostic:
        return Diagnostic(code, "m", Loc("f.arch", line, col), sev)

    expects = [Expect("R301", 5, 3, 2, 1), Expect("R201", header_line=2), Expect("R302", 9, header_line=3)]
    found = [d("R301", 5, 3), d("R201", 5, 3), d("R301", 5, 3), d("R301", 6, 1), d("R602", 1, 1, INFO)]
    m = match(expects, found)
    assert [(e.code, f.loc.line) for e, f in m.matched] == [("R301", 5), ("R301", 5), ("R201", 5)]
    assert [e.code for e in m.missing] == ["R302"]
    assert [(f.code, f.loc.line) for f in m.unexpected] == [("R301", 6)]      # infos are never unexpected
    bad = _write(tmp_path, "bad", "b.arch", "# expect: R301\nnetwork b\n")
    good = _write(tmp_path, "good", "g.arch", "# source: s\nnetwork g\n")
    s = score([(parse_case(bad), m, found), (parse_case(good), None, [d("R404", 1, 1), d("R602", 1, 1, INFO)])],
              ["R301", "R101"])
    assert {c: (v.tp, v.fp, v.fn) for c, v in s.items()} == {
        "R101": (0, 0, 0), "R201": (1, 0, 0), "R301": (2, 1, 0), "R302": (0, 0, 1), "R404": (0, 1, 0)}
    assert s["R301"].precision == 2 / 3 and s["R302"].recall == 0 and s["R101"].recall is None
    assert "design-rule corpus: 1 bad, 1 good designs" in score_table(s, 1, 1)


def test_harness_applies_text_fixes(tmp_path: Path) -> None:
    ev = Evidence("R401", {"layers": ["a.conv", "b.conv"], "wasted_params": 16, "kernel": [5, 5], "flag": True})
    assert fill("{wasted_params} {kernel} {kernel[0]} {layers} {flag} { conv2d(8, 1) } {{relu}}", ev) == \
        '16 [5, 5] 5 ["a.conv", "b.conv"] true { conv2d(8, 1) } {relu}'
    with pytest.raises(FixError, match=r"\{reduce_to\}.*R401.*it has: flag, kernel, layers, wasted_params"):
        fill("conv2d({reduce_to}, 1)", ev)
    body = "network b\ninput 3x8x8\nconv2d(16, 3, padding = 1) -> batchnorm -> relu\nglobal_avgpool\n"
    p = _write(tmp_path, "bad", "b.arch", HEADER + body)
    first = Diagnostic("R401", "m", Loc(str(p), 7, 7), WARNING, evidence={"layers": ["0"], "wasted_params": 16,
                                                                          "kernel": [3, 3]})
    fixed = apply_fixes(parse_case(p), p.read_text(encoding="utf-8"), first, tmp_path)
    assert fixed == HEADER + body.replace("conv2d(16, 3, padding = 1)", "conv2d(16, 3, padding = 1, bias = false)"
                                          ).replace("relu", '["0"]     16 3')
    with pytest.raises(FixError, match="occurs 0 times"):
        apply_fixes(parse_case(p), HEADER + "network b\n", first, tmp_path)


def test_harness_applies_the_transform(tmp_path: Path) -> None:
    body = ("network t\ninput 16x32x32\nconv2d(16, 1) -> relu\n"
            "c5: conv2d(32, 5, padding = 2) -> relu\nglobal_avgpool -> flatten -> linear(10)\n")
    p = _write(tmp_path, "bad", "t.arch", "# expect: R301\n# fix: transform --factorize=5x5\n" + body)
    text = apply_fixes(parse_case(p), p.read_text(encoding="utf-8"), None, tmp_path)
    out = tmp_path / "out.arch"
    out.write_text(text, encoding="utf-8")
    res, _ = analyse(out)
    assert not analysis_errors(res)
    kernels = sorted(tuple(res.graph.node(n)["args"]["kernel"]) for n in res.graph.g
                     if res.graph.node(n)["op"] == "conv2d")
    assert kernels == [(1, 1), (3, 3), (3, 3)]
