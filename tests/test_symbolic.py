"""Symbolic input sizes (``input 3xHxW``): the domain, the expressions, and their exactness.

The expressions evaluated at concrete sizes must equal the concrete shape inference at every
node, and torch's own shapes; sizes just outside the domain must fail in the concrete pipeline
and in torch.  torchvision's inception_v3 was measured once (docs/language.md): eval at 75x75 runs,
74x74 fails; with the aux head, train at 299 runs, 298 fails.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from archdsl.cli import _parse_shape, main
from archdsl.ops import fmt_shape, pool_size
from archdsl.pipeline import analyze

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
INCEPTION = SPECS / "inception_v3.arch"


def _symbolic(spec, **params):
    res = analyze(spec, params, (3, "H", "W"))
    assert res.graph is not None and res.graph.symbolic is not None, res.diags.sorted()
    return res


def _codes(res, code: str) -> list:
    return [d for d in res.diags if d.code == code]


# ------------------------------------------------------------------------------------------ formulas


def test_pool_size_equals_pytorchs_direct_rule() -> None:
    """The closed form (a min with the last-window rule) equals the direct test everywhere."""
    for n in range(-3, 70):
        for k in range(1, 8):
            for s in range(1, 6):
                for d in (1, 2):
                    for p in range(0, k // 2 + 1):
                        eff = d * (k - 1) + 1
                        num = n + 2 * p - eff
                        out = -(-num // s) + 1
                        if (out - 1) * s >= n + p:
                            out -= 1
                        assert pool_size(n, k, s, p, d, True) == out
                        assert pool_size(n, k, s, p, d, False) == num // s + 1


def test_symbolic_floor_division_is_exact() -> None:
    from archdsl.passes import symbolic as S

    rng = random.Random(0)
    for _ in range(60):
        e, layers = S.SYMBOL["H"], []
        for _ in range(rng.randint(1, 4)):
            k, s, ceil = rng.randint(1, 5), rng.randint(1, 3), rng.random() < 0.5
            layers.append((k, s, min(rng.randint(0, 2), k // 2), ceil))
            e = S._absorb(pool_size(e, *layers[-1][:3], 1, ceil, S.sym_floordiv, S._sym_min))
        for h in range(20, 60):
            n = h
            for k, s, p, ceil in layers:
                n = pool_size(n, k, s, p, 1, ceil)
            assert S.evaluate(e, h, 0) == n


def test_expression_text() -> None:
    import sympy

    from archdsl.passes import symbolic as S

    H = S.SYMBOL["H"]
    assert S.expr_text(S.sym_floordiv(H - 1, 2)) == "\u230a(H\u22121)/2\u230b"
    # a chain of strided layers stays one bracket deep
    assert S.expr_text(S.sym_floordiv(S.sym_floordiv(H - 1, 2) - 2, 2)) == "\u230a(H\u22125)/4\u230b"
    # a ceil_mode pool after a strided conv (googlenet's maxpool1) folds too: ⌈(⌊(H+1)/2⌋−3)/2⌉+1 is
    # ⌊(H+1)/4⌋, not 1−⌊(3−⌊(H+1)/2⌋)/2⌋
    conv1 = S._absorb(pool_size(H, 7, 2, 3, 1, False, S.sym_floordiv, S._sym_min))
    pool1 = S._absorb(pool_size(conv1, 3, 2, 0, 1, True, S.sym_floordiv, S._sym_min))
    assert S.expr_text(pool1) == "\u230a(H+1)/4\u230b"
    for k, s in ((2, 2), (3, 2), (3, 3), (5, 3)):
        e = S._absorb(pool_size(conv1, k, s, 0, 1, True, S.sym_floordiv, S._sym_min))
        assert e.count(sympy.floor) + e.count(sympy.ceiling) == 1, (k, s, e)
        assert [S.evaluate(e, h, 0) for h in range(9, 90)] == \
            [pool_size(pool_size(h, 7, 2, 3, 1, False), k, s, 0, 1, True) for h in range(9, 90)]
    assert fmt_shape((64, S.sym_floordiv(H, 2), 7)) == "64 x \u230aH/2\u230b x 7"
    assert fmt_shape((64, 7, 7)) == "64x7x7"


# ------------------------------------------------------------------------------------------ front ends


def test_cli_input_accepts_the_symbols() -> None:
    assert _parse_shape("3xHxW") == (3, "H", "W")
    assert _parse_shape("3x224xW") == (3, 224, "W")
    assert _parse_shape("3x224x224") == (3, 224, 224)
    import argparse

    for bad in ("3xWxH", "3xhxw", "3xHxD", "CxHxW", "3xH"):
        with pytest.raises(argparse.ArgumentTypeError):
            _parse_shape(bad)


@pytest.mark.parametrize("ext, text", [
    (".arch", "network n\ninput 3xHxW\nconv2d(4, 3, stride = 2)\n"),
    (".arch", "network n\ninput [3, H, W]\nconv2d(4, 3, stride = 2)\n"),
    (".yaml", "network: n\ninput: 3xHxW\nlayers:\n  - conv2d(4, 3, stride = 2)\n"),
])
def test_front_ends_read_a_symbolic_input(tmp_path: Path, ext: str, text: str) -> None:
    spec = tmp_path / f"n{ext}"
    spec.write_text(text)
    res = analyze(spec)
    assert res.ok, res.diags.sorted()
    assert res.graph.symbolic.input == (3, "H", "W")
    conv = res.graph.node(res.graph.by_path("0"))
    assert fmt_shape(conv["sym_shape"]) == "4 x \u230a(H\u22121)/2\u230b x \u230a(W\u22121)/2\u230b"
    assert res.graph.symbolic.domain.text() == "H, W \u2265 3"


def test_mixed_input_keeps_the_given_size(tmp_path: Path) -> None:
    spec = tmp_path / "n.arch"
    spec.write_text("network n\ninput 3x224xW\nconv2d(4, 3, stride = 2)\n")
    res = analyze(spec)
    conv = res.graph.node(res.graph.by_path("0"))
    assert fmt_shape(conv["sym_shape"]) == "4 x 111 x \u230a(W\u22121)/2\u230b"


@pytest.mark.parametrize("ext, text, line, col", [
    (".arch", "network n\ninput 3xHxD\nrelu\n", 2, 11),
    (".arch", "network n\ninput 3xWxH\nrelu\n", 2, 9),
    (".yaml", "network: n\ninput: 3xHxD\nlayers: [relu]\n", 2, 12),
    (".yaml", "network: n\ninput: '3xWxH'\nlayers: [relu]\n", 2, 11),
    # the list form too: a symbol out of its place, or inside an expression, is E114 (not E105)
    (".arch", "network n\ninput [3, H, H]\nrelu\n", 2, 14),
    (".arch", "network n\ninput [3, W, H]\nrelu\n", 2, 11),
    (".arch", "network n\ninput [3, H * 2, W]\nrelu\n", 2, 11),
    (".arch", "network n\ninput [H, H, W]\nrelu\n", 2, 8),
    (".arch", "network n\ninput [3, H, W, W]\nrelu\n", 2, 17),
    (".arch", "network n\ninput [3, 8, min(W, 8)]\nrelu\n", 2, 18),
    (".yaml", "network: n\ninput: [3, W, H]\nlayers: [relu]\n", 2, 12),
    (".yaml", "network: n\ninput: [3, H, 'W + 1']\nlayers: [relu]\n", 2, 16),
])
def test_other_names_are_located_errors(tmp_path: Path, ext: str, text: str, line: int, col: int) -> None:
    spec = tmp_path / f"n{ext}"
    spec.write_text(text)
    res = analyze(spec)
    (d,) = [d for d in res.diags if d.is_error]
    assert (d.code, d.loc.line, d.loc.col) == ("E114", line, col)
    assert "H" in d.hint and "W" in d.hint


def test_list_input_may_use_lets_named_like_the_symbols(tmp_path: Path) -> None:
    # a let or parameter named H is an ordinary value: no E114, and the input is concrete
    spec = tmp_path / "n.arch"
    spec.write_text("network n(H = 8)\nlet W = 2 * H\ninput [3, W, H * 2]\nrelu\n")
    res = analyze(spec)
    assert [d.code for d in res.diags if d.is_error] == []
    assert res.graph.input_shape == (3, 16, 16)


def test_list_input_other_undefined_name_stays_e105(tmp_path: Path) -> None:
    spec = tmp_path / "n.arch"
    spec.write_text("network n\ninput [3, D, W]\nrelu\n")
    (d,) = [d for d in analyze(spec).diags if d.is_error]
    assert (d.code, d.loc.line, d.loc.col) == ("E105", 2, 11)


def test_convert_round_trip_keeps_the_symbols(tmp_path: Path) -> None:
    src = tmp_path / "n.arch"
    src.write_text("network n\ninput 3xHxW\nconv2d(4, 3)\n")
    assert main(["convert", str(src), "-o", str(tmp_path / "n.yaml")]) == 0
    assert "input: 3xHxW" in (tmp_path / "n.yaml").read_text()
    assert main(["convert", str(tmp_path / "n.yaml"), "-o", str(tmp_path / "m.arch")]) == 0
    assert "input 3xHxW" in (tmp_path / "m.arch").read_text()


# ------------------------------------------------------------------------------------------ the domain


def test_inception_v3_without_aux_is_valid_from_75() -> None:
    res = _symbolic(INCEPTION, aux_logits=False)
    dom = res.graph.symbolic.domain
    assert dom.text() == "H, W \u2265 75"
    assert (dom.h.start, dom.w.start, dom.h.modulus) == (75, 75, 1)
    (bound,) = _codes(res, "I201")
    # the bound-setting layer: the 3x3 stride-2 conv of Mixed_7a's branch, located in the block
    assert (bound.loc.line, bound.loc.col, bound.path) == (8, 11, "Mixed_7a.branch3x3_2.conv")
    assert "H, W \u2265 75" in bound.message and "at H, W = 74" in bound.message
    assert res.graph.input_shape == (3, 299, 299)  # the declared size, inside the domain


def test_bound_names_only_the_symbolic_axis_when_the_other_is_given() -> None:
    """``--input 3x80xW``: H is 80, so I201 bounds W alone; an invalid given height keeps its bound, which
    explains the E216."""
    res = analyze(INCEPTION, {"aux_logits": False}, (3, 80, "W"))
    (bound,) = _codes(res, "I201")
    assert "smallest input size, W \u2265 75 (at W = 74:" in bound.message and "H" not in bound.message
    assert "input width" in bound.message and bound.evidence == {"bound": {"W": 75}}
    assert res.graph.symbolic.domain.text() == "W \u2265 75 (H = 80)"
    bad = analyze(INCEPTION, {"aux_logits": False}, (3, 70, "W"))
    assert any("input height 70 is not valid" in d.message for d in _codes(bad, "E216"))
    (bound,) = _codes(bad, "I201")
    assert "H, W \u2265 75" in bound.message


def test_inception_v3_with_aux_needs_299() -> None:
    res = _symbolic(INCEPTION, aux_logits=True)
    assert res.graph.symbolic.domain.text() == "H, W \u2265 299"
    (bound,) = _codes(res, "I201")
    assert bound.path == "AuxLogits.conv1.conv" and "kernel 5" in bound.message


def test_check_prints_the_domain(capsys) -> None:
    assert main(["check", "--input", "3xHxW", "-p", "aux_logits=false", str(INCEPTION)]) == 0
    assert "inception_v3.arch: valid for H, W \u2265 75" in capsys.readouterr().err


def _write(tmp_path: Path, body: str, name: str = "n.arch") -> Path:
    spec = tmp_path / name
    spec.write_text("network n\ninput 3xHxW\n" + body)
    return spec


def test_residue_condition_is_located_at_the_concat(tmp_path: Path) -> None:
    # floor(H / 2) against ceil(H / 2): the branches agree exactly for even sizes
    spec = _write(tmp_path, "conv2d(4, 1)\ncat: concat {\n  maxpool(2)\n  conv2d(4, 3, stride = 2, padding = 1)\n}\n")
    res = _symbolic(spec)
    dom = res.graph.symbolic.domain
    assert dom.text() == "H, W \u2265 2 and H, W even"
    assert [(d.loc.line, d.loc.col) for d in _codes(res, "I202")] == [(4, 6), (4, 6)]
    for h in range(2, 40):
        ok = analyze(spec, {}, (3, h, 8)).ok
        assert ok == (h % 2 == 0) == dom.contains(h, 8)


def test_branches_that_never_agree_are_an_error_at_the_concat(tmp_path: Path) -> None:
    spec = _write(tmp_path, "relu\nconcat {\n  conv2d(4, 1)\n  conv2d(4, 3)\n}\n")
    res = analyze(spec, {}, (3, "H", "W"))
    errs = [d for d in res.diags if d.is_error]
    assert errs and {(d.code, d.loc.line, d.loc.col) for d in errs} == {("E216", 4, 1)}
    assert "no input height makes the concat branches agree" in errs[0].message
    assert main(["check", "--input", "3xHxW", str(spec)]) == 1


def test_different_strides_agree_at_isolated_sizes(tmp_path: Path) -> None:
    spec = _write(tmp_path, "concat {\n  conv2d(4, 1, stride = 2)\n  conv2d(4, 1, stride = 3)\n}\n")
    dom = _symbolic(spec).graph.symbolic.domain
    expected = [h for h in range(1, 200) if analyze(spec, {}, (3, h, 1)).ok]
    assert expected == [1, 2, 4] == [h for h in range(1, 200) if dom.h.contains(h)]
    assert dom.h.condition() == "H \u2208 {1, 2, 4}"


def test_fixed_size_classifier_accepts_the_sizes_that_keep_its_features(tmp_path: Path) -> None:
    spec = tmp_path / "n.arch"
    spec.write_text("network n\ninput 3x32x32\nconv2d(8, 3, stride = 2, padding = 1)\navgpool(4)\nflatten\n"
                    "linear(10)\n")
    res = _symbolic(spec)
    dom = res.graph.symbolic.domain
    # avgpool(4) of ceil(H / 2): 4 cells for H in 31..38; also the 1x16, 2x8, 8x2 and 16x1 grids
    assert (tuple(range(31, 39)), tuple(range(31, 39))) in dom.accepted and len(dom.accepted) == 5
    for h, w in ((31, 38), (32, 32), (30, 32), (39, 32), (9, 128), (9, 127)):
        feats = analyze(spec, {}, (3, h, w)).graph.node(res.graph.by_path("2"))["shape"]
        assert dom.contains(h, w) == (feats == (128,))
    # declared by nobody: the classifier's parameters follow the size
    free = tmp_path / "free.arch"
    free.write_text(spec.read_text().replace("input 3x32x32", "input 3xHxW"))
    out = analyze(free)
    assert out.graph.symbolic.domain.accepted is None
    fc = out.graph.node(out.graph.by_path("3"))
    assert not isinstance(fc["sym_costs"].params, int)


@pytest.mark.parametrize(("conv", "size"), [("conv2d(8, 3, stride = 2)", "\u230a(H\u22121)/2\u230b\u00b7\u230a(W\u22121)/2\u230b"),
                                            ("conv2d(8, 3)", "(H\u22122)\u00b7(W\u22122)")])
def test_a_free_classifiers_costs_collect_per_grid(tmp_path: Path, capsys, conv: str, size: str) -> None:
    """The linear after a size-dependent flatten costs 10 x the flatten's length: its terms join the
    conv's (296·⌊…⌋·⌊…⌋, not 10·(8·⌊…⌋·⌊…⌋)+216·⌊…⌋·⌊…⌋), and they equal the concrete counts."""
    import sympy

    spec = _write(tmp_path, f"{conv} -> flatten -> linear(10)\n")
    assert main(["summary", str(spec)]) == 0
    assert f"params: 80\u00b7{size}+234   MACs (eval): 296\u00b7{size}   " in capsys.readouterr().out
    assert main(["summary", "--format", "json", str(spec)]) == 0
    doc = json.loads(capsys.readouterr().out)
    H, W = sympy.Symbol("H", integer=True, positive=True), sympy.Symbol("W", integer=True, positive=True)
    for h, w in ((3, 3), (10, 17), (64, 33)):
        g = analyze(spec, {}, (3, h, w)).graph
        for key, want in (("params", g.total_params()), ("macs", g.eval_macs())):
            assert int(sympy.sympify(doc[key], locals={"H": H, "W": W}).subs({H: h, W: w})) == want


