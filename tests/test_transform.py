"""`archdsl transform --factorize`: AST rewrites that keep shapes and receptive fields and save what they say."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest
from cli_support import run

from archdsl.diagnostics import Diagnostic
from archdsl.pipeline import analyze
from archdsl.rules import RuleRequest, lint
from archdsl.transforms.factorize import Kinds, TransformError, match, parse_grid, parse_kinds, report_table, transform

ROOT = Path(__file__).resolve().parents[1]
NO_PYPROJECT = RuleRequest(use_pyproject=False)


def write(tmp_path: Path, text: str, name: str = "t.arch") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


def rule_codes(path: Path) -> list[str]:
    res = analyze(path)
    assert res.ok, [f"{d.loc}: {d.code} {d.message}" for d in res.diags]
    return [d.code for d in lint(res, NO_PYPROJECT)]


def outputs(res) -> dict[str, tuple]:
    g = res.graph
    return {name: g.node(n)["shape"] for name, n in g.outputs.items()}


def _printed(out: str, what: str) -> int:
    m = re.search(rf"{what}: (-?[\d,]+) ", out)
    assert m, out
    return int(m.group(1).replace(",", ""))


# ------------------------------------------------------------------------------ googlenet_paper (acceptance)


@pytest.fixture
def paper(tmp_path: Path) -> Path:
    dst = tmp_path / "googlenet_paper.arch"
    shutil.copy(ROOT / "specs" / "googlenet_paper.arch", dst)
    return dst


def test_googlenet_paper_5x5_acceptance(paper: Path, tmp_path: Path) -> None:
    before = analyze(paper)
    r301 = [d for d in lint(before, NO_PYPROJECT) if d.code == "R301"]
    assert len(r301) == 9                                   # every 5x5 branch, 3a ... 5b
    out_path = tmp_path / "new.arch"
    rc, out, err = run("transform", str(paper), "--factorize=5x5", "-o", str(out_path))
    assert rc == 0, err
    after = analyze(out_path)
    assert after.ok
    # checks clean of those findings
    assert "R301" not in [d.code for d in lint(after, NO_PYPROJECT)]
    rc, _, err = run("check", str(out_path), "--select", "R301", "--strict")
    assert rc == 0 and "R301" not in err
    # keeps every output shape (main and both aux heads)
    assert outputs(after) == outputs(before)
    # fewer params and MACs, by the amounts printed
    dp = after.graph.total_params() - before.graph.total_params()
    dm = after.graph.eval_macs() - before.graph.eval_macs()
    assert dp < 0 and dm < 0
    assert _printed(out, "params") == dp and _printed(out, r"MACs \(eval\)") == dm
    # the rule's figures are the rewrite's: the weights R301 promised are the weights written
    promised = sum(d.evidence["weights_before"] - d.evidence["weights_after"] for d in r301)
    biases = sum(d.evidence["mid"] for d in r301)          # each new intermediate conv brings its biases
    assert -dp == promised - biases
    assert -dm == sum(d.evidence["macs_before"] - d.evidence["macs_after"] for d in r301
                      if not d.path.startswith("aux"))
    # readable: the use of the spec's own conv unit, the block kept, the width as a let
    text = out_path.read_text()
    assert "let ch5x5_mid = 2 * ch5x5red * ch5x5 // (ch5x5red + ch5x5)" in text
    assert "Conv(ch5x5red, 1) -> Conv(ch5x5_mid, 3, padding = 1) -> Conv(ch5x5, 3, padding = 1)" in text
    assert text.count("block Inception(") == 1 and "InceptionAsym" not in text
    assert "inception3a.branch3.1  5x5 -> 3x3 + 3x3  12,832 -> 9,125" in out


def test_googlenet_paper_every_rewritten_node_keeps_shape_and_receptive_field(paper: Path) -> None:
    result = transform(str(paper), parse_kinds("5x5,7x7,asym"))
    matched, problems = match(result.before, result.after, _replacements(result))
    assert problems == [] and len(matched) == 14
    og, ng = result.before.graph, result.after.graph
    for m in matched:
        assert og.node(m.old_out)["shape"] == ng.node(m.new_out)["shape"]
        assert og.node(m.old_out)["rf"] == ng.node(m.new_out)["rf"]
        assert m.row.params_after < m.row.params_before and m.row.macs_after < m.row.macs_before


def _replacements(result):
    # re-plan to get the replacement records (transform() verified them already)
    from archdsl.transforms.factorize import factorize

    _, reps, _ = factorize(result.before, parse_kinds("5x5,7x7,asym"), (12, 20))
    return reps


def test_googlenet_paper_default_clones_the_medium_grid_variant(paper: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "new.arch"
    rc, out, err = run("transform", str(paper), "--factorize", "-o", str(out_path))
    assert rc == 0, err
    text = out_path.read_text()
    assert "block InceptionAsym(ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) {" in text
    assert "Conv(ch5x5red, 1) -> Conv(ch5x5_mid, [1, 5], padding = [0, 2]) -> Conv(ch5x5, [5, 1], padding = [2, 0])" \
        in text
    for m in ("4a", "4b", "4c", "4d", "4e"):
        assert re.search(rf"^inception{m}: InceptionAsym\(", text, re.M)
    for m in ("3a", "3b", "5a", "5b"):
        assert re.search(rf"^inception{m}: Inception\(", text, re.M)
    codes = rule_codes(out_path)
    assert "R301" not in codes and "R302" not in codes and "R303" not in codes
    assert outputs(analyze(out_path)) == outputs(analyze(paper))
    assert "total                  14 convs" in out


# ------------------------------------------------------------------------------ units


def test_bare_conv_gets_the_spec_unit_between_factors(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        network t
        input 32x28x28
        c: conv2d(64, 5, padding = 2, bias = false) -> c_bn: batchnorm(eps = 0.001) -> c_relu: relu
        d: conv2d(64, 5, padding = 2)
        """)
    out = tmp_path / "o.arch"
    rc, table, err = run("transform", str(spec), "--factorize=5x5", "-o", str(out))
    assert rc == 0, err
    text = out.read_text()
    assert ("c_1: conv2d(42, 3, padding = 1, bias = false) -> c_bn_1: batchnorm(eps = 0.001) -> c_relu_1: relu "
            "-> c_2: conv2d(64, 3, padding = 1, bias = false) -> c_bn: batchnorm(eps = 0.001) -> c_relu: relu") in text
    # no unit after d: the paper's non-linearity goes between the factors
    assert "d_1: conv2d(64, 3, padding = 1) -> relu -> d_2: conv2d(64, 3, padding = 1)" in text
    assert outputs(analyze(out)) == outputs(analyze(spec))


