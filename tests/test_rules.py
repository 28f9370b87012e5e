"""The design rules: each rule's positive and negative cases with exact locations and figures.

Every spec here is tiny and written so the expected numbers can be checked by hand; the worked
figures of REFERENCE.md section 2 (204,800 vs 104,448; 69,632 vs 1,179,648 = 16.94x; 28%; 33%) are
tests of their own.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from archdsl.diagnostics import Diagnostic
from archdsl.pipeline import analyze
from archdsl.rules import RuleRequest, all_rules, lint
from archdsl.rules.factorization import ASYM, STACK, plan
from archdsl.rules.graphctx import harmonic_width, macs, pct

NO_PYPROJECT = RuleRequest(use_pyproject=False)


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def findings(tmp_path: Path, text: str, name: str = "t.arch", request: RuleRequest = NO_PYPROJECT,
             code: str | None = None) -> list[Diagnostic]:
    path = tmp_path / name
    path.write_text(src(text), encoding="utf-8")
    res = analyze(path)
    assert res.ok, [f"{d.loc}: {d.code} {d.message}" for d in res.diags]
    out = sorted(lint(res, request), key=Diagnostic.sort_key)
    return [d for d in out if code is None or d.code == code]


def where(diags: list[Diagnostic]) -> list[tuple[str, int, int]]:
    return [(d.code, d.loc.line, d.loc.col) for d in diags]


# ------------------------------------------------------------------------------ the worked figures


def test_factorization_arithmetic_matches_the_paper() -> None:
    # 5x5 -> two 3x3 on C -> C: 18 vs 25 weights per channel pair, 28% fewer
    p = plan(STACK, {"kernel": (5, 5), "padding": (2, 2)}, (64, 28, 28), (64, 28, 28))
    assert (p.weights_before, p.weights_after, p.mid) == (102_400, 73_728, 64)
    assert pct(p.weights_before, p.weights_after) == "-28%"
    assert [la.out_hw for la in p.layers] == [(28, 28), (28, 28)]
    # 3x3 -> 1x3 + 3x1: 6 vs 9, 33% fewer
    q = plan(ASYM, {"kernel": (3, 3), "padding": (1, 1)}, (64, 14, 14), (64, 14, 14))
    assert (q.weights_before, q.weights_after) == (36_864, 24_576)
    assert [la.kernel for la in q.layers] == [(1, 3), (3, 1)]
    assert pct(q.weights_before, q.weights_after) == "-33%"
    # 7x7 -> three 3x3: 27 vs 49
    r = plan(STACK, {"kernel": (7, 7), "padding": (3, 3)}, (32, 17, 17), (32, 17, 17))
    assert (r.weights_before, r.weights_after, len(r.layers)) == (50_176, 27_648, 3)
    # unpadded: the shrinkage is shared out, the final grid is the same
    u = plan(STACK, {"kernel": (5, 5), "padding": (0, 0)}, (8, 10, 10), (8, 6, 6))
    assert [la.out_hw for la in u.layers] == [(8, 8), (6, 6)]
    assert harmonic_width(16, 48) == 24 and harmonic_width(16, 32) == 21


def test_R201_worked_figure_204800_vs_104448(tmp_path: Path) -> None:
    # the notes' figure is an Inception branch: a 5x5 next to a 1x1 branch, off the main path
    ds = findings(tmp_path, """
        network t
        input 64x56x56
        concat {
            a: conv2d(64, 1)
            c: conv2d(128, 5, padding = 2)
        }
        """, code="R201")
    assert where(ds) == [("R201", 5, 8)]
    d = ds[0]
    assert d.message == ("5x5 conv on 56x56x64 with 128 filters has no 1x1 reduction in front: 204,800 weights; "
                         "reducing to 32 channels first: 104,448 (-49%), 642.25M -> 327.55M MACs")
    assert d.severity == "warning" and d.path == "c"
    assert d.evidence["weights_before"] == 5 * 5 * 64 * 128 == 204_800
    assert d.evidence["weights_after"] == 64 * 32 + 5 * 5 * 32 * 128 == 104_448
    assert "1x1 conv to 32 channels" in d.hint


def test_R201_negative_with_reduction_or_few_channels(tmp_path: Path) -> None:
    assert findings(tmp_path, """
        network t
        input 64x56x56
        r: conv2d(32, 1) -> relu -> c: conv2d(128, 5, padding = 2)
        n: conv2d(48, 3, padding = 1) -> d: conv2d(64, 3, padding = 1)
        """, code="R201") == []   # reduced; then 48 < 64 input channels


def test_R201_applicability(tmp_path: Path) -> None:
    # on the main path a reduction would be the bottleneck principle 1 forbids (VGG's stacks)
    assert findings(tmp_path, """
        network t
        input 64x56x56
        c: conv2d(128, 3, padding = 1)
        """, code="R201") == []
    # the stride-2 branch of Figure 10's grid reduction, next to a stride-2 pool
    assert findings(tmp_path, """
        network t
        input 288x35x35
        concat {
            b: conv2d(384, 3, stride = 2)
            p: maxpool(3, stride = 2)
        }
        """, code="R201") == []
    # an early 1x1 *expansion* does not excuse the 3x3s after it
    ds = findings(tmp_path, """
        network t
        input 64x28x28
        concat {
            a: conv2d(64, 1)
            { e: conv2d(256, 1) -> relu -> c1: conv2d(256, 3, padding = 1) -> relu -> c2: conv2d(256, 3, padding = 1) }
        }
        """, code="R201")
    assert [d.path for d in ds] == ["1.c2"]


def test_R201_shared_reduction_counts(tmp_path: Path) -> None:
    # a 1x1 whose activation feeds two branches (Inception v3's expanded filter bank) is a reduction
    assert findings(tmp_path, """
        network t
        input 256x8x8
        r: conv2d(96, 1) -> relu -> concat {
            a: conv2d(96, [1, 3], padding = [0, 1])
            b: conv2d(96, [3, 1], padding = [1, 0])
        }
        """, code="R201") == []


def test_R202_worked_figure_69632_vs_1179648(tmp_path: Path) -> None:
    ds = findings(tmp_path, """
        network t
        input 256x14x14
        block Basic(c) {
            residual(post = "relu") {
                conv1: conv2d(c, 3, padding = 1, bias = false) -> bn1: batchnorm -> relu
                conv2: conv2d(c, 3, padding = 1, bias = false) -> bn2: batchnorm
            }
        }
        b1: Basic(256)
        more: repeat(17) { Basic(256) }
        """, code="R202")
    # 36 weight layers: deeper than ResNet-34, where the paper switches to bottlenecks
    assert where(ds)[0] == ("R202", 4, 5) and len(ds) == 18
    d = ds[0]
    assert d.message == ("residual body of two 3x3 convs on 256 channels (14x14): a bottleneck 1x1 256->64, "
                         "3x3 64->64, 1x1 64->256 has 69,632 weights vs 1,179,648 (16.94x fewer), "
                         "13.65M vs 231.21M MACs")
    assert d.path == "b1" and d.severity == "info"
    assert d.evidence["weights_after"] == 256 * 64 + 9 * 64 * 64 + 64 * 256 == 69_632
    assert d.evidence["weights_before"] == 2 * 9 * 256 * 256 == 1_179_648
    assert d.evidence["ratio"] == 16.94


def test_R202_negative(tmp_path: Path) -> None:
    ds = findings(tmp_path, """
        network t
        input 128x14x14
        residual(post = "relu") {
            conv2d(128, 3, padding = 1, bias = false) -> batchnorm -> relu
            conv2d(128, 3, padding = 1, bias = false) -> batchnorm
        }
        residual(post = "relu") {
            conv2d(64, 1, bias = false) -> batchnorm -> relu
            conv2d(64, 3, padding = 1, bias = false) -> batchnorm -> relu
            conv2d(128, 1, bias = false) -> batchnorm
        }
        """, code="R202")
    assert ds == []   # 128 < 256 channels; a bottleneck body


BASIC_256 = """
    residual(post = "relu") {
        conv2d(256, 3, padding = 1, bias = false) -> batchnorm -> relu
        conv2d(256, 3, padding = 1, bias = false) -> batchnorm
    }"""


def test_R202_basic_block_convs_are_not_also_R201(tmp_path: Path) -> None:
    ds = findings(tmp_path, "network t\ninput 256x14x14\n" + BASIC_256 * 18)
    assert {d.code for d in ds if d.code.startswith("R2")} == {"R202"}


def test_R202_silent_at_resnet34_depth(tmp_path: Path) -> None:
    # ResNet-18/34 use the two-conv block by the paper's own choice: 34 weight layers draw nothing
    assert findings(tmp_path, "network t\ninput 256x14x14\n" + BASIC_256 * 17, code="R202") == []


# ------------------------------------------------------------------------------ R3xx factorization


def test_R301_28_percent(tmp_path: Path) -> None:
    ds = findings(tmp_path, """
        network t
        input 64x28x28
        c5: conv2d(64, 5, padding = 2)
        c7: conv2d(64, 7, padding = 3)
        """, code="R301")
    assert where(ds) == [("R301", 3, 5), ("R301", 4, 5)]
    assert ds[0].message == ("5x5 conv on 28x28x64 can be two stacked 3x3 convs (same receptive field): "
                             "102,400 -> 73,728 weights (-28%), 80.28M -> 57.80M MACs")
    assert "3x3 convs 64->64->64" in ds[0].hint and "--factorize=5x5" in ds[0].hint
    assert ds[1].message == ("7x7 conv on 28x28x64 can be three stacked 3x3 convs (same receptive field): "
                             "200,704 -> 110,592 weights (-45%), 157.35M -> 86.70M MACs")


def test_R301_negative(tmp_path: Path) -> None:
    assert findings(tmp_path, """
        network t
        input 64x28x28
        s: conv2d(64, 5, stride = 2, padding = 2)
        d: conv2d(64, 3, padding = 1)
        g: conv2d(64, 5, padding = 2, groups = 64)
        w: conv2d(64, 14)
        """, code="R301") == []   # strided, 3x3, grouped, collapsing the grid to 1x1


def test_R301_issue_example_format(tmp_path: Path) -> None:
    ds = findings(tmp_path, """
        network t
        input 16x28x28
        c: conv2d(48, 5, padding = 2)
        """, code="R301")
    assert ds[0].message == ("5x5 conv on 28x28x16 can be two stacked 3x3 convs (same receptive field): "
                             "19,200 -> 13,824 weights (-28%), 15.05M -> 10.84M MACs")
    assert "16->24->48" in ds[0].hint


def test_R302_on_medium_grids(tmp_path: Path) -> None:
    ds = findings(tmp_path, """
        network t
        input 64x14x14
        c: conv2d(64, 5, padding = 2)
        d: conv2d(64, 3, padding = 1)
        """)
    # one finding for the 5x5 (R302, not also R301); 3x3 convs are left alone
    assert where(ds) == [("R302", 3, 4)] or where([d for d in ds if d.code != "R602"]) == [("R302", 3, 4)]
    r302 = [d for d in ds if d.code == "R302"]
    assert r302[0].message == ("5x5 conv on 14x14x64 (a medium grid, 12 to 20) can be a 1x5 conv followed by a 5x1 "
                               "conv: 102,400 -> 40,960 weights (-60%), 20.07M -> 8.03M MACs")
    assert r302[0].severity == "warning"
    assert r302[0].hint == ("1x5 64->64 then 5x1 64->64; `archdsl transform --factorize=asym` writes it (stacked 3x3 "
                            "convs would cost 73,728 weights, 14.45M MACs)")


def test_R302_negative_and_grid_option(tmp_path: Path) -> None:
    text = """
        network t
        input 64x28x28
        {rules}
        c: conv2d(64, 5, padding = 2)
        """
    assert findings(tmp_path, text.format(rules=""), code="R302") == []          # 28 > 20
    ds = findings(tmp_path, text.format(rules="rules(grid = [24, 32])"), code="R302")
    assert where(ds) == [("R302", 4, 4)] and "(a medium grid, 24 to 32)" in ds[0].message


def test_R303_asymmetric_on_large_grid(tmp_path: Path) -> None:
    ds = findings(tmp_path, """
        network t
        input 32x32x32
        a: conv2d(32, [1, 7], padding = [0, 3]) -> b: conv2d(32, [7, 1], padding = [3, 0])
        """, code="R303")
    assert where(ds) == [("R303", 3, 4)]   # one finding for the pair
    assert ds[0].message == ("asymmetric 1x7 + 7x1 pair on a 32x32 grid (above the medium range, 20): the paper "
                             "found asymmetric factorization works poorly this early; the pair costs 14,336 weights, "
                             "14.68M MACs")
    assert ds[0].severity == "info"   # the authors' own Inception-v4 stem does this on 73x73
    assert ("use 3 stacked 3x3 convs for the 7x7 window here (27,648 weights, 28.31M MACs: 1.93x the pair's, more)"
            in ds[0].hint)
    assert findings(tmp_path, """
        network t
        input 32x16x16
        a: conv2d(32, [1, 7], padding = [0, 3]) -> b: conv2d(32, [7, 1], padding = [3, 0])
        """, code="R303") == []


# ------------------------------------------------------------------------------ R1xx representation


def test_R101_bottleneck(tmp_path: Path) -> None:
    ds = findings(tmp_path, """
        network t
        input 64x56x56
        a: conv2d(64, 3, padding = 1)
        b: conv2d(16, 3, stride = 2, padding = 1)
        c: conv2d(64, 3, padding = 1)
        """, code="R101")
    assert where(ds) == [("R101", 4, 4)]
    d = ds[0]
    assert d.message == ("representation drops 16.0x on the main path, from 64x56x56 (200,704 values, the input) "
                         "to 16x28x28 (12,544, b); limit 4x, early in the network")
    assert d.hint == "keep at least 64 channels at 28x28: widen b from 16 to 64 channels (+27,648 weights, +21.68M MACs)"
    assert d.severity == "warning"


def test_R101_negative_gentle_and_late_is_info(tmp_path: Path) -> None:
    assert findings(tmp_path, """
        network t
        input 64x56x56
        a: conv2d(128, 3, stride = 2, padding = 1)
        p: maxpool(2, stride = 2)
        """, code="R101") == []      # 2x, then 4x: not more than 4x
    ds = findings(tmp_path, """
        network t
        input 256x14x14
        a: conv2d(32, 1)
        """, code="R101")
    assert where(ds) == [("R101", 3, 4)] and ds[0].severity == "info"   # 8x, but on a 14x14 grid


def test_R102_pool_then_expand(tmp_path: Path) -> None:
    ds = findings(tmp_path, """
        network t
        input 32x32x32
        a: conv2d(32, 3, padding = 1)
        p: maxpool(2, stride = 2)
        e: conv2d(64, 3, padding = 1)
        """, code="R102")
    assert where(ds) == [("R102", 4, 4)]
    assert ds[0].message == ("pool-then-expand grid reduction: maxpool takes 32x32x32 to 32x16x16 (4.0x fewer values) "
                             "and e then expands it to 64x16x16: the representation is squeezed where the grid shrinks")
    assert ds[0].hint == ("reduce with a stride-2 3x3 conv (32->32) in parallel with the pool and concatenate: "
                          "64x16x16 directly for 9,216 weights, 2.36M MACs (expanding before the pool would cost "
                          "~18.87M MACs instead of 4.72M)")
    assert findings(tmp_path, """
        network t
        input 32x32x32
        p: maxpool(2, stride = 2)
        e: conv2d(48, 3, padding = 1)
        """, code="R102") == []   # 1.5x < expand_factor 2


# ------------------------------------------------------------------------------ R4xx training


def test_R401_bias_before_bn(tmp_path: Path) -> None:
    ds = findings(tmp_path, """
        network t
        input 3x16x16
        c: conv2d(16, 3) -> batchnorm -> relu
        repeat(3) { conv2d(16, 3, padding = 1) -> batchnorm -> relu }
        n: conv2d(16, 3, bias = false) -> batchnorm
        """, code="R401")
    assert where(ds) == [("R401", 3, 4), ("R401", 4, 13)]
    assert ds[0].message == ("conv2d bias is cancelled by the batchnorm right after it (BN subtracts the mean): "
                             "16 wasted parameters")
    assert ds[0].hint == "set bias = false (-16 params; BN's beta keeps the shift)"
    assert ds[1].message.startswith("3 conv2d layers from this line have biases that the batchnorm after each "
                                    "cancels: 48 wasted parameters (")


def test_R401_through_a_pool(tmp_path: Path) -> None:
    # max(x + b) = max(x) + b: the pool does not save the bias
    ds = findings(tmp_path, """
        network t
        input 3x16x16
        c: conv2d(16, 3) -> m: maxpool(2, stride = 2) -> batchnorm -> relu
        """, code="R401")
    assert where(ds) == [("R401", 3, 4)]
    assert ds[0].message == ("conv2d bias is cancelled by the batchnorm after the maxpool (pooling passes a "
                             "per-channel constant through: max(x + b) = max(x) + b, and BN subtracts the mean): "
                             "16 wasted parameters")
    assert findings(tmp_path, """
        network t
        input 3x16x16
        c: conv2d(16, 3) -> relu -> maxpool(2, stride = 2) -> batchnorm
        """, code="R401") == []    # the ReLU in between does not commute with the shift


def test_R402_saturating(tmp_path: Path) -> None:
    ds = findings(tmp_path, """
        network t
        input 16x8x8
        c: conv2d(16, 3, padding = 1) -> t: tanh -> conv2d(16, 3, padding = 1)
        conv2d(16, 3, padding = 1) -> batchnorm -> tanh -> conv2d(16, 3, padding = 1)
        repeat(2) { conv2d(16, 3, padding = 1) -> relu }
        global_avgpool -> flatten -> linear(4) -> sigmoid
        """, code="R402")
    assert where(ds) == [("R402", 3, 37)]
    assert ds[0].message == ("tanh on 8x8x16 without batch normalization in front saturates: its gradient vanishes "
                             "for large inputs, which stalls deep training")
    assert ds[0].hint == "use relu, or put a batchnorm before it (+32 params)"
    # LeNet-5's depth (5 weight layers) trained with tanh: the BN paper's effect grows with depth
    assert findings(tmp_path, """
        network t
        input 1x32x32
        conv2d(6, 5) -> tanh -> avgpool(2, stride = 2) -> conv2d(16, 5) -> tanh -> avgpool(2, stride = 2)
        conv2d(120, 5) -> tanh -> flatten -> linear(84) -> tanh -> linear(10)
        """, code="R402") == []


def _stack(n: int, bn: bool) -> str:
    unit = "conv2d(16, 3, padding = 1, bias = false) -> batchnorm -> relu" if bn else \
        "conv2d(16, 3, padding = 1) -> relu"
    return "network t\ninput 16x8x8\n" + "\n".join(f"c{i}: {unit}" for i in range(n)) + "\n"


def test_R403_unnormalized_depth(tmp_path: Path) -> None:
    # 22 layers (GoogLeNet's depth, trained without BN) pass; 23 do not
    ds = findings(tmp_path, _stack(23, bn=False), code="R403")
    assert where(ds) == [("R403", 1, 9)]
    assert ds[0].message == "23 weight layers in a row without batch normalization (c0 -> c22); limit 22"
    assert ds[0].hint == ("put batchnorm between each conv and its activation: +736 params for 23 convs, and their "
                          "biases become redundant (-368)")
    assert findings(tmp_path, _stack(22, bn=False), code="R403") == []
    assert findings(tmp_path, _stack(23, bn=True), code="R403") == []


def test_R404_plain_depth(tmp_path: Path) -> None:
    ds = findings(tmp_path, _stack(21, bn=True), code="R404")
    assert where(ds) == [("R404", 1, 9)]
    assert ds[0].message == ("21 weight layers in one plain chain (c0 -> c20), no shortcut around any of them "
                             "(limit 20)")
    assert findings(tmp_path, _stack(20, bn=True), code="R404") == []
    # one global skip around a 30-layer stack does not make the stack less plain
    ds = findings(tmp_path, """
        network t
        input 16x8x8
        concat {
            x: identity
            stack: repeat(30) { conv2d(16, 3, padding = 1, bias = false) -> batchnorm -> relu }
        }
        """, code="R404")
    assert [d.evidence["depth"] for d in ds] == [30]
    res_net = "network t\ninput 16x8x8\n" + "\n".join(
        "residual(post = \"relu\") { conv2d(16, 3, padding = 1, bias = false) -> batchnorm -> relu "
        "-> conv2d(16, 3, padding = 1, bias = false) -> batchnorm }" for _ in range(12)) + "\n"
    assert findings(tmp_path, res_net, code="R404") == []


# ------------------------------------------------------------------------------ R5xx concat growth

NAIVE = """
    network t
    input 192x28x28
    block Naive(a, b, c) {
        concat {
            conv2d(a, 1) -> relu
            conv2d(b, 3, padding = 1) -> relu
            conv2d(c, 5, padding = 2) -> relu
            maxpool(3, stride = 1, padding = 1)PROJ
        }
    }
    m1: Naive(64, 128, 32)
    m2: Naive(64, 128, 32)
    m3: Naive(64, 128, 32)
    """


def test_R501_naive_inception_channel_explosion(tmp_path: Path) -> None:
    ds = findings(tmp_path, NAIVE.replace("PROJ", ""), code="R501")
    assert where(ds) == [("R501", 4, 5)]
    d = ds[0]
    assert d.message == ("channels grow 192 -> 416 -> 640 -> 864 over 3 concat modules (4.50x at 28x28): each passes "
                         "all its input channels through a parameter-free branch, so widths add up")
    assert d.evidence["projected"] == [192, 256, 256, 256]
    assert d.hint.startswith("project each pass-through branch with a 1x1 conv (GoogLeNet's pool_proj, to the "
                             "narrowest branch's width): channels 192 -> 256 -> 256 -> 256; the layers reading these "
                             "outputs go from ")
    assert d.evidence["macs_after"] < d.evidence["macs_before"]
    assert findings(tmp_path, NAIVE.replace("PROJ", " -> conv2d(32, 1) -> relu"), code="R501") == []


DENSE = """
    network t
    input 64x28x28
    db: dense(6, prefix = "l", start = 1) {{ {layer} }}
    t: {{ batchnorm -> relu -> conv2d({trans}, 1, bias = false) -> avgpool(2, stride = 2) }}
    db2: dense(2, prefix = "l", start = 1) {{ {layer} }}
    """
PLAIN_LAYER = "batchnorm -> relu -> conv2d(32, 3, padding = 1, bias = false)"
B_LAYER = ("batchnorm -> relu -> conv2d(128, 1, bias = false) -> batchnorm -> relu "
           "-> conv2d(32, 3, padding = 1, bias = false)")


def test_R502_dense_without_bottleneck(tmp_path: Path) -> None:
    ds = findings(tmp_path, DENSE.format(layer=PLAIN_LAYER, trans=128), code="R502")
    assert where(ds) == [("R502", 3, 5), ("R502", 5, 6)]   # db2: its second layer reads 160 channels
    d = ds[0]
    assert d.path == "db"
    # inputs 64, 96, 128, 160, 192, 224: the last three exceed 4 x 32
    assert d.message == ("3 of 6 dense layers apply a 3x3 conv directly to more than 4 x 32 (growth) input channels "
                         "(up to 224): 165,888 weights, 130.06M MACs")
    assert d.evidence["weights_before"] == 9 * 32 * (160 + 192 + 224)
    assert d.evidence["weights_after"] == (160 + 192 + 224) * 128 + 3 * 9 * 128 * 32
    assert findings(tmp_path, DENSE.format(layer=B_LAYER, trans=128), code="R502") == []


def test_R503_transition_without_compression(tmp_path: Path) -> None:
    ds = findings(tmp_path, DENSE.format(layer=B_LAYER, trans=256), code="R503")
    assert where(ds) == [("R503", 4, 27)]
    d = ds[0]
    assert d.message == "transition keeps all 256 channels (theta = 1) before pooling to 256x14x14: no compression"
    # the next dense block's layers each start with a 1x1 conv to 128: 128 weights per input channel
    assert d.hint.startswith("compress to 128 channels (theta = 0.5, DenseNet-C): the transition conv goes from "
                             "65,536 to 32,768 weights")
    assert d.evidence["downstream_weights_saved"] == 128 * 128 * 2
    assert findings(tmp_path, DENSE.format(layer=B_LAYER, trans=128), code="R503") == []


# ------------------------------------------------------------------------------ R6xx info


def test_R601_dropout_with_bn(tmp_path: Path) -> None:
    text = """
        network t
        input 3x16x16
        conv2d(8, 3, bias = false) -> {bn}relu
        global_avgpool -> flatten
        d: dropout(0.5) -> linear(10)
        """
    ds = findings(tmp_path, text.format(bn="batchnorm -> "), code="R601")
    assert where(ds) == [("R601", 5, 4)]
    assert ds[0].message == ("dropout(p = 0.5) after 1 batchnorm layers: BN already regularizes, and the BN paper "
                             "found dropout unnecessary next to it")
    assert findings(tmp_path, text.format(bn=""), code="R601") == []


def test_R603_dropout_before_batchnorm(tmp_path: Path) -> None:
    ds = findings(tmp_path, """
        network t
        input 3x16x16
        c: conv2d(16, 3, bias = false) -> d: dropout(0.2) -> bn: batchnorm -> relu
        global_avgpool -> flatten -> linear(10)
        """)
    assert [(d.code, d.loc.line, d.loc.col) for d in ds if d.code.startswith("R60") and d.code != "R602"] == [
        ("R603", 3, 38)]   # and not also R601
    d = [d for d in ds if d.code == "R603"][0]
    assert d.message == ("dropout(p = 0.2) feeds batch normalization (the next one: bn): BN's statistics are "
                         "collected under dropout's 1/(1-p) = 1.25x train-time scaling and no longer match at "
                         "inference (variance shift)")


def test_R602_balance_report(tmp_path: Path) -> None:
    ds = findings(tmp_path, """
        network t
        input 3x32x32
        conv2d(16, 3, padding = 1, bias = false) -> batchnorm -> relu
        conv2d(32, 3, stride = 2, padding = 1, bias = false) -> batchnorm -> relu
        global_avgpool -> flatten -> linear(10)
        """, code="R602")
    assert where(ds) == [("R602", 1, 9)] and ds[0].severity == "info"
    # 432 + 32 + 4,608 + 64 + 330 params; 442,368 + 1,179,648 + 320 MACs
    assert ds[0].message == ("width/depth: 3 weight layers on the longest path, the widest layer per grid has 16 to "
                             "32 channels, 5,466 params, "
                             "1.62M MACs")
    assert ds[0].hint == ("per grid: 32x32: 1 layer, up to 16 ch, 27.3% MACs; 16x16: 1 layer, up to 32 ch, 72.7% MACs; "
                          "fc: 1 layer, up to 10 ch, 0.0% MACs")


# ------------------------------------------------------------------------------ registry and formatting


def test_registry_metadata_is_complete() -> None:
    rules = all_rules()
    codes = [r.code for r in rules]
    assert codes == sorted(codes) and len(codes) >= 16
    for r in rules:
        assert r.code[0] == "R" and r.code[1:].isdigit() and len(r.code) == 4
        assert r.severity in ("warning", "info")
        assert r.rationale.endswith(".") and r.summary and r.source and r.name
        assert any(str(year) in r.source for year in range(2014, 2023)), r.source


def test_docs_explain_every_rule() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "rules.md").read_text(encoding="utf-8")
    for r in all_rules():
        assert f"### {r.code}" in doc, r.code


def test_formatting_helpers() -> None:
    assert macs(2_508_800) == "2.51M" and macs(1_498_376_192) == "1.50G" and macs(951) == "951"
    assert pct(12_800, 9_216) == "-28%" and pct(1000, 998) == "-0.2%"


@pytest.mark.parametrize("code", ["R301", "R3", "R"])
def test_select_prefixes(tmp_path: Path, code: str) -> None:
    ds = findings(tmp_path, """
        network t
        input 64x28x28
        c: conv2d(64, 5, padding = 2)
        """, request=RuleRequest(select=(code,), use_pyproject=False))
    assert "R301" in {d.code for d in ds}
    assert all(d.code.startswith(code) for d in ds)


def test_R602_negative_without_weight_layers(tmp_path: Path) -> None:
    assert findings(tmp_path, "network t\ninput 3x8x8\nrelu -> maxpool(2)\n") == []