def test_a_size_given_as_a_number_stays_that_number(tmp_path: Path, capsys) -> None:
    """``--input 3x40xW``: the domain speaks of W only, the costs hold no H (they once kept it, the
    cost polynomials' size atoms hiding H from the substitution), and a height outside the domain
    is E216, not ``valid for H, W ≥ 10`` beside a layer's error."""
    import sympy

    spec = _write(tmp_path, "conv2d(4, 5) -> maxpool(2) -> conv2d(8, 3, stride = 2) -> global_avgpool\n")
    assert _symbolic(spec).graph.symbolic.domain.text() == "H, W \u2265 10"
    assert main(["summary", "--format", "json", "--input", "3x40xW", str(spec)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["domain"]["text"] == "W \u2265 10 (H = 40)" and "H" not in doc["macs"]
    W = sympy.Symbol("W", integer=True, positive=True)
    for w in (10, 41):
        want = analyze(spec, {}, (3, 40, w)).graph.eval_macs()
        assert int(sympy.sympify(doc["macs"], locals={"W": W}).subs(W, w)) == want
    res = analyze(spec, {}, (3, 9, "W"))
    errs = [d for d in res.diags if d.is_error]
    assert [(d.code, d.loc.line) for d in errs] == [("E216", 1)]  # at the network, as I200
    assert errs[0].message == "the input height 9 is not valid: the network needs H \u2265 10"
    assert res.graph.symbolic.domain.empty and not res.graph.symbolic.domain.contains(9, 10)
    assert main(["check", "--input", "3x9xW", str(spec)]) == 1
    assert "valid for" not in capsys.readouterr().err


@pytest.mark.parametrize(("body", "col"), [("global_avgpool -> conv2d(4, 3)\n", 19),
                                           ("repeat(30) { conv2d(4, 2, stride = 2) }\n", 14)])
def test_no_size_at_all_names_the_layer(tmp_path: Path, body: str, col: int) -> None:
    """A layer that no size up to the search limit fits (once: 'no input size is valid (no H; no W)'
    at the network line) is named: E216 at that layer."""
    res = analyze(_write(tmp_path, body))
    (err,) = [d for d in res.diags if d.is_error]
    assert (err.code, err.loc.line, err.loc.col) == ("E216", 3, col)
    assert err.message.startswith("no input height up to 1,048,576 fits this layer (at 1,048,576: conv2d kernel")


def test_a_given_size_narrows_a_fixed_classifiers_sizes(tmp_path: Path) -> None:
    spec = tmp_path / "n.arch"
    spec.write_text("network n\ninput 3x32x32\nconv2d(8, 3, padding = 1)\nmaxpool(4)\nflatten\nfc: linear(10)\n")
    dom = analyze(spec, {}, (3, 8, "W")).graph.symbolic.domain
    assert dom.text() == "W \u2208 128\u2013131 (H = 8)" and dom.smallest() == (8, 128)
    bad = analyze(spec, {}, (3, 12, "W"))
    (err,) = [d for d in bad.diags if d.is_error]
    assert err.code == "E216" and err.loc.line == 6 and "with H = 12 (it accepts H \u2208 4\u20137 and" in err.message


def _fc_features(spec: Path, h: int, w: int, *paths: str) -> tuple:
    """The features each linear receives at ``h`` x ``w`` (None when the size fails)."""
    res = analyze(spec, {}, (3, h, w))
    g = res.graph
    return tuple(g.node(g.inputs(g.by_path(p))[0])["shape"] if res.ok else None for p in paths)


@pytest.mark.parametrize("between", ["dropout(0.5)\nrelu", "batchnorm"])
def test_ops_between_flatten_and_linear_still_fix_the_classifier(tmp_path: Path, between: str) -> None:
    """``flatten -> dropout -> relu -> linear`` (googlenet_paper's head) or a BatchNorm1d between
    them is a fixed-size classifier too: at 36x36 the linear built for 32x32 would get 32*9*9
    features instead of 32*8*8."""
    spec = tmp_path / "n.arch"
    spec.write_text(f"network n\ninput 3x32x32\nconv2d(32, 3, padding = 1)\nmaxpool(4)\nflatten\n{between}\n"
                    "fc: linear(10)\n")
    dom = _symbolic(spec).graph.symbolic.domain
    assert dom.accepted is not None and dom.classifier is not None
    assert (tuple(range(32, 36)), tuple(range(32, 36))) in dom.accepted
    for h, w in ((32, 32), (35, 35), (36, 36), (31, 32), (4, 255), (4, 256), (200, 200)):
        assert dom.contains(h, w) == (_fc_features(spec, h, w, "fc") == ((2048,),)), (h, w)


def test_every_classifier_bounds_the_sizes(tmp_path: Path) -> None:
    """An aux head's classifier and the main one each fix their features: the domain is the sizes
    both accept (googlenet_paper: its aux heads alone would allow 255-270, where the main fc gets
    1024x2x2 features)."""
    spec = tmp_path / "n.arch"
    spec.write_text("network n\ninput 3x32x32\nconv2d(8, 3, stride = 2, padding = 1)\n"
                    "aux(weight = 0.3) a: { avgpool(4) -> flatten -> linear(10) }\nmaxpool(2)\n"
                    "flatten -> dropout(0.5) -> fc: linear(10)\n")
    dom = _symbolic(spec).graph.symbolic.domain
    for h in range(1, 72):
        for w in (16, 32, 35, 66):
            assert dom.contains(h, w) == (_fc_features(spec, h, w, "a.2", "fc") == ((128,), (512,))), (h, w)
    paper = _symbolic(SPECS / "googlenet_paper.arch").graph.symbolic.domain
    assert paper.text() == "H \u2208 223\u2013254 and W \u2208 223\u2013254"


# ------------------------------------------------------------------------------------------ summary


def test_summary_json_gives_expressions(capsys) -> None:
    from archdsl.passes.symbolic import evaluate

    assert main(["summary", "--format", "json", "--input", "3xHxW", "-p", "aux_logits=false", str(INCEPTION)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["input"] == [3, "H", "W"] and doc["domain"]["H"]["min"] == 75
    conv = next(n for n in doc["nodes"] if n["path"] == "Mixed_7c.branch_pool.conv")
    assert conv["shape"][0] == 192 and "floor" in conv["shape"][1] and "H" in conv["shape"][1]
    import sympy

    H, W = sympy.Symbol("H", integer=True, positive=True), sympy.Symbol("W", integer=True, positive=True)
    concrete = analyze(INCEPTION, {"aux_logits": False}, (3, 331, 300)).graph
    rows = {d["path"]: d for _, d in concrete.g.nodes(data=True)}
    for n in doc["nodes"]:
        if not isinstance(n["shape"][-1], str):
            continue
        dims = [d if isinstance(d, int) else int(sympy.sympify(d, locals={"H": H, "W": W}).subs({H: 331, W: 300}))
                for d in n["shape"]]
        path = n["path"].replace(".<", "@").rstrip(">") if ".<" in n["path"] else n["path"]
        if path in rows:
            assert tuple(dims) == rows[path]["shape"], n["path"]
    macs = sympy.sympify(doc["macs"], locals={"H": H, "W": W}).subs({H: 331, W: 300})
    assert int(macs) == concrete.eval_macs()
    res = _symbolic(INCEPTION, aux_logits=False)
    assert evaluate(res.graph.node(res.graph.main_output)["sym_shape"][0], 75, 75) == 1000


# ------------------------------------------------------------------------------------------ exactness over the zoo

ZOO = ["resnet18", "googlenet", "mobilenet_v2", "squeezenet1_1", "densenet121", "shufflenet_v2_x1_0",
       "bn_inception", "inception_v3", "convnext_tiny", "efficientnet_b0"]


def _check_sizes(res, spec: Path, sizes: list[tuple[int, int]]) -> None:
    from archdsl.passes.symbolic import evaluate

    g = res.graph
    for h, w in sizes:
        conc = analyze(spec, {}, (3, h, w))
        assert conc.ok == g.symbolic.domain.contains(h, w) or g.symbolic.domain.accepted is not None, (spec, h, w)
        if not conc.ok:
            continue
        for nid in g.order():
            sym = g.node(nid).get("sym_shape")
            if sym is not None:
                got = tuple(evaluate(d, h, w) for d in sym)
                assert got == tuple(conc.graph.node(nid)["shape"]), (spec.name, h, w, g.node(nid)["path"])


@pytest.mark.parametrize("name", ZOO)
def test_symbolic_shapes_equal_concrete_inference(name: str) -> None:
    spec = SPECS / f"{name}.arch"
    res = _symbolic(spec)
    dom = res.graph.symbolic.domain
    rng = random.Random(name)
    inside = []
    if dom.accepted is not None:
        hs, ws = dom.accepted[0]
        inside = [(rng.choice(hs), rng.choice(ws)) for _ in range(2)]
    else:
        while len(inside) < 3:
            h, w = rng.randint(dom.h.start, dom.h.start + 200), rng.randint(dom.w.start, dom.w.start + 200)
            if dom.contains(h, w):
                inside.append((h, w))
    _check_sizes(res, spec, inside)
    # just outside: one below the bound on each axis fails in the concrete pipeline
    if dom.h.start > 1 and dom.accepted is None:
        assert not analyze(spec, {}, (3, dom.h.start - 1, inside[0][1])).ok
        assert not analyze(spec, {}, (3, inside[0][0], dom.w.start - 1)).ok


# ------------------------------------------------------------------------------------------ torch agrees


def _torch():
    return pytest.importorskip("torch")


def _runs(model, h: int, w: int, train: bool = False) -> bool:
    torch = _torch()
    model.train(train)
    try:
        with torch.no_grad():
            model(torch.zeros(2 if train else 1, 3, h, w))
    except RuntimeError:
        return False
    return True


@pytest.mark.torch
def test_torch_runs_inception_v3_at_the_bound_and_fails_below() -> None:
    from archdsl.backends.runtime import load_spec

    model = load_spec(INCEPTION, input_shape=(3, 75, 75), aux_logits=False).build()
    assert _runs(model, 75, 75) and not _runs(model, 74, 74)
    assert _runs(model, 75, 80) and not _runs(model, 80, 74)


@pytest.mark.torch
def test_torch_needs_299_for_the_aux_head_in_training() -> None:
    from archdsl.backends.runtime import load_spec

    model = load_spec(INCEPTION, aux_logits=True).build()
    assert _runs(model, 299, 299, train=True) and not _runs(model, 298, 298, train=True)
    assert _runs(model, 298, 298, train=False)  # eval skips the aux head


@pytest.mark.torch
@pytest.mark.parametrize("name", ["squeezenet1_1", "googlenet", "shufflenet_v2_x1_0"])
def test_symbolic_shapes_equal_torchs(name: str) -> None:
    """Every module's output shape in torch equals the expression evaluated, inside the domain;
    one below the bound torch fails too."""
    torch = _torch()
    from archdsl.backends.runtime import load_spec
    from archdsl.passes.symbolic import evaluate

    spec = SPECS / f"{name}.arch"
    res = _symbolic(spec)
    dom = res.graph.symbolic.domain
    model = load_spec(spec).build().eval()
    expected = {d["path"]: d["sym_shape"] for _, d in res.graph.g.nodes(data=True)
                if d.get("sym_shape") is not None and "@" not in d["path"]}
    seen: dict[str, tuple] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.__setitem__(n, tuple(o.shape[1:])))
             for n, m in model.named_modules() if n in expected]
    rng = random.Random(name)
    for h, w in [(dom.h.smallest(), dom.w.smallest()), (rng.randint(dom.h.start, 160), rng.randint(dom.w.start, 160))]:
        seen.clear()
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w))
        assert seen
        for path, got in seen.items():
            assert got == tuple(evaluate(d, h, w) for d in expected[path]), (name, h, w, path)
    for hook in hooks:
        hook.remove()
    if dom.h.start > 1:
        assert not _runs(model, dom.h.start - 1, dom.w.start)
