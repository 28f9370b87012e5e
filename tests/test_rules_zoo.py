"""The rules over the whole zoo: no crash, no error, and the findings kept as golden files.

``tests/golden/rules/<spec>.txt`` holds every finding of a zoo spec (refresh with
``ARCHDSL_UPDATE_GOLDEN=1 pytest tests/test_rules_zoo.py``); ``docs/rules.md`` explains them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from golden import assert_golden

from archdsl.diagnostics import Diagnostic, format_text
from archdsl.pipeline import analyze
from archdsl.rules import RuleRequest, lint

ROOT = Path(__file__).resolve().parents[1]
ZOO = sorted(p.name for p in (ROOT / "specs").glob("*.arch"))


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
    ds = [d for d in zoo_findings("googlenet_paper.arch", monkeypatch) if d.code == "R301"]
    assert [d.path for d in ds] == [f"inception{m}.branch3.1.conv" for m in
                                    ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]
    assert {(d.loc.line, d.loc.col) for d in ds} == {(17, 41)}     # Conv(ch5x5, 5, padding = 2)
    assert ds[2].message == ("5x5 conv on 14x14x16 can be two stacked 3x3 convs (same receptive field): "
                             "19,200 -> 13,824 weights (-28%), 3.76M -> 2.71M MACs")


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
