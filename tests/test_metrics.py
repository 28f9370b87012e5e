"""archdsl/metrics.py: depth and activations, against the figures other parts of archdsl report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run

from archdsl import metrics
from archdsl.diagnostics import Loc
from archdsl.pipeline import analyze
from archdsl.rules.graphctx import Ctx

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


@pytest.mark.parametrize(("spec", "expected"), [
    ("resnet18", 18), ("resnet50", 50), ("vgg16", 16), ("densenet121", 121), ("inception_v3", 48),
    ("mobilenet_v2", 53),
])
def test_depth_is_weight_layers_on_the_longest_path(spec: str, expected: int) -> None:
    # The named depth of these networks counts exactly their conv and linear layers on the longest path.
    res = analyze(SPECS / f"{spec}.arch")
    assert res.ok and res.graph is not None
    assert metrics.depth(res.graph) == expected
    ctx = Ctx.build(res.graph, {}, Loc(spec, 1, 1))
    assert ctx.depths()["longest"][res.graph.outputs["main"]] == expected  # the design rules' figure


def test_depth_ignores_aux_heads_and_takes_the_longer_branch(tmp_path: Path) -> None:
    spec = tmp_path / "branches.arch"
    spec.write_text("network b\ninput 3x16x16\n"
                    "concat { conv2d(4, 1) { conv2d(4, 1) -> conv2d(4, 1) -> conv2d(4, 1) } }\n"
                    "aux side: { conv2d(4, 1) -> conv2d(4, 1) -> conv2d(4, 1) -> conv2d(4, 1) -> conv2d(4, 1) "
                    "-> flatten -> linear(2) }\n"
                    "flatten -> linear(10)\n", encoding="utf-8")
    res = analyze(spec)
    assert res.ok, [str(d.message) for d in res.diags]
    assert res.graph is not None
    assert metrics.depth(res.graph) == 4  # three convs on the longer branch, then the linear


def test_activations_equal_the_summary_column() -> None:
    res = analyze(SPECS / "googlenet.arch")  # aux heads: counted, as the summary lists them
    assert res.graph is not None
    rc, out, _ = run("summary", str(SPECS / "googlenet.arch"), "--format", "json")
    assert rc == 0
    assert metrics.activations(res.graph) == sum(n["activations"] for n in json.loads(out)["nodes"]) > 0
