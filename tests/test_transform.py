"""`archdsl transform --factorize`: AST rewrites that keep shapes and receptive fields and save what they say."""

from __future__ import annotations

import difflib
import re
import shutil
import textwrap
from pathlib import Path

import pytest
from cli_support import run

from archdsl.diagnostics import Diagnostic
from archdsl.pipeline import analyze
from archdsl.rules import RuleRequest, lint
from archdsl.transforms.factorize import (
    Kinds,
    TransformError,
    left_alone,
    match,
    parse_grid,
    parse_kinds,
    report_table,
    rewritable,
    rewrite,
    transform,
    why_not,
)

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


def test_googlenet_paper_acceptance(paper: Path, tmp_path: Path) -> None:
    before = analyze(paper)
    found = [d for d in lint(before, NO_PYPROJECT) if d.code in ("R301", "R302")]
    r301 = sorted(d.path for d in found if d.code == "R301")
    r302 = sorted(d.path for d in found if d.code == "R302")
    # every 5x5 branch: 3a, 3b, 5a, 5b (28x28 and 7x7 grids) stacked, 4a ... 4e (14x14) asymmetric
    assert r301 == [f"inception{m}.branch3.1.conv" for m in ("3a", "3b", "5a", "5b")]
    assert r302 == [f"inception4{m}.branch3.1.conv" for m in "abcde"]
    # the commands the hints name apply to their findings
    assert set(r301) <= rewritable(before, "5x5") and set(r302) <= rewritable(before, "asym")
    out_path = tmp_path / "new.arch"
    rc, out, err = run("transform", str(paper), "--factorize", "-o", str(out_path))
    assert rc == 0, err
    after = analyze(out_path)
    assert after.ok
    # checks clean of those findings
    assert not [d for d in lint(after, NO_PYPROJECT) if d.code in ("R301", "R302")]
    rc, _, err = run("check", str(out_path), "--select", "R301,R302", "--strict")
    assert rc == 0 and "R301" not in err and "R302" not in err
    # keeps every output shape (main and both aux heads)
    assert outputs(after) == outputs(before)
    # fewer params and MACs, by the amounts printed
    dp = after.graph.total_params() - before.graph.total_params()
    dm = after.graph.eval_macs() - before.graph.eval_macs()
    assert dp < 0 and dm < 0
    assert _printed(out, "params") == dp and _printed(out, r"MACs \(eval\)") == dm
    # the rules' figures are the rewrite's: the weights the findings promised are the weights written
    promised = sum(d.evidence["weights_before"] - d.evidence["weights_after"] for d in found)
    biases = sum(d.evidence["mid"] for d in found)          # each new intermediate conv brings its biases
    assert -dp == promised - biases
    assert -dm == sum(d.evidence["macs_before"] - d.evidence["macs_after"] for d in found
                      if not d.path.startswith("aux"))