def test_statement_style_block_and_positional_names(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        network t
        input 16x20x20
        block B(c) {
            conv2d(c, 7, padding = 3)
            batchnorm
            relu
        }
        b1: B(16)
        b2: B(16)
        """)
    result = transform(str(spec), parse_kinds("7x7"))
    assert [r.path for r in result.rewrites] == ["b1.0", "b2.0"]
    assert [r.factors for r in result.rewrites] == [["3x3", "3x3", "3x3"]] * 2
    og, ng = result.before.graph, result.after.graph
    assert og.node(og.by_path("b1.2"))["op"] == "relu"
    # the three factors, each with BN + ReLU, then the original BN + ReLU
    assert [ng.node(ng.by_path(f"b1.{i}"))["op"] for i in range(9)] == \
        ["conv2d", "batchnorm", "relu"] * 3
    assert ng.node(ng.by_path("b1.8"))["shape"] == og.node(og.by_path("b1.2"))["shape"]
    assert result.after.graph.total_params() < result.before.graph.total_params()


def test_unit_block_without_padding_parameter_and_unpadded_conv(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        network t
        input 8x16x16
        block U(out, k) {
            conv: conv2d(out, k, bias = false)
            bn: batchnorm
            relu
        }
        a: U(8, 5)
        """)
    result = transform(str(spec), parse_kinds("5x5"))
    text = __import__("archdsl.frontend.printer", fromlist=["to_text"]).to_text(result.spec)
    assert "a_1: U(8, 3) -> a_2: U(8, 3)" in text          # 16 -> 14 -> 12, as 5x5 unpadded: 16 -> 12
    assert outputs(result.after) == outputs(result.before)


