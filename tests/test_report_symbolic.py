"""``summary`` for a symbolic input (``--input 3xHxW``): JSON's ``macs_text`` and the CSV's machine form."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sympy

from archdsl import report
from archdsl.cli import main
from archdsl.pipeline import analyze

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
H, W = sympy.Symbol("H", integer=True, positive=True), sympy.Symbol("W", integer=True, positive=True)


def _value(text: str, h: int, w: int) -> int:
    """A machine-form cell (sympy's syntax) at ``H = h``, ``W = w``."""
    return int(sympy.sympify(text, locals={"H": H, "W": W}).subs({H: h, W: w}))


def _csv(argv: list[str], capsys) -> list[dict]:
    assert main(["summary", "--format", "csv", *argv]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_json_macs_text_is_the_printed_expression(capsys) -> None:
    assert main(["summary", "--format", "json", "--input", "3xHxW", str(SPECS / "resnet18.arch")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "floor(" in doc["macs"] and doc["macs_text"] != doc["macs"]
    # the same text the table's totals line prints
    res = analyze(SPECS / "resnet18.arch", {}, (3, "H", "W"))
    line = report.totals_line(res.graph)
    assert f"MACs (eval): {doc['macs_text']}   " in line
    assert "\u230a(H+1)/2\u230b" in doc["macs_text"] and "floor" not in doc["macs_text"]


def test_json_macs_text_is_null_for_a_concrete_total(capsys, tmp_path: Path) -> None:
    spec = tmp_path / "n.arch"
    spec.write_text("network n\ninput 3xHxW\nglobal_avgpool\nflatten\nlinear(10)\n")
    assert main(["summary", "--format", "json", str(spec)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["macs"] == 30 and doc["macs_text"] is None


@pytest.mark.parametrize("spec, size", [("resnet18", (61, 48)), ("squeezenet1_1", (70, 90)),
                                        ("shufflenet_v2_x0_5", (64, 33))])
def test_csv_carries_machine_form_equal_to_the_concrete_csv(spec: str, size: tuple[int, int], capsys) -> None:
    """Every symbolic cell parses with sympy and, at a size, equals the concrete summary's cell."""
    path = str(SPECS / f"{spec}.arch")
    sym = _csv(["--input", "3xHxW", path], capsys)
    concrete = _csv(["--input", f"3x{size[0]}x{size[1]}", path], capsys)
    assert [r["module"] for r in sym] == [r["module"] for r in concrete]
    assert any("floor(" in r["macs"] for r in sym)
    for s, c in zip(sym, concrete):
        assert not any(ch in s["output"] + s["macs"] for ch in "\u230a\u230b\u2308\u2309\u00b7\u2212")
        for key in ("params", "macs", "activations"):
            assert _value(s[key], *size) == int(c[key]), (s["module"], key)
        dims = s["output"].removesuffix(" (channels-last)").split("x")
        want = c["output"].removesuffix(" (channels-last)").split("x")
        assert [_value(d, *size) for d in dims] == [int(d) for d in want], s["module"]


def test_csv_for_a_concrete_input_is_unchanged(capsys) -> None:
    rows = _csv([str(SPECS / "resnet18.arch")], capsys)
    assert rows[0]["output"] == "64x112x112" and rows[0]["macs"] == "118013952"