def test_googlenet_paper_5x5_rewrites_the_block_once(paper: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "new.arch"
    rc, out, err = run("transform", str(paper), "--factorize=5x5", "-o", str(out_path))
    assert rc == 0, err
    # readable: the use of the spec's own conv unit, the block kept, the width as a let
    text = out_path.read_text()
    assert "let ch5x5_mid = 2 * ch5x5red * ch5x5 // (ch5x5red + ch5x5)" in text
    assert "Conv(ch5x5red, 1) -> Conv(ch5x5_mid, 3, padding = 1) -> Conv(ch5x5, 3, padding = 1)" in text
    assert text.count("block Inception(") == 1 and "InceptionAsym" not in text
    assert "inception3a.branch3.1  5x5 -> 3x3 + 3x3  12,832 -> 9,125" in out
    assert "total                  9 convs" in out
    assert outputs(analyze(out_path)) == outputs(analyze(paper))


def test_googlenet_paper_every_rewritten_node_keeps_shape_and_receptive_field(paper: Path) -> None:
    result = transform(str(paper), parse_kinds("5x5,7x7,asym"))
    matched, problems = match(result.before, result.after, _replacements(result))
    assert problems == [] and len(matched) == 9                # the 5x5 branches; 3x3s stay (asym3 takes them)
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
    assert "total                  9 convs" in out


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
    assert rc == 1 and out == "" and not (tmp_path / "o.arch").exists()
    assert "note: a: its kernel size comes from an expression; write it as a literal to let `archdsl transform` " \
        "rewrite it\n" in err
    assert f"archdsl transform: nothing to rewrite in {spec}: 1 qualifying conv left alone: its kernel size" in err
    rc, out, err = run("transform", str(ROOT / "specs" / "inception_resnet_v2.arch"), "--factorize", "-o",
                       str(tmp_path / "r.arch"))
    assert rc == 1 and not (tmp_path / "r.arch").exists()
    assert "note: mixed_5b.branch1.1.conv: defined in " in err and "(an imported file); copy the block into the " \
        "spec to let `archdsl transform` rewrite it" in err


def test_mixed_instances_of_a_top_level_repeat_are_left_alone(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        network t
        input 8x28x28
        repeat(2) { conv2d(8, 3, padding = 1) -> maxpool(2, stride = 2) }
        """)
    result = transform(str(spec), parse_kinds("asym3"))
    assert result.rewrites == [] and any("need different rewrites" in n for n in result.notes)
    assert result.notes == ["2: its instances need different rewrites (different grids or widths); write "
                            "them as separate calls to let `archdsl transform` rewrite it"]


def test_yaml_output_and_table(tmp_path: Path, paper: Path) -> None:
    out = tmp_path / "g.yaml"
    rc, table, err = run("transform", str(paper), "--factorize=5x5", "-o", str(out))
    assert rc == 0, err
    assert analyze(out).graph.total_params() == analyze(paper).graph.total_params() + _printed(table, "params")
    lines = table.splitlines()
    assert lines[0].split() == ["module", "rewrite", "params", "MACs"]
    assert err.endswith(f"wrote {out}\n") and "wrote" not in table   # stdout: the table alone


def test_options(tmp_path: Path) -> None:
    assert parse_kinds("5x5, 7x7,asym") == Kinds(frozenset({5, 7}), True)
    assert parse_kinds("asym3") == Kinds(frozenset(), True, True)
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
    result = transform(str(spec), parse_kinds("asym3"), (24, 32))
    assert [r.factors for r in result.rewrites] == [["1x3", "3x1"]]
    assert report_table(result).splitlines()[-1].startswith("params: ")


def test_broken_spec_is_reported(tmp_path: Path) -> None:
    spec = write(tmp_path, "network t\ninput 8x8x8\nconv2d(8, 99)\n")
    rc, out, err = run("transform", str(spec), "--factorize", "-o", str(tmp_path / "o.arch"))
    assert rc == 1 and "E204" in err and not (tmp_path / "o.arch").exists()


def test_zoo_transforms_verify(tmp_path: Path) -> None:
    """Every zoo spec either rewrites cleanly (verified) or is left alone with notes."""
    for name, kinds in (("inception_v3", "5x5,7x7,asym"), ("bn_inception", "asym3"), ("googlenet", "asym3")):
        result = transform(str(ROOT / "specs" / f"{name}.arch"), parse_kinds(kinds))
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


# ------------------------------------------------------------------------------ comments: the source's own text


COMMENTED = """
    # header comment: kept
    network t   # trailing on the header
    input 16x28x28

    # comment above the block
    block B(c, d) {
        # comment above the first statement
        conv2d(c, 1) -> relu -> conv2d(d, 5, padding = 2) -> relu   # trailing on a rewritten line
        conv2d(d, 1)   # trailing on an untouched line
    }

    # comment above the body
    x: B(16, 32)       # first instance
    x2: B(24, 32)
    z: conv2d(64, 5, padding = 2)   # rewritten at top level
    w: conv2d(64, 3, padding = 1)   # untouched
    """


def test_comments_are_kept_and_untouched_lines_are_byte_identical(tmp_path: Path) -> None:
    spec = write(tmp_path, COMMENTED)
    out = tmp_path / "o.arch"
    rc, table, err = run("transform", str(spec), "--factorize=5x5", "-o", str(out))
    assert rc == 0, err
    src = spec.read_text().splitlines(keepends=True)
    want = list(src)
    want[7] = ("    conv2d(c, 1) -> relu -> conv2d(d_mid, 3, padding = 1) -> relu -> conv2d(d, 3, padding = 1) -> relu"
               "   # trailing on a rewritten line\n")
    want[14] = "z_1: conv2d(42, 3, padding = 1) -> relu -> z_2: conv2d(64, 3, padding = 1)   # rewritten at top level\n"
    want.insert(6, "    let d_mid = 2 * c * d // (c + d)\n")        # above the comment over the first statement
    assert out.read_text() == "".join(want)
    assert [r.path for r in transform(str(spec), parse_kinds("5x5")).rewrites] == ["x.2", "x2.2", "z"]
    assert outputs(analyze(out)) == outputs(analyze(spec))
    assert "note:" not in err


def test_a_clone_is_the_block_text_with_its_comments(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        network k
        input 16x28x28

        block B(c) {
            # inside the block
            conv2d(c, 5, padding = 2) -> relu   # the 5x5
        }   # end of B

        x: B(16)          # 28x28: stacked
        maxpool(2, stride = 2)
        y: B(16)          # 14x14: asymmetric
        """)
    out = tmp_path / "o.arch"
    rc, table, err = run("transform", str(spec), "--factorize", "-o", str(out))
    assert rc == 0, err
    assert out.read_text() == textwrap.dedent("""\
        network k
        input 16x28x28

        block B(c) {
            # inside the block
            conv2d(16, 3, padding = 1) -> relu -> conv2d(c, 3, padding = 1) -> relu   # the 5x5
        }   # end of B

        block BAsym(c) {
            # inside the block
            conv2d(16, [1, 5], padding = [0, 2]) -> relu -> conv2d(c, [5, 1], padding = [2, 0]) -> relu   # the 5x5
        }

        x: B(16)          # 28x28: stacked
        maxpool(2, stride = 2)
        y: BAsym(16)          # 14x14: asymmetric
        """)


def test_googlenet_paper_only_the_rewritten_lines_change(paper: Path, tmp_path: Path) -> None:
    out = tmp_path / "new.arch"
    rc, _, err = run("transform", str(paper), "--factorize", "-o", str(out))
    assert rc == 0, err
    old, new = paper.read_text().splitlines(), out.read_text().splitlines()
    changed = []
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            changed += old[i1:i2]
    assert len(changed) == 6
    assert "Conv(ch5x5, 5, padding = 2)" in changed[0]
    assert all(re.match(r"inception4[a-e]: Inception\(", line) for line in changed[1:])
    assert sum(line.lstrip().startswith("#") for line in old) == sum(line.lstrip().startswith("#") for line in new)


def test_yaml_output_keeps_the_leading_comments(tmp_path: Path) -> None:
    spec = write(tmp_path, COMMENTED)
    out = tmp_path / "o.yaml"
    rc, _, err = run("transform", str(spec), "--factorize=5x5", "-o", str(out))
    assert rc == 0, err
    assert out.read_text().startswith("# header comment: kept\n\nnetwork: t\n")
    assert "note: comments below the leading comment block are not carried into printed YAML output" in err
    assert outputs(analyze(out)) == outputs(analyze(spec))


# ------------------------------------------------------------------------------ nothing to rewrite, left alone


def test_nothing_to_rewrite_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    spec = write(tmp_path, "network t\ninput 8x14x14\nconv2d(8, 3, padding = 1)\n")
    out = tmp_path / "o.arch"
    out.write_text("ORIGINAL\n")
    rc, stdout, err = run("transform", str(spec), "--factorize", "-o", str(out))
    assert rc == 1 and stdout == "" and out.read_text() == "ORIGINAL\n"
    assert err == (f"archdsl transform: nothing to rewrite in {spec}: no conv qualifies: --factorize rewrites a "
                   f"5x5 or 7x7 conv with stride 1, dilation 1, groups 1 (stacked 3x3); an odd n x n conv, n >= 5, "
                   f"with stride 1, dilation 1, groups 1, on an input grid within 12..20 (asym)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.arch", "t.arch"]


def test_asym_leaves_3x3_alone_unless_asked(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        network t
        input 8x14x14
        a: conv2d(8, 3, padding = 1)
        b: conv2d(8, 5, padding = 2)
        """)
    res = analyze(spec)
    assert rewritable(res, "asym") == {"b"} and left_alone(res, "asym") == {}
    assert rewritable(res, "asym3") == {"a", "b"}
    assert [r.factors for r in transform(str(spec), parse_kinds("asym")).rewrites] == [["1x5", "5x1"]]
    assert [r.factors for r in transform(str(spec), parse_kinds("asym3")).rewrites] == [["1x3", "3x1"],
                                                                                         ["1x5", "5x1"]]


def test_imported_site_is_left_alone_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    write(tmp_path, """
        block L(c) {
            conv2d(c, 5, padding = 2)
            relu
        }
        """, "lib/l.arch")
    spec = write(tmp_path, """
        network t(k = 5)
        input 8x28x28
        use "lib/l.arch"
        a: L(8)
        b: conv2d(8, k, padding = 2)
        c: conv2d(8, 3, padding = 1)
        """)
    res = analyze(spec)
    assert rewritable(res, "5x5") == frozenset()
    lib = f"{tmp_path / 'lib' / 'l.arch'}:2"
    assert left_alone(res, "5x5") == {
        "a.0": f"defined in {lib} (an imported file); copy the block into the spec to let `archdsl transform` "
               f"rewrite it",
        "b": "its kernel size comes from an expression; write it as a literal to let `archdsl transform` rewrite it",
    }
    assert why_not(res, "5x5", None, "a.0").startswith("defined in ") and why_not(res, "5x5", None, "c") is None
    rc, out, err = run("transform", str(spec), "--factorize=5x5", "-o", str(tmp_path / "o.arch"))
    assert rc == 1 and not (tmp_path / "o.arch").exists()
    assert err.count("note: ") == 2 and f"note: a.0: defined in {lib} (an imported file)" in err
    assert "nothing to rewrite in" in err and ": 2 qualifying convs left alone: defined in" in err


# ------------------------------------------------------------------------------ rewritable() is what transform does


ZOO = sorted((ROOT / "specs").glob("*.arch"))


@pytest.mark.parametrize("spec", ZOO, ids=lambda p: p.stem)
def test_rewritable_agrees_with_transform(spec: Path) -> None:
    res = analyze(spec)
    assert res.ok
    for kind in ("5x5", "7x7", "asym"):
        paths = rewritable(res, kind)
        result = rewrite(res, parse_kinds(kind))
        assert paths == {r.conv_path for r in result.rewrites}, kind
        left = left_alone(res, kind)
        assert not set(left) & paths and "left alone" not in left.values()
        assert set(left) == set(result.left)
    expected = {
        "googlenet_paper": {"5x5": 9, "7x7": 0, "asym": 5},
        "inception_v3": {"5x5": 3, "7x7": 0, "asym": 0},
        "inception_v4": {"5x5": 0, "7x7": 0, "asym": 0},
        "inception_resnet_v2": {"5x5": 0, "7x7": 0, "asym": 0},
    }.get(spec.stem)
    if expected is not None:
        assert {k: len(rewritable(res, k)) for k in expected} == expected
    if spec.stem == "inception_resnet_v2":                   # the 5x5 sits in specs/lib: empty, with the reason
        assert left_alone(res, "5x5") == {"mixed_5b.branch1.1.conv": left_alone(res, "5x5")["mixed_5b.branch1.1.conv"]}
        assert "copy the block into the spec to let `archdsl transform` rewrite it" in \
            why_not(res, "5x5", None, "mixed_5b.branch1.1.conv")


# ------------------------------------------------------------------------------ the splicer


def test_splice_one_line_block_inner_comments_and_labels(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        network e
        input 16x28x28
        block B(c) { conv2d(c, 1) -> conv2d(c, 5, padding = 2) }   # one-line block
        `repeat`: conv2d(16, 5,   # kernel
            padding = 2) -> relu    # after
        y: B(16)
        z: B(24)
        """)
    out = tmp_path / "o.arch"
    rc, _, err = run("transform", str(spec), "--factorize=5x5", "-o", str(out))
    assert rc == 0, err
    assert out.read_text() == textwrap.dedent("""\
        network e
        input 16x28x28
        block B(c) { let c_mid = 2 * c * c // (c + c) conv2d(c, 1) -> conv2d(c_mid, 3, padding = 1) -> relu -> conv2d(c, 3, padding = 1) }   # one-line block
        repeat_1: conv2d(16, 3, padding = 1) -> relu -> repeat_2: conv2d(16, 3, padding = 1)  # kernel
         -> relu    # after
        y: B(16)
        z: B(24)
        """)


def test_splice_global_lets_go_above_the_network_body() -> None:
    from archdsl import ast as A
    from archdsl.frontend.loader import parse_source
    from archdsl.transforms.splice import Edits, splice

    text = "network t\ninput 3x8x8\nlet a = 1\n\n# the body\nconv2d(a, 1)   # c\n"
    spec = parse_source(text, "t.arch")
    new = splice(text, spec, Edits(top_lets=[A.Let("b", A.Num(2))]))
    assert new == "network t\ninput 3x8x8\nlet a = 1\n\nlet b = 2\n# the body\nconv2d(a, 1)   # c\n"
    assert parse_source(new, "t.arch").lets == (A.Let("a", A.Num(1)), A.Let("b", A.Num(2)))
    late = text + "let z = 3\n"                 # a let below the body: the new one goes last
    assert splice(late, parse_source(late, "t.arch"), Edits(top_lets=[A.Let("b", A.Num(2))])) == late + "let b = 2\n"


def test_when_splicing_fails_the_printer_writes_it_with_the_leading_comments(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from archdsl.transforms import factorize as F
    from archdsl.transforms.splice import SpliceError

    def broken(*_: object) -> str:
        raise SpliceError("no token at 1:1")

    monkeypatch.setattr(F, "splice", broken)
    spec = write(tmp_path, COMMENTED)
    out = tmp_path / "o.arch"
    rc, _, err = run("transform", str(spec), "--factorize=5x5", "-o", str(out))
    assert rc == 0, err
    assert "note: could not splice the rewrite into the source (no token at 1:1); printed the spec instead" in err
    assert out.read_text().startswith("# header comment: kept\n\nnetwork t\n")
    assert "# trailing on a rewritten line" not in out.read_text()


# ------------------------------------------------------------------------------ review fixes


def test_gate_body_is_rewritten_and_a_narrow_attention_conv_is_left_alone(tmp_path: Path) -> None:
    # a wide conv inside a gate is rewritten like any other (the gate's sigmoid is not copied between factors)
    wide = write(tmp_path, """
        network tg(num_classes = 10)
        input 3x40x40
        stem: conv2d(80, 3, padding = 1, bias = false) -> batchnorm -> relu
        g: gate { conv2d(80, 5, padding = 2) -> sigmoid }
        global_avgpool -> flatten -> linear(num_classes)
        """, "wide.arch")
    res = analyze(wide)
    assert rewritable(res, "5x5") == {"g.0"} and left_alone(res, "5x5") == {}
    out = tmp_path / "wide_o.arch"
    rc, table, err = run("transform", str(wide), "--factorize=5x5", "-o", str(out))
    assert rc == 0, err
    assert ("g: gate { conv2d(80, 3, padding = 1) -> relu -> conv2d(80, 3, padding = 1) -> sigmoid }"
            in out.read_text())
    assert outputs(analyze(out)) == outputs(res)
    # the reviewer's spatial attention: a 1-channel map, outside the rules' domain -> left alone, with why
    spec = write(tmp_path, """
        # gate only
        network tg(num_classes = 10)
        input 3x40x40
        stem: conv2d(80, 3, padding = 1, bias = false) -> batchnorm -> relu
        g: gate { conv2d(1, 5, padding = 2) -> sigmoid }   # spatial attention
        global_avgpool -> flatten -> linear(num_classes)
        """, "e7_gate.arch")
    res = analyze(spec)
    why = ("it has 1 channel on one side (fewer than 8): its factors would meet in a 1-channel bottleneck, not an "
           "equivalent of the 5x5 conv (the rules do not suggest it either); factorize it by hand if you want it "
           "anyway")
    assert rewritable(res, "5x5") == frozenset() and left_alone(res, "5x5") == {"g.0": why}
    assert why_not(res, "5x5", None, "g.0") == why
    result = rewrite(res, parse_kinds("5x5"))
    assert result.rewrites == [] and result.left == {"g.0": why}
    rc, stdout, err = run("transform", str(spec), "--factorize=5x5", "-o", str(tmp_path / "o.arch"))
    assert rc == 1 and stdout == "" and f"note: g.0: {why}\n" in err and "replacement was not found" not in err
    assert "R301" not in rule_codes(spec)       # and no rule suggests it

STRESS = """
    network tf(num_classes = 10)
    input 3x40x40
    stem: conv2d(32, 3, padding = 1, bias = false) -> batchnorm -> relu
    r: repeat(2) as i { conv2d(32 + 16 * i, 5, padding = 2, bias = false) -> batchnorm -> relu }
    res: residual { conv2d(80, 3, padding = 1, bias = false) -> batchnorm } shortcut sc { s5: conv2d(80, 5, padding = 2, bias = false) -> batchnorm }
    bad: conv2d(80, 5, padding = 2, bias = false) -> batchnorm -> relu
    g: gate { conv2d(1, 5, padding = 2) -> sigmoid }
    aux(weight = 0.3) a1: { conv2d(32, 5, padding = 2) -> relu -> global_avgpool -> flatten -> linear(num_classes) }
    global_avgpool -> flatten -> linear(num_classes)
    """


def test_a_site_that_does_not_verify_never_blocks_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from archdsl import ast as A
    from archdsl.transforms import factorize as F

    spec = write(tmp_path, STRESS)
    res = analyze(spec)
    assert rewritable(res, "5x5") == {"a1.0", "res.sc.s5", "bad"}
    assert set(left_alone(res, "5x5")) == {"r.0.0", "r.1.0", "g.0"}
    assert {r.conv_path for r in rewrite(res, parse_kinds("5x5")).rewrites} == {"a1.0", "res.sc.s5", "bad"}
    real = F._new_calls

    def wrong_padding(site, rw, counter):           # a rewrite that changes the site's output shape
        calls, locs, final = real(site, rw, counter)
        if site.call.label in ("bad", "s5"):
            last = calls[-1]
            calls[-1] = A.Call(last.name, F._with_args(last, F.CONV_PARAMS, {"padding": A.Num(0)}), last.label,
                               last.loc)
        return calls, locs, final

    monkeypatch.setattr(F, "_new_calls", wrong_padding)
    result = rewrite(analyze(spec), parse_kinds("5x5"))
    assert [r.conv_path for r in result.rewrites] == ["a1.0"]
    # pinned on its site by the verification
    assert result.left["bad"] == ("its rewrite did not verify (bad: output shape (80, 40, 40) became (80, 38, 38)); "
                                  "rewrite it by hand")
    # the residual no longer adds up: not pinned on a site by the checker, found by trying the sites one by one
    assert result.left["res.sc.s5"] == ("its rewrite did not verify (the rewritten spec does not check: E202 add "
                                        "inputs differ: body gives 80x40x40, shortcut gives 80x38x38); rewrite it by "
                                        "hand")
    assert any(n.startswith("bad: its rewrite did not verify") for n in result.notes)
    assert rewritable(res, "5x5") == {"a1.0", "res.sc.s5", "bad"}     # planned only: it cannot know (docs say so)

    def extra_node(site, rw, counter):              # a problem no single replacement owns: found site by site
        calls, locs, final = real(site, rw, counter)
        if site.call.label == "bad":
            calls.append(A.Call("relu", (), None, F._synth(counter)))
        return calls, locs, final

    monkeypatch.setattr(F, "_new_calls", extra_node)
    result = rewrite(analyze(spec), parse_kinds("5x5"))
    assert [r.conv_path for r in result.rewrites] == ["a1.0", "res.sc.s5"]
    why = result.left["bad"]
    assert why.startswith("its rewrite did not verify (") and "untouched nodes" in why


def test_bare_biased_conv_before_batchnorm_factors_drop_the_cancelled_bias(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        network fmix(num_classes = 10)
        input 256x8x8
        bare: conv2d(256, 7, padding = 3)  # bare 7x7 on 8x8
          -> batchnorm -> relu
        global_avgpool -> flatten -> linear(num_classes)
        """)
    before = analyze(spec)
    r401 = [d for d in lint(before, NO_PYPROJECT) if d.code == "R401"]
    assert len(r401) == 1
    out = tmp_path / "o.arch"
    rc, table, err = run("transform", str(spec), "--factorize=7x7", "-o", str(out))
    assert rc == 0, err
    assert ("bare_1: conv2d(256, 3, padding = 1, bias = false) -> batchnorm -> relu -> "
            "bare_2: conv2d(256, 3, padding = 1, bias = false) -> batchnorm -> relu -> "
            "bare_3: conv2d(256, 3, padding = 1)  # bare 7x7 on 8x8\n  -> batchnorm -> relu\n") in out.read_text()
    after = analyze(out)
    # one bias before BN stays one (the last factor keeps the original's bias)
    assert [d.evidence["layers"] for d in lint(after, NO_PYPROJECT) if d.code == "R401"] == [["bare_3"]]
    # the table prints the real params: the row and the totals are the graphs'
    g0, g1 = before.graph, after.graph
    dp = g1.total_params() - g0.total_params()
    assert _printed(table, "params") == dp
    row = next(line for line in table.splitlines() if line.startswith("bare "))
    factors = sum(g1.node(g1.by_path(p))["costs"].params for p in ("bare_1", "bare_2", "bare_3"))
    assert factors == 3 * 9 * 256 * 256 + 256                  # one bias: the last factor's
    assert f"3,211,520 -> {factors + 2 * 2 * 256:,}" in row     # + the two copied BNs' gamma and beta
    # the rule's promise (weights, without biases) and what is written: the copied BNs' gamma/beta added,
    # no intermediate biases
    (f,) = [d for d in lint(before, NO_PYPROJECT) if d.code == "R301"]
    promised = f.evidence["weights_before"] - f.evidence["weights_after"]
    bn_copies = 2 * 2 * f.evidence["mid"]
    assert -dp == promised - bn_copies
    assert not [d for d in lint(after, NO_PYPROJECT) if d.code == "R301"]


def test_a_clone_is_named_for_what_it_does_and_gets_the_width_expression(tmp_path: Path) -> None:
    # medium grid first, then a small one: the unchanged instances keep the block's name
    spec = write(tmp_path, """
        network m
        input 16x14x14
        block M(c) {
            concat {
                conv2d(c, 1)
                { conv2d(c // 2, 1) -> conv2d(c, 5, padding = 2) }
            }
        }
        y: M(32)          # 14x14: asymmetric
        maxpool(2, stride = 2)
        z: M(64)          # 7x7: left as written under --factorize=asym
        """)
    out = tmp_path / "o.arch"
    rc, table, err = run("transform", str(spec), "--factorize=asym", "-o", str(out))
    assert rc == 0, err
    text = out.read_text()
    assert "MStack" not in text and "block M(c) {" in text and "block MAsym(c) {" in text
    assert re.search(r"^y: MAsym\(32\)", text, re.M) and re.search(r"^z: M\(64\)", text, re.M)
    # one asymmetric instance, but its widths come from c: a let over c, not a literal
    assert "let c_mid = 2 * (c // 2) * c // (c // 2 + c)" in text
    assert "conv2d(c_mid, [1, 5], padding = [0, 2]) -> relu -> conv2d(c, [5, 1], padding = [2, 0])" in text
    assert outputs(analyze(out)) == outputs(analyze(spec))
    assert re.search(r"^total +1 conv +", table, re.M)
    # large grid first (GoogLeNet's Inception on 28x28 and 14x14): the original stays for the 28x28 call
    spec2 = write(tmp_path, """
        network m
        input 16x28x28
        block M(c) {
            concat {
                conv2d(c, 1)
                { conv2d(c // 2, 1) -> conv2d(c, 5, padding = 2) }
            }
        }
        x: M(32)          # 28x28
        maxpool(2, stride = 2)
        y: M(32)          # 14x14
        """, "m2.arch")
    result = transform(str(spec2), parse_kinds("asym"))
    from archdsl.frontend.printer import to_text

    text = to_text(result.spec)
    assert "block MAsym(c)" in text and "x: M(32)" in text and "y: MAsym(32)" in text
    assert "let c_mid = 2 * (c // 2) * c // (c // 2 + c)" in text and "42" not in text
    # and with both kinds, the first variant keeps the name (stacked), the clone says what it does
    text = to_text(transform(str(spec2), parse_kinds("5x5,asym")).spec)
    assert "x: M(32)" in text and "y: MAsym(32)" in text and "MStack" not in text


def test_table_pluralizes(tmp_path: Path) -> None:
    spec = write(tmp_path, "network t\ninput 16x28x28\na: conv2d(16, 5, padding = 2)\n")
    table = report_table(transform(str(spec), parse_kinds("5x5")))
    assert re.search(r"^total +1 conv +", table, re.M) and "1 convs" not in table
    spec = write(tmp_path, "network t\ninput 16x28x28\na: conv2d(16, 5, padding = 2)\nb: conv2d(16, 5, padding = 2)\n")
    assert re.search(r"^total +2 convs +", report_table(transform(str(spec), parse_kinds("5x5"))), re.M)


def test_aux_head_convs_are_rewritten_unless_the_conv_is_the_whole_aux_element(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        network ta(num_classes = 10)
        input 3x40x40
        stem: conv2d(80, 3, padding = 1, bias = false) -> batchnorm -> relu
        aux(weight = 0.3) a1: { conv2d(32, 5, padding = 2) -> relu -> global_avgpool -> flatten -> linear(num_classes) }
        aux(weight = 0.3) a2: conv2d(32, 5, padding = 2)
        global_avgpool -> flatten -> linear(num_classes)
        """)
    res = analyze(spec)
    # inside an aux head's body: rewritten and verified like any other conv, and the hint says so
    assert rewritable(res, "5x5") == {"a1.0"}
    (hint,) = [d.hint for d in lint(res, NO_PYPROJECT) if d.code == "R301" and d.path == "a1.0"]
    assert "`archdsl transform --factorize=5x5` writes it" in hint
    # the aux statement's whole element: it cannot become a chain, left alone with what to do
    assert left_alone(res, "5x5") == {"a2": "it is an aux head's whole element and cannot become a chain; wrap it "
                                            "in a group, `aux name: { conv2d(...) }`, to let `archdsl transform` "
                                            "rewrite it"}
    out = tmp_path / "o.arch"
    rc, table, err = run("transform", str(spec), "--factorize=5x5", "-o", str(out))
    assert rc == 0, err
    assert ("a1: { conv2d(45, 3, padding = 1) -> relu -> conv2d(32, 3, padding = 1) -> relu -> global_avgpool"
            in out.read_text())
    after = analyze(out)
    assert outputs(after) == outputs(res)
    # an aux head's MACs are not in the eval total: the rewrite saves params only there
    assert after.graph.eval_macs() == res.graph.eval_macs() and _printed(table, "params") < 0
