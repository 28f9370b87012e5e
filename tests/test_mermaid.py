"""``render -o OUT.mmd``: the Mermaid flowchart (archdsl/backends/mermaid.py).

The structure and escaping are checked here in Python; Mermaid's own parser (``mermaid.parse`` and
the flowchart database it fills, run by tools/mermaid/parse.mjs under Node) then reads the output of
every zoo spec and a set of hostile labels.  Those tests need ``npm ci --prefix tools/mermaid``
and skip with that command when it has not been run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_support import run

from archdsl.backends import mermaid
from archdsl.backends import render as R
from archdsl.pipeline import analyze

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
ZOO = sorted([*SPECS.glob("*.arch"), *SPECS.glob("*.yaml")])
TOOL = ROOT / "tools" / "mermaid"
INSTALL = "npm ci --prefix tools/mermaid"
needs_mermaid = pytest.mark.skipif(
    shutil.which("node") is None or not (TOOL / "node_modules" / "mermaid").is_dir(),
    reason=f"Mermaid's parser is not installed: run '{INSTALL}' (needs Node 20 or later)")

HOSTILE = [
    '"]; click n0 call alert(1); %% x',
    "<script>alert(1)</script><br><b>bold</b>",
    "#quot; #35; &amp; &lt; #lt;",
    "end",
    "style:#35; classDef x fill:#f00;",
    "`**markdown** string`",
    "a|b --> c -.-> d",
    "[x] (y) {z} /w\\ ((v)) >u]",
    "control \x1b[31m red \x07 bell",
    "bidi \u202e reversed \u2066 isolate",
    "unicode 3×224×224 ✓ 中文",
]


def _model(spec: Path, depth: int | None = None, **params: str):
    res = analyze(spec, params)
    assert res.ok and res.graph is not None, [d.message for d in res.diags]
    model = R.build_model(res.graph)
    return model, R.initial_open(model, depth)


def _mermaid(spec: Path, depth: int | None = None, direction: str = "TB") -> str:
    model, opened = _model(spec, depth)
    return mermaid.to_mermaid(model, opened, direction)


def _text(mermaid_text: str) -> str:
    """A label as Mermaid will draw it: its character references (``&#34;``) decoded."""
    return re.sub(r"&#([0-9]+);", lambda m: chr(int(m.group(1))), mermaid_text)


def _parse(files: list[Path], max_edges: int | None = None) -> dict[str, dict]:
    """What Mermaid's parser read from each file (one Node process for all of them)."""
    env = dict(os.environ, **({"ARCHDSL_MERMAID_MAX_EDGES": str(max_edges)} if max_edges else {}))
    proc = subprocess.run(["node", str(TOOL / "parse.mjs"), "--dump", *map(str, files)], capture_output=True,
                          text=True, env=env, timeout=600)
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == len(files), proc.stderr
    return {r["file"]: r for r in results}


# ---------------------------------------------------------------------------------------- python


def test_escape_text_leaves_nothing_mermaid_reads() -> None:
    for text in HOSTILE:
        out = mermaid.escape_text(text)
        assert not set(out) & set('"<>&`|\\') and out.isprintable()
        assert "style" not in out and "classDef" not in out
        assert re.sub(r"#[0-9]+;", "", out).count("#") == 0  # every '#' starts an entity we wrote
        assert _text(re.sub(r"#([0-9]+);", r"&#\1;", out)) == text


def test_label_lines_undo_the_dot_label() -> None:
    assert mermaid.label_lines('<<B>conv 3×3, 64</B><BR/><FONT POINT-SIZE="8">conv1 &amp; &lt;x&gt;</FONT>>') == \
        ["conv 3×3, 64", "conv1 & <x>"]


def test_flowchart_structure_resnet18() -> None:
    text = _mermaid(SPECS / "resnet18.arch", depth=2)
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    assert '  n0(["input 3×224×224"])' in lines
    assert '  n1("conv 7×7 /2, 64<br>conv1")' in lines
    assert '  subgraph s0["layer1: ResLayer"]' in lines
    assert '    s1[["layer1.0<br>BasicBlock<br>74.0K params"]]' in lines
    assert '  n0 -->|"3×224×224"| n1' in lines and '  s14 -->|"512×7×7"| n67' in lines
    assert lines.count("  end") == 4  # the four open stages; their blocks are collapsed at depth 2
    ids = re.findall(r"^\s*(?:subgraph )?([^\s(\[\"]+)[(\[]", text, re.MULTILINE)
    assert ids and all(re.fullmatch(r"[ns]\d+", i) for i in ids)  # generated ids only


def test_merges_aux_heads_and_direction() -> None:
    text = _mermaid(SPECS / "googlenet.arch", direction="LR")
    assert text.startswith("flowchart LR\n")
    assert re.search(r'^\s+n\d+\[/"concat"\\\]$', text, re.MULTILINE)  # a trapezoid, as the funnel
    assert re.search(r"^  n\d+ -\.->", text, re.MULTILINE)  # the aux heads leave the trunk dotted
    res = _mermaid(SPECS / "resnet50.arch")
    assert re.search(r'^\s+n\d+\(\("\+"\)\)$', res, re.MULTILINE)  # add: a circle


def test_edges_and_clusters_match_the_graphviz_view() -> None:
    model, opened = _model(SPECS / "inception_v3.arch", depth=2)
    text = mermaid.to_mermaid(model, opened)
    dot = R.to_dot(model, opened)
    edges = re.findall(r"^  ([ns]\d+) -\.?->", text, re.MULTILINE)
    assert len(edges) == len(re.findall(r"^\s+[ns]\d+ -> [ns]\d+", dot, re.MULTILINE))
    assert text.count("subgraph ") == dot.count("subgraph cluster_")


def test_deterministic() -> None:
    assert _mermaid(SPECS / "densenet121.arch", depth=3) == _mermaid(SPECS / "densenet121.arch", depth=3)


def test_render_writes_mmd_without_graphviz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(R, "find_dot", lambda: None)
    out = tmp_path / "net.mmd"
    rc, _, err = run("render", str(SPECS / "resnet18.arch"), "-o", str(out), "--no-rules")
    assert rc == 0 and err.strip() == f"wrote {out}"
    assert out.read_text(encoding="utf-8") == _mermaid(SPECS / "resnet18.arch")


def test_format_option_and_depth(tmp_path: Path) -> None:
    out = tmp_path / "net.txt"
    rc, _, err = run("render", str(SPECS / "resnet18.arch"), "-o", str(out), "--format", "mmd", "--depth", "1",
                     "--no-rules")
    assert rc == 0, err
    assert out.read_text(encoding="utf-8") == _mermaid(SPECS / "resnet18.arch", depth=1)


def test_too_big_for_code_hosts_names_a_depth_that_fits(tmp_path: Path) -> None:
    out = tmp_path / "d.mmd"
    rc, _, err = run("render", str(SPECS / "densenet201.arch"), "-o", str(out), "--no-rules")
    assert rc == 0
    assert "806 edges (Mermaid draws at most 500)" in err and "characters (at most 50,000)" in err
    assert "--depth 3 fits" in err
    assert mermaid.over_limits(_mermaid(SPECS / "densenet201.arch", depth=3)) == []
    assert mermaid.over_limits(_mermaid(SPECS / "densenet201.arch", depth=4)) != []


def test_rule_findings_are_outlined(tmp_path: Path) -> None:
    spec = tmp_path / "finding.arch"  # a conv bias that the batchnorm after it cancels: R401
    spec.write_text("network finding\ninput 3x32x32\nconv2d(8, 3, padding = 1) -> batchnorm -> relu\n"
                    "global_avgpool -> flatten -> linear(10)\n", encoding="utf-8")
    out = tmp_path / "p.mmd"
    rc, _, err = run("render", str(spec), "-o", str(out))
    assert rc == 0 and "outlined in red" in err
    text = out.read_text(encoding="utf-8")
    assert '  n1("conv 3×3, 8<br>R401")' in text
    assert "  style n1 stroke:#D50000,stroke-width:3px" in text.splitlines()


# ---------------------------------------------------------------------------------------- mermaid


#: The zoo in this many parts, one Node process each, so that ``pytest -n 2`` parses them side by side.
CHUNKS = 3


@needs_mermaid
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_every_zoo_spec_parses_with_mermaid(chunk: int, tmp_path: Path) -> None:
    files, expected, too_big = [], {}, []
    for spec in ZOO[chunk::CHUNKS]:
        model, opened = _model(spec)
        text = mermaid.to_mermaid(model, opened)
        path = tmp_path / f"{spec.name}.mmd"
        path.write_text(text, encoding="utf-8")
        files.append(path)
        clusters = sum(s["id"] in opened for s in model.scopes)
        expected[str(path)] = (set(R.drawn_items(model, opened)), len(R.visible_edges(model, opened)), clusters)
        if mermaid.over_limits(text):
            too_big.append((spec, model, opened, text))
    # every full-depth diagram is valid Mermaid (the edge limit raised: the syntax is what is checked here)
    results = _parse(files, max_edges=100_000)
    for path in files:
        r = results[str(path)]
        assert r["ok"], f"{path.name}: {r['error']}"
        assert r["type"] == "flowchart-v2"
        items, edges, clusters = expected[str(path)]
        assert {v[0] for v in r["vertices"]} == items, path.name  # every node, no stray one
        assert len(r["edges"]) == edges and len(r["subgraphs"]) == clusters, path.name
    # those too big for code hosts draw at the depth the note names, under Mermaid's default limits
    fitted = []
    for spec, model, opened, text in too_big:
        depth = int(re.search(r"--depth (\d+) fits", mermaid.size_note(model, opened, "TB", text)).group(1))
        path = tmp_path / f"{spec.name}.depth{depth}.mmd"
        path.write_text(mermaid.to_mermaid(model, R.initial_open(model, depth)), encoding="utf-8")
        fitted.append(path)
    default = _parse(fitted)
    assert all(r["ok"] for r in default.values()), [r["error"] for r in default.values()]


@needs_mermaid
def test_edge_limit_is_mermaids(tmp_path: Path) -> None:
    text = _mermaid(SPECS / "resnet152.arch")  # 566 edges at full depth
    assert mermaid.over_limits(text) == ["566 edges (Mermaid draws at most 500)"]
    path = tmp_path / "r152.mmd"
    path.write_text(text, encoding="utf-8")
    assert "Edge limit exceeded" in _parse([path])[str(path)]["error"]


@needs_mermaid
def test_hostile_labels_read_back_as_written(tmp_path: Path) -> None:
    lines = ["flowchart TB"]
    for i, text in enumerate(HOSTILE):
        lines.append(f'  n{i}("{mermaid.escape_text(text)}")')
        if i:
            lines.append(f'  n{i - 1} -->|"{mermaid.escape_text(text)}"| n{i}')
    lines.append(f'  subgraph s0["{mermaid.escape_text(HOSTILE[0])}"]\n    n0\n  end')
    path = tmp_path / "hostile.mmd"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = _parse([path])[str(path)]
    assert r["ok"], r["error"]
    assert [v[0] for v in r["vertices"]] == [f"n{i}" for i in range(len(HOSTILE))]  # nothing injected
    assert [_text(v[1]) for v in r["vertices"]] == HOSTILE
    assert [_text(e[2]) for e in r["edges"]] == HOSTILE[1:]
    assert [_text(s[1]) for s in r["subgraphs"]] == [HOSTILE[0]]


@needs_mermaid
def test_shapes_as_mermaid_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "g.mmd"
    path.write_text(_mermaid(SPECS / "googlenet.arch", depth=2), encoding="utf-8")
    res = tmp_path / "r.mmd"
    res.write_text(_mermaid(SPECS / "resnet18.arch"), encoding="utf-8")
    parsed = _parse([path, res])
    shapes = {v[2] for r in parsed.values() for v in r["vertices"]}
    assert {"stadium", "round", "subroutine", "trapezoid", "circle"} <= shapes
    assert all(r["ok"] for r in parsed.values())
