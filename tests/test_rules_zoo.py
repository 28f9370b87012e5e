"""The rules over the whole zoo: no crash, no error, and the findings kept as golden files.

``tests/golden/rules/<spec>.txt`` holds every finding of a zoo spec (refresh with
``ARCHDSL_UPDATE_GOLDEN=1 pytest tests/test_rules_zoo.py``); ``docs/rules.md`` explains them.

``EXPECTED`` is the allow-list of warnings: ``archdsl check --strict`` must pass on every zoo spec
(``specs/*.arch`` and ``specs/*.yaml``) except those, which must draw exactly the listed warnings.
The table of findings on the zoo in ``docs/rules.md`` (between the ``zoo-findings`` markers) is
generated here; ``ARCHDSL_UPDATE_GOLDEN=1 pytest tests/test_rules_zoo.py -k docs_table`` rewrites it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from cli_support import run
from golden import assert_golden, updating

from archdsl.diagnostics import WARNING, Diagnostic, format_text
from archdsl.pipeline import analyze
from archdsl.rules import RuleRequest, lint

ROOT = Path(__file__).resolve().parents[1]
ZOO = sorted(p.name for p in (ROOT / "specs").glob("*.arch"))
ZOO_ALL = sorted(p.name for p in (ROOT / "specs").iterdir() if p.suffix in (".arch", ".yaml"))
DOCS = ROOT / "docs" / "rules.md"
BEGIN, END = "<!-- zoo-findings:begin -->", "<!-- zoo-findings:end -->"

#: The warnings the zoo is expected to draw (spec file -> {code: count}); every other spec must pass
#: ``archdsl check --strict``.  Each entry is a finding docs/rules.md explains; a rule change that
#: loses one of them, or adds any other warning, fails ``test_zoo_strict_allow_list``.
EXPECTED: dict[str, dict[str, int]] = {
    # Caffe port: all 69 convs have a bias and a BN right after it (10,016 wasted parameters)
    "bn_inception.arch": {"R401": 69},
    # the paper's GoogLeNet has real 5x5 branches: stacked 3x3 (R301) on the 28x28 and 7x7 grids
    # (3a, 3b, 5a, 5b), the asymmetric form (R302) on the 14x14 grid (4a-4e)
    "googlenet_paper.arch": {"R301": 4, "R302": 5},
    # torchvision kept InceptionA's 5x5 from TF-slim (Mixed_5b-d); the paper's Figure 5 factorizes it
    "inception_v3.arch": {"R301": 3},
    # timm's Mixed_5b is the same TF-slim module with its 5x5 (the block lives in specs/lib, so the
    # hint says to copy it into the spec for `archdsl transform`)
    "inception_resnet_v2.arch": {"R301": 1},
    "inception_resnet_v2.yaml": {"R301": 1},
    # pools then doubles the width after the 2nd and 3rd pool (the 1st is the stem, the 4th keeps 512)
    "vgg16.arch": {"R102": 2},
    # as vgg16; plus torchvision keeps bias = True before BN: one source line, 13 convs, 4,224 params
    "vgg16_bn.arch": {"R102": 2, "R401": 1},
}


def zoo_findings(name: str, monkeypatch: pytest.MonkeyPatch) -> list[Diagnostic]:
    monkeypatch.chdir(ROOT)   # relative paths in the goldens
    res = analyze(f"specs/{name}")
    assert res.ok, [f"{d.loc}: {d.code} {d.message}" for d in res.diags if d.is_error]
    return sorted(lint(res, RuleRequest(use_pyproject=False)), key=Diagnostic.sort_key)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_findings_golden(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = zoo_findings(name, monkeypatch)
    assert not [d for d in ds if d.code == "R000" or d.is_error]
    text = "".join(format_text(d) + "\n" for d in ds)
    assert_golden(f"rules/{name.replace('.arch', '.txt')}", text)


def test_googlenet_paper_factorization_fires_on_the_5x5_branches(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = zoo_findings("googlenet_paper.arch", monkeypatch)
    # stacked 3x3 (R301) on the 28x28 and 7x7 grids, the asymmetric 1x5 + 5x1 (R302) on the medium 14x14 grid
    r301 = [d for d in ds if d.code == "R301"]
    r302 = [d for d in ds if d.code == "R302"]
    assert [d.path for d in r301] == [f"inception{m}.branch3.1.conv" for m in ("3a", "3b", "5a", "5b")]
    assert [d.path for d in r302] == [f"inception{m}.branch3.1.conv" for m in ("4a", "4b", "4c", "4d", "4e")]
    assert {(d.loc.line, d.loc.col) for d in r301 + r302} == {(17, 41)}     # Conv(ch5x5, 5, padding = 2)
    assert r301[0].message == ("5x5 conv on 28x28x16 can be two stacked 3x3 convs (same receptive field): "
                               "12,800 -> 9,072 weights (-29%), 10.04M -> 7.11M MACs")


def test_inception_v3_factorization_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = [d for d in zoo_findings("inception_v3.arch", monkeypatch) if d.code.startswith("R3")]
    # only the 35x35 5x5 branch that torchvision kept from TF-slim (the paper's Figure 5 factorizes it);
    # the 17x17 modules' 1x7/7x1 sit on a medium grid, the 8x8 ones are below it
    assert [(d.code, d.path) for d in ds] == [("R301", f"Mixed_5{m}.branch5x5_2.conv") for m in "bcd"]


def test_bias_before_bn_in_the_zoo(monkeypatch: pytest.MonkeyPatch) -> None:
    bn_inc = [d for d in zoo_findings("bn_inception.arch", monkeypatch) if d.code == "R401"]
    g = analyze("specs/bn_inception.arch").graph
    biases = [g.node(n)["shape"][0] for n in g.g if g.node(n)["op"] == "conv2d" and g.node(n)["args"]["bias"]]
    # every conv of the Caffe port has a bias and a BN right after it: 69 convs, 10,016 wasted parameters
    assert len(bn_inc) == len(biases) == 69
    assert sum(d.evidence["wasted_params"] for d in bn_inc) == sum(biases) == 10_016
    vgg = [d for d in zoo_findings("vgg16_bn.arch", monkeypatch) if d.code == "R401"]
    assert len(vgg) == 1 and vgg[0].evidence["wasted_params"] == 4_224   # 13 convs, one source line
    assert len(vgg[0].evidence["layers"]) == 13


# ---------------------------------------------------------------------------------- allow-list and docs table


@cache
def _findings(name: str) -> tuple[Diagnostic, ...]:
    """Every finding of ``specs/<name>`` (analysed once per session; pyproject settings ignored)."""
    res = analyze(str(ROOT / "specs" / name))
    assert res.ok, [f"{d.loc}: {d.code} {d.message}" for d in res.diags if d.is_error]
    return tuple(sorted(lint(res, RuleRequest(use_pyproject=False)), key=Diagnostic.sort_key))


def _counts(counter: Counter) -> str:
    """``R401 ×69, R102`` (codes in order, ×n when more than one), or ``—``."""
    return ", ".join(f"{c} ×{n}" if n > 1 else c for c, n in sorted(counter.items())) or "—"


def zoo_table() -> str:
    """The markdown table of the findings on every zoo spec, as docs/rules.md holds it."""
    lines = ["| spec | warnings | infos |", "|---|---|---|"]
    for name in ZOO_ALL:
        ds = _findings(name)
        warnings = Counter(d.code for d in ds if d.severity == WARNING)
        infos = Counter(d.code for d in ds if d.severity != WARNING)
        lines.append(f"| {name} | {_counts(warnings)} | {_counts(infos)} |")
    return "\n".join(lines) + "\n"


def _docs_block(text: str) -> tuple[int, int]:
    """Start and end offsets of the text between the zoo-findings markers of docs/rules.md."""
    assert text.count(BEGIN) == 1 and text.count(END) == 1, f"docs/rules.md needs one {BEGIN} and one {END}"
    start, end = text.index(BEGIN) + len(BEGIN) + 1, text.index(END)
    assert start <= end + 1, f"{END} comes before {BEGIN} in docs/rules.md"
    return start, end


def test_zoo_docs_table_matches_the_rules() -> None:
    """docs/rules.md's table of findings on the zoo is what the rules report (regenerate to update)."""
    table = zoo_table()
    text = DOCS.read_text(encoding="utf-8")
    start, end = _docs_block(text)
    if updating():
        if text[start:end] != table:
            DOCS.write_text(text[:start] + table + text[end:], encoding="utf-8")
        return
    assert text[start:end] == table, (
        "the zoo findings table in docs/rules.md is out of date "
        "(ARCHDSL_UPDATE_GOLDEN=1 pytest tests/test_rules_zoo.py -k docs_table rewrites it); it should be:\n" + table)


