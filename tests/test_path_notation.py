"""One path notation everywhere: the nodes the compiler adds (a residual's sum, a concat, a gate's
product) are ``scope.<kind>`` in summaries (every format), diagrams and diagnostics alike, through
one helper, :func:`archdsl.ir.display_path`; the IR keeps ``scope@kind`` and code generation is
unchanged (state_dict keys depend on it)."""

from __future__ import annotations

import csv
import io
import json
import textwrap
from pathlib import Path

import pytest
from cli_support import run

from archdsl.diagnostics import Loc
from archdsl.ir import display_path
from archdsl.pipeline import analyze
from archdsl.rules.graphctx import Ctx

NET = textwrap.dedent("""
    network t
    input 8x8x8
    layer1: repeat(2) {
        residual(post = "relu") { conv2d(8, 3, padding = 1) -> batchnorm }
    }
    m: concat {
        relu
        conv2d(4, 1)
    }
    g: gate { global_avgpool -> conv2d(12, 1) -> sigmoid }
""").lstrip("\n")

INTERNAL = ["layer1.0.<add>", "layer1.1.<add>", "m.<concat>", "g.<mul>"]


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    p = tmp_path / "t.arch"
    p.write_text(NET)
    return p


@pytest.mark.parametrize(("ir", "shown"), [
    ("layer1.0@add", "layer1.0.<add>"), ("@concat", "<concat>"), ("block1@cat_2", "block1.<cat_2>"),
    ("layer1.0.conv1", "layer1.0.conv1"), ("0", "0"), ("", ""),
])
def test_display_path(ir: str, shown: str) -> None:
    assert display_path(ir) == shown


def test_summary_text(spec: Path) -> None:
    rc, out, _ = run("summary", str(spec))
    assert rc == 0 and "@" not in out
    for path in INTERNAL:
        assert f"│ {path} " in out


def test_summary_json(spec: Path) -> None:
    rc, out, _ = run("summary", str(spec), "--format", "json")
    paths = [n["path"] for n in json.loads(out)["nodes"]]
    assert rc == 0 and [p for p in paths if "<" in p] == INTERNAL
    assert not any("@" in p for p in paths)


def test_summary_csv(spec: Path) -> None:
    rc, out, _ = run("summary", str(spec), "--format", "csv")
    paths = [row["module"] for row in csv.DictReader(io.StringIO(out))]
    assert rc == 0 and [p for p in paths if "<" in p] == INTERNAL


def test_summary_markdown_escapes_the_angle_bracket(spec: Path) -> None:
    """``<add>`` would be an HTML tag to a Markdown renderer, and vanish."""
    rc, out, _ = run("summary", str(spec), "--format", "md")
    assert rc == 0 and "@" not in out
    assert "| layer1.0.\\<add> | add |" in out and "| m.\\<concat> | concat |" in out


def test_summary_depth_collapses_by_scope(spec: Path) -> None:
    rc, out, _ = run("summary", str(spec), "--format", "json", "--depth", "2")
    paths = [n["path"] for n in json.loads(out)["nodes"]]
    assert rc == 0 and paths[:2] == ["layer1.0", "layer1.1"] and "m.<concat>" in paths


def test_diagnostics_use_the_same_notation(tmp_path: Path) -> None:
    p = tmp_path / "e.arch"
    p.write_text("network e\ninput 8x8x8\nr: residual { }\nrelu\n")
    rc, out, _ = run("check", str(p), "--format", "json")
    (d,) = json.loads(out)["diagnostics"]
    assert rc == 1 and (d["code"], d["path"]) == ("E117", "r.<add>")


def test_rules_context_and_diagrams_agree(spec: Path, tmp_path: Path) -> None:
    g = analyze(spec).graph
    ctx = Ctx.build(g, {}, Loc(str(spec), 1, 1))
    adds = [n for n in g.order() if g.node(n)["op"] == "add"]
    assert [ctx.path(n) for n in adds] == INTERNAL[:2]
    assert [g.node(n)["path"] for n in adds] == ["layer1.0@add", "layer1.1@add"]   # the IR keeps its keys
    out = tmp_path / "t.dot"
    assert run("render", str(spec), "-o", str(out), "--no-rules")[0] == 0
    dot = out.read_text()
    assert 'tooltip="layer1.0.<add> (+)' in dot and "@" not in dot
