"""``archdsl render``: labels, golden DOT, determinism, collapse/expand, SVG structure, missing ``dot``.

Tests that need Graphviz's ``dot`` binary skip when it is not installed (``apt-get install graphviz``);
the DOT itself is produced by Python alone and is always tested.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from golden import assert_golden

from archdsl import report
from archdsl.backends import render as R
from archdsl.cli import main
from archdsl.diagnostics import Diagnostic, Loc
from archdsl.ir import display_path
from archdsl.pipeline import analyze

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
SVG_NS = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz 'dot' not installed (apt-get install graphviz)")

_GRAPHS: dict[str, object] = {}


def graph(name: str):
    if name not in _GRAPHS:
        res = analyze(SPECS / f"{name}.arch")
        assert res.ok, [d.message for d in res.diags]
        _GRAPHS[name] = res.graph
    return _GRAPHS[name]


def svg_items(svg: bytes | str) -> tuple[list[str], list[str], int]:
    """(node ids, cluster ids, edge count) of a Graphviz SVG."""
    root = ET.fromstring(svg)
    nodes, clusters, edges = [], [], 0
    for g in root.iter(f"{SVG_NS}g"):
        cls = g.get("class")
        if cls == "node":
            nodes.append(g.get("id"))
        elif cls == "cluster":
            clusters.append(g.get("id"))
        elif cls == "edge":
            edges += 1
    return nodes, clusters, edges


# ------------------------------------------------------------------------------ labels


@pytest.mark.parametrize("op, args, text", [
    ("conv2d", {"out": 32, "kernel": (3, 3), "stride": (2, 2), "padding": (0, 0), "dilation": (1, 1), "groups": 1},
     "conv 3×3 /2, 32"),
    ("conv2d", {"out": 192, "kernel": (1, 7), "stride": (1, 1), "padding": (0, 3), "dilation": (1, 1), "groups": 1},
     "conv 1×7, 192"),
    ("conv2d", {"out": 64, "kernel": (3, 3), "stride": (1, 1), "padding": (2, 2), "dilation": (2, 2), "groups": 32},
     "conv 3×3, 64 dil 2 g32"),
    ("maxpool", {"kernel": (3, 3), "stride": (2, 2), "padding": (0, 0), "dilation": (1, 1), "ceil_mode": True},
     "maxpool 3×3 /2 ceil"),
    ("maxpool", {"kernel": (2, 2), "stride": None, "padding": (0, 0), "dilation": (1, 1), "ceil_mode": False},
     "maxpool 2×2 /2"),
    ("avgpool", {"kernel": (3, 3), "stride": (1, 1), "padding": (1, 1), "ceil_mode": False}, "avgpool 3×3 /1 pad 1"),
    ("adaptive_avgpool", {"size": (1, 1)}, "adaptive_avgpool 1×1"),
    ("linear", {"out": 1000, "bias": True, "in_features": None}, "linear 1000"),
    ("dropout", {"p": 0.2}, "dropout 0.2"),
    ("concat", {"dense": False}, "concat"),
    ("concat", {"dense": True}, "dense concat"),
    ("add", {}, "+"),
    ("scale", {"factor": 0.17}, "×0.17"),
    ("relu", {"inplace": False}, "relu"),
])
def test_op_labels_read_as_people_write_them(op, args, text) -> None:
    assert R.op_text(op, args) == text


def test_counts_and_shapes_are_short() -> None:
    assert R.fmt_count(13_004_888) == "13.0M"
    assert R.fmt_count(364_512) == "365K"
    assert R.fmt_count(1_498_376_192) == "1.50G"
    assert R.fmt_count(9_536) == "9.54K"
    assert R.fmt_count(512) == "512"
    assert R.fmt_shape((192, 35, 35)) == "192×35×35"
    assert R.fmt_shape((1000,)) == "1000"


# ------------------------------------------------------------------------------ golden DOT


@pytest.mark.parametrize("spec, depth", [
    ("googlenet", 1),
    ("inception_v3", 1),
    ("resnet18", None),
    ("densenet121", 2),
    ("vgg16", None),
])
def test_dot_golden(spec: str, depth: int | None) -> None:
    g = graph(spec)
    model = R.build_model(g)
    dot = R.to_dot(model, R.initial_open(model, depth))
    assert_golden(f"render/{spec}{'' if depth is None else f'_depth{depth}'}.dot", dot)


def test_dot_is_byte_identical_across_processes(tmp_path: Path) -> None:
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"g{seed}.dot"
        env = dict(os.environ, PYTHONHASHSEED=seed)
        proc = subprocess.run([sys.executable, "-m", "archdsl", "render", str(SPECS / "googlenet.arch"), "-o", str(out),
                               "--show", "all"], capture_output=True, text=True, env=env, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


# ------------------------------------------------------------------------------ collapse / expand


@pytest.mark.parametrize("spec", ["googlenet", "inception_v3", "resnet50", "densenet121"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_depth_collapses_like_summary(spec: str, depth: int) -> None:
    """At --depth N the diagram draws exactly the rows of ``summary --depth N`` (plus input/outputs)."""
    g = graph(spec)
    model = R.build_model(g)
    items = R.drawn_items(model, R.initial_open(model, depth))
    shown = [i for i in items if not (i.startswith("n") and g.node(int(i[1:]))["op"] in ("input", "output"))]
    names = {s["id"]: s["path"] for s in model.scopes}
    expected = [r.path for r in report.rows(g, depth)]
    assert [names.get(i) or display_path(g.node(int(i[1:]))["path"]) for i in shown] == expected


def test_googlenet_depth1_is_stem_nine_modules_head() -> None:
    g = graph("googlenet")
    model = R.build_model(g)
    items = R.drawn_items(model, R.initial_open(model, 1))
    paths = [next(s["path"] for s in model.scopes if s["id"] == i) for i in items if i.startswith("s")]
    assert [p for p in paths if p.startswith("inception")] == [
        "inception3a", "inception3b", "inception4a", "inception4b", "inception4c", "inception4d", "inception4e",
        "inception5a", "inception5b"]
    assert len(items) < 30


def test_expand_opens_one_block_fully() -> None:
    g = graph("googlenet")
    model = R.build_model(g)
    opened = R.initial_open(model, 1, ["inception4a"])
    items = set(R.drawn_items(model, opened))
    inside = {f"n{n}" for n, d in g.g.nodes(data=True) if d["path"].startswith("inception4a.")
              or d["path"].startswith("inception4a@")}
    assert inside and inside <= items
    assert model.scope_by_path["inception4b"] in items  # the others stay collapsed
    dot = R.to_dot(model, opened)
    assert f"subgraph cluster_{model.scope_by_path['inception4a.branch2']}" in dot
    assert f"subgraph cluster_{model.scope_by_path['inception4b']}" not in dot


def test_collapsed_edges_keep_shapes_and_skip_internal_ones() -> None:
    g = graph("googlenet")
    model = R.build_model(g)
    dot = R.to_dot(model, R.initial_open(model, 1))
    s3a, s3b = model.scope_by_path["inception3a"], model.scope_by_path["inception3b"]
    line = next(ln for ln in dot.splitlines() if ln.strip().startswith(f"{s3a} -> {s3b} "))
    assert 'label="256×28×28"' in line
    assert "n12 " not in dot  # inception3a.branch1.conv is inside a collapsed block


def test_unknown_expand_path_is_a_located_error(tmp_path: Path, capsys) -> None:
    rc = main(["render", str(SPECS / "googlenet.arch"), "-o", str(tmp_path / "g.dot"), "--expand", "inception4z"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "E504" in err and "did you mean 'inception4" in err
    assert "Traceback" not in err
    assert not (tmp_path / "g.dot").exists()


# ------------------------------------------------------------------------------ drawing conventions


def test_merges_aux_heads_and_families_are_distinct() -> None:
    g = graph("googlenet")
    model = R.build_model(g)
    by_op = {}
    for n in model.nodes:
        by_op.setdefault(n["info"]["op"], n["attrs"])
    assert by_op["concat"]["shape"] == "invtrapezium"
    assert by_op["conv2d"]["fillcolor"] != by_op["batchnorm"]["fillcolor"] != by_op["relu"]["fillcolor"]
    aux_edges = [e for e in model.edges if e["attrs"].get("style") == "dashed"]
    assert {g.node(e["dst"])["path"].split(".")[0] for e in aux_edges} == {"aux1", "aux2"}
    assert all(e["attrs"]["weight"] == "0" for e in aux_edges)  # side exits do not bend the trunk
    dense = R.build_model(graph("densenet121"))
    cat = next(n for n in dense.nodes if n["info"]["op"] == "concat")
    assert cat["attrs"]["peripheries"] == "2"
    res = R.build_model(graph("resnet18"))
    add = next(n for n in res.nodes if n["info"]["op"] == "add")
    assert add["attrs"]["shape"] == "circle"


def test_dense_block_is_drawn_as_a_growing_trunk() -> None:
    g = graph("densenet121")
    model = R.build_model(g)
    # 58 dense concats; drawn edges stay linear in the layer count instead of quadratic
    assert len(model.edges) < 1.3 * g.g.number_of_edges() / 2
    cats = [n["nid"] for n in model.nodes if n["info"]["op"] == "concat"]
    into_second = [e["src"] for e in model.edges if e["dst"] == cats[1]]
    assert into_second[0] == cats[0] and len(into_second) == 2


def test_legend_lists_only_what_is_drawn() -> None:
    model = R.build_model(graph("googlenet"))
    collapsed = R.to_dot(model, R.initial_open(model, 1))
    full = R.to_dot(model, R.initial_open(model, None))
    assert "convolution" not in collapsed and "collapsed block" in collapsed
    assert "convolution" in full and "collapsed block" not in full


def test_rule_findings_outline_nodes_in_red() -> None:
    g = graph("googlenet")
    finding = Diagnostic("R104", "pool right after pool", Loc("googlenet.arch", 40, 1), "warning",
                         path="inception4a.branch4.0")
    model = R.build_model(g, [finding, Diagnostic("E999", "not a rule", Loc("x", 1, 1), path="inception4a")])
    nid = g.by_path("inception4a.branch4.0")
    node = next(n for n in model.nodes if n["nid"] == nid)
    assert node["attrs"]["color"] == R.FINDING_COLOR and "R104" in node["attrs"]["label"]
    assert node["info"]["findings"] == ["R104: pool right after pool"]
    collapsed = R.to_dot(model, R.initial_open(model, 1))
    sid = model.scope_by_path["inception4a"]
    line = next(ln for ln in collapsed.splitlines() if ln.strip().startswith(f"{sid} ["))
    assert R.FINDING_COLOR in line and "R104" in line and "rule finding" in collapsed
    assert "E999" not in collapsed


# ------------------------------------------------------------------------------ the dot binary


@needs_dot
def test_svg_has_one_node_per_ir_node_at_full_depth(tmp_path: Path) -> None:
    out = tmp_path / "inception_v3.svg"
    assert main(["render", str(SPECS / "inception_v3.arch"), "-o", str(out)]) == 0
    nodes, clusters, edges = svg_items(out.read_bytes())
    g = graph("inception_v3")
    assert sorted(nodes) == sorted(f"n{n}" for n in g.g.nodes)
    model = R.build_model(g)
    assert sorted(clusters) == sorted(s["id"] for s in model.scopes)
    assert edges == g.g.number_of_edges()
    assert b"192\xc3\x9735\xc3\x9735" in out.read_bytes()  # 192×35×35 on an edge


@needs_dot
def test_depth_svg_draws_blocks_as_single_nodes(tmp_path: Path) -> None:
    out = tmp_path / "g.svg"
    assert main(["render", str(SPECS / "googlenet.arch"), "-o", str(out), "--depth", "1", "--direction", "LR"]) == 0
    nodes, clusters, _ = svg_items(out.read_bytes())
    model = R.build_model(graph("googlenet"))
    assert sorted(nodes) == sorted(R.drawn_items(model, R.initial_open(model, 1)))
    assert clusters == []


@needs_dot
@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_png_and_pdf(tmp_path: Path, fmt: str, magic: bytes) -> None:
    out = tmp_path / f"r.{fmt}"
    assert main(["render", str(SPECS / "resnet18.arch"), "-o", str(out), "--depth", "2"]) == 0
    assert out.read_bytes().startswith(magic)


@needs_dot
def test_html_is_self_contained(tmp_path: Path) -> None:
    out = tmp_path / "g.html"
    assert main(["render", str(SPECS / "googlenet.arch"), "-o", str(out), "--depth", "1"]) == 0
    text = out.read_text(encoding="utf-8")
    lowered = text.lower()
    assert "<script src" not in lowered and "<link" not in lowered and "@import" not in lowered
    assert 'id="archdsl-model"' in text and "<svg" in text and "Viz" in text
    assert text.split("<script", 1)[0].count("<svg") == 1  # the initial view, before the scripts


def test_missing_dot_writes_dot_file_and_says_how_to_install(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert R.find_dot() is None
    out = tmp_path / "g.svg"
    rc = main(["render", str(SPECS / "googlenet.arch"), "-o", str(out), "--depth", "1"])
    err = capsys.readouterr().err
    assert rc == 1
    assert not out.exists()
    dot = (tmp_path / "g.dot").read_text(encoding="utf-8")
    assert dot.startswith("digraph googlenet {")
    assert "E501" in err and "apt-get install graphviz" in err and "dot -Tsvg" in err
    assert "Traceback" not in err


def test_missing_dot_from_a_fresh_process(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "archdsl", "render", str(SPECS / "resnet18.arch"), "-o",
                           str(tmp_path / "r.png")], capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 1
    assert (tmp_path / "r.dot").is_file() and not (tmp_path / "r.png").exists()
    assert "install Graphviz" in proc.stderr and "Traceback" not in proc.stderr


def test_dot_output_needs_no_graphviz_binary(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(R, "find_dot", lambda: None)
    out = tmp_path / "g.dot"
    assert main(["render", str(SPECS / "googlenet.arch"), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("digraph")


def test_too_many_drawn_nodes_is_refused_before_dot(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(R, "run_dot", lambda *a, **k: pytest.fail("dot must not run"))
    out = tmp_path / "r.svg"
    rc = main(["render", "--limit", "render_nodes=20", str(SPECS / "resnet18.arch"), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and not out.exists()
    assert "resnet18.arch:2:9: error[E505]: the diagram would have 71 nodes" in err
    assert "the limit is 20" in err and "--depth" in err and "Traceback" not in err
    # DOT output is not laid out here, so it is never refused
    monkeypatch.undo()
    assert main(["render", "--limit", "render_nodes=20", str(SPECS / "resnet18.arch"), "-o",
                 str(tmp_path / "r.dot")]) == 0


def test_dot_that_hangs_is_stopped(tmp_path: Path, monkeypatch, capsys) -> None:
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\nexec {shutil.which('sleep')} 30\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    out = tmp_path / "g.svg"
    rc = main(["render", "--limit", "dot_seconds=1", str(SPECS / "googlenet.arch"), "-o", str(out), "--depth", "1"])
    err = capsys.readouterr().err
    assert rc == 1 and not out.exists()
    assert "error[E502]: Graphviz 'dot' did not finish within 1 s" in err and "Traceback" not in err


# ------------------------------------------------------------------------------ CLI errors and imports


def test_unknown_extension_is_a_located_error(tmp_path: Path, capsys) -> None:
    rc = main(["render", str(SPECS / "googlenet.arch"), "-o", str(tmp_path / "g.jpeg")])
    err = capsys.readouterr().err
    assert rc == 1 and "E503" in err and "--format" in err


def test_spec_errors_are_reported_not_drawn(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "bad.arch"
    spec.write_text("network bad\ninput 3x32x32\nc: conv2d(8, 3)\nlinear(10)\n", encoding="utf-8")
    rc = main(["render", str(spec), "-o", str(tmp_path / "bad.dot")])
    err = capsys.readouterr().err
    assert rc == 1 and "E206" in err and "Traceback" not in err
    assert not (tmp_path / "bad.dot").exists()


def test_render_never_imports_torch(tmp_path: Path) -> None:
    code = ("import sys; from archdsl.cli import main; "
            f"rc = main(['render', {str(SPECS / 'googlenet.arch')!r}, '-o', {str(tmp_path / 'g.dot')!r}]); "
            "assert rc == 0; assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_show_controls_annotations() -> None:
    g = graph("resnet18")
    plain = R.to_dot(R.build_model(g, show=frozenset()), set())
    full = R.to_dot(R.build_model(g, show=frozenset({"shapes", "params", "macs"})), set())
    assert "×" not in plain.split("edge [", 1)[1].split("->", 1)[1]  # no shapes on edges
    assert "params" in full and "MACs" in full


def test_rule_findings_from_the_rules_package(tmp_path: Path) -> None:
    pytest.importorskip("archdsl.rules", reason="the design rules (#4) are not installed")
    out = tmp_path / "g.dot"
    assert main(["render", str(SPECS / "googlenet_paper.arch"), "-o", str(out), "--depth", "2"]) == 0
    with_rules = out.read_text(encoding="utf-8")
    assert main(["render", str(SPECS / "googlenet_paper.arch"), "-o", str(out), "--depth", "2", "--no-rules"]) == 0
    without = out.read_text(encoding="utf-8")
    assert R.FINDING_COLOR in with_rules and "rule finding" in with_rules
    assert R.FINDING_COLOR not in without


def test_parameters_change_the_drawing(tmp_path: Path) -> None:
    out = tmp_path / "g.dot"
    assert main(["render", str(SPECS / "googlenet.arch"), "-o", str(out), "--depth", "1", "-p", "aux_logits=false",
                 "--no-rules"]) == 0
    text = out.read_text(encoding="utf-8")
    assert "aux1" not in text and "inception4a" in text


# ------------------------------------------------------------------------------ symbolic input sizes


def _symbolic_model(spec: Path, depth: int | None = None) -> tuple[object, str]:
    res = analyze(spec, {}, (3, "H", "W"))
    assert res.graph is not None and res.graph.symbolic is not None
    model = R.build_model(res.graph, show=frozenset(R.SHOW_KEYS))
    return res.graph, R.to_dot(model, R.initial_open(model, depth))


def test_symbolic_diagram_shows_expressions_as_summary_does() -> None:
    """Title, node and block labels, tooltips: the expressions, not the representative size's values."""
    g, dot = _symbolic_model(SPECS / "resnet18.arch")
    rep = analyze(SPECS / "resnet18.arch", {}, g.input_shape).graph  # the representative size, concrete
    assert g.symbolic.representative == g.input_shape
    conv1 = next(d for _, d in rep.g.nodes(data=True) if d["path"] == "conv1")
    for value in (R.fmt_count(rep.eval_macs()), f"{conv1['costs'].macs:,}", R.fmt_count(conv1["costs"].macs)):
        assert value not in dot, value
    summary_macs = report.totals_line(g).split("MACs (eval): ", 1)[1].split("   ", 1)[0]
    assert "\u230a" in summary_macs and f"{summary_macs} MACs (eval)" in dot
    assert "9408·⌊(H+1)/2⌋·⌊(W+1)/2⌋ MACs" in dot  # conv1's label
    assert "| 9408·⌊(H+1)/2⌋·⌊(W+1)/2⌋ MACs |" in dot  # and its tooltip
    _, collapsed = _symbolic_model(SPECS / "resnet18.arch", depth=1)
    assert "147456·⌊(H+3)/4⌋·⌊(W+3)/4⌋ MACs" in collapsed  # layer1 as a block: its MACs summed