def test_notes_when_a_site_cannot_be_rewritten(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        network t(k = 5)
        input 8x16x16
        a: conv2d(8, k, padding = 2)
        """)
    rc, out, err = run("transform", str(spec), "--factorize", "-o", str(tmp_path / "o.arch"))
    assert rc == 0 and "note: a: its kernel size comes from an expression; rewrite it by hand" in err
    assert "nothing to factorize" in out
    rc, out, err = run("transform", str(ROOT / "specs" / "resnet18.arch"), "--factorize", "-o",
                       str(tmp_path / "r.arch"))
    assert rc == 0 and "defined in" in err and "copy that block into the spec" in err


def test_mixed_instances_of_a_top_level_repeat_are_left_alone(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        network t
        input 8x28x28
        repeat(2) { conv2d(8, 3, padding = 1) -> maxpool(2, stride = 2) }
        """)
    result = transform(str(spec), parse_kinds("asym"))
    assert result.rewrites == [] and any("need different rewrites" in n for n in result.notes)


def test_yaml_output_and_table(tmp_path: Path, paper: Path) -> None:
    out = tmp_path / "g.yaml"
    rc, table, err = run("transform", str(paper), "--factorize=5x5", "-o", str(out))
    assert rc == 0, err
    assert analyze(out).graph.total_params() == analyze(paper).graph.total_params() + _printed(table, "params")
    lines = table.splitlines()
    assert lines[0].split() == ["module", "rewrite", "params", "MACs"]
    assert lines[-1].startswith("wrote ")


def test_options(tmp_path: Path) -> None:
    assert parse_kinds("5x5, 7x7,asym") == Kinds(frozenset({5, 7}), True)
    assert parse_grid("12..20") == (12, 20) and parse_grid("10-14") == (10, 14)
    for bad in ("3x3", "4x4", "5x7", "big", ""):
        with pytest.raises(TransformError):
            parse_kinds(bad)
    with pytest.raises(TransformError):
        parse_grid("20..12")
    spec = write(tmp_path, "network t\ninput 8x28x28\nconv2d(8, 3, padding = 1)\n")
    assert run("transform", str(spec), "-o", str(tmp_path / "o.arch"))[0] == 2       # no --factorize
    assert run("transform", str(spec), "--factorize=9x8", "-o", str(tmp_path / "o.arch"))[0] == 2
    # --grid moves the medium range
    result = transform(str(spec), parse_kinds("asym"), (24, 32))
    assert [r.factors for r in result.rewrites] == [["1x3", "3x1"]]
    assert report_table(result).splitlines()[-1].startswith("params: ")


def test_broken_spec_is_reported(tmp_path: Path) -> None:
    spec = write(tmp_path, "network t\ninput 8x8x8\nconv2d(8, 99)\n")
    rc, out, err = run("transform", str(spec), "--factorize", "-o", str(tmp_path / "o.arch"))
    assert rc == 1 and "E204" in err and not (tmp_path / "o.arch").exists()


def test_zoo_transforms_verify(tmp_path: Path) -> None:
    """Every zoo spec either rewrites cleanly (verified) or is left alone with notes."""
    for name in ("inception_v3", "bn_inception", "googlenet"):
        result = transform(str(ROOT / "specs" / f"{name}.arch"), parse_kinds("5x5,7x7,asym"))
        assert result.rewrites
        assert outputs(result.after) == outputs(result.before)
        assert result.after.graph.total_params() < result.before.graph.total_params()
        found = sorted(lint(result.after, NO_PYPROJECT), key=Diagnostic.sort_key)
        assert not [d for d in found if d.code in ("R301", "R302") and d.loc.file == "<transform>"]


def test_intermediate_width_as_a_let_over_block_parameters(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        network t
        input 16x28x28
        block B(a, b) {
            conv2d(a, 1) -> relu -> conv2d(b, 5, padding = 2) -> relu
        }
        block C(c) {
            concat {
                conv2d(c, 5, padding = 2)
                maxpool(3, stride = 1, padding = 1)
            }
        }
        x: B(16, 32)
        y: B(32, 64)
        z: C(16)
        w: C(32)
        """)
    result = transform(str(spec), parse_kinds("5x5"))
    from archdsl.frontend.printer import to_text

    text = to_text(result.spec)
    assert "let b_mid = 2 * a * b // (a + b)" in text
    assert "conv2d(a, 1) -> relu -> conv2d(b_mid, 3, padding = 1) -> relu -> conv2d(b, 3, padding = 1) -> relu" in text
    assert [r.path for r in result.rewrites] == ["x.2", "y.2"]
    # C's 5x5 reads the block input: its width has no expression, and the instances disagree
    assert any("the input width has no expression here" in n for n in result.notes)
    g = result.after.graph
    assert g.node(g.by_path("x.2"))["shape"] == (21, 28, 28) and g.node(g.by_path("y.2"))["shape"] == (42, 28, 28)