def test_zoo_allow_list_names_zoo_specs() -> None:
    assert set(EXPECTED) <= set(ZOO_ALL), sorted(set(EXPECTED) - set(ZOO_ALL))
    assert all(re.fullmatch(r"R\d{3}", c) and n > 0 for v in EXPECTED.values() for c, n in v.items())


@pytest.mark.parametrize("name", ZOO_ALL)
def test_zoo_strict_allow_list(name: str) -> None:
    """``archdsl check --strict`` passes except for the allow-listed warnings, which it reports exactly."""
    rc, out, err = run("check", "--strict", "--format", "json", str(ROOT / "specs" / name))
    diags = json.loads(out)["diagnostics"]
    assert not [d for d in diags if d["severity"] == "error"], err
    # a finding repeated by several instances of a block is one diagnostic listing them: count each
    warnings = Counter()
    for d in diags:
        if d["severity"] == "warning":
            warnings[d["code"]] += len(d.get("instances", [])) or 1
    expected = Counter(EXPECTED.get(name, {}))
    shown = "\n".join(f"  {d['code']} @ {d['line']}:{d['column']} {d['path']}: {d['message']}"
                      for d in diags if d["severity"] == "warning")
    assert warnings == expected, (
        f"{name}: warnings {_counts(warnings)}, allow-list {_counts(expected)}; "
        f"new: {_counts(warnings - expected)}, lost: {_counts(expected - warnings)}\n{shown}")
    assert rc == (1 if expected else 0), f"check --strict exited {rc}\n{err}"