def test_symbolic_diagram_params_of_a_size_dependent_classifier(tmp_path: Path) -> None:
    spec = tmp_path / "n.arch"
    spec.write_text("network n\ninput 3xHxW\nconv2d(8, 3)\nflatten\nfc: linear(10)\n")
    g, dot = _symbolic_model(spec)
    assert "80·(H−2)·(W−2)+10 params" in dot and "80·(H−2)·(W−2)+234 params" in dot  # fc, and the title
    fc = next(d for _, d in g.g.nodes(data=True) if d["path"] == "fc")
    assert f"{R.fmt_count(fc['costs'].params)} params" not in dot


@needs_dot
def test_symbolic_html_and_mermaid_carry_expressions(tmp_path: Path) -> None:
    spec = tmp_path / "n.arch"
    spec.write_text("network n\ninput 3xHxW\nconv2d(8, 3)\nflatten\nfc: linear(10)\n")
    assert main(["render", str(spec), "-o", str(tmp_path / "n.html"), "--show", "all"]) == 0
    page = (tmp_path / "n.html").read_text(encoding="utf-8")
    assert '<span class="stats">3 layers · 80·(H−2)·(W−2)+234 params' in page
    assert '"macs": "80·(H−2)·(W−2)"' in page or '"macs":"80·(H−2)·(W−2)"' in page  # the viewer's details
    assert main(["render", str(spec), "-o", str(tmp_path / "n.mmd"), "--show", "all"]) == 0
    assert "80·(H−2)·(W−2) MACs" in (tmp_path / "n.mmd").read_text(encoding="utf-8")
