"""Every construct of the language, with exact shapes, parameters, MACs and module paths.

Expected figures are computed by hand here (conv params = out * in/groups * kh * kw + bias,
conv MACs = out * H_out * W_out * in/groups * kh * kw, linear = in * out (+ out), BN = 2 * C), never
read back from archdsl.  Each construct is checked in the text language; the YAML front end is
checked on the same networks in ``test_yaml_gives_the_same_graph``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from archdsl import report
from archdsl.frontend.loader import parse_source
from archdsl.frontend.printer import to_yaml
from archdsl.pipeline import analyze, parse_overrides


def conv_p(out: int, cin: int, kh: int, kw: int | None = None, bias: bool = True, groups: int = 1) -> int:
    kw = kh if kw is None else kw
    return out * (cin // groups) * kh * kw + (out if bias else 0)


def conv_m(out: int, h: int, w: int, cin: int, kh: int, kw: int | None = None, groups: int = 1) -> int:
    kw = kh if kw is None else kw
    return out * h * w * (cin // groups) * kh * kw


def lin_p(fin: int, out: int, bias: bool = True) -> int:
    return fin * out + (out if bias else 0)


def build(tmp_path: Path, text: str, name: str = "net.arch", **kw):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    res = analyze(path, **kw)
    assert [d for d in res.diags] == [], [f"{d.loc} {d.code} {d.message}" for d in res.diags]
    return res.graph


def table(graph) -> dict[str, tuple]:
    """path -> (op, shape, params, macs) for every row of the summary, in order."""
    return {r.path: (r.op, r.shape, r.params, r.macs) for r in report.rows(graph)}


def modules(graph) -> list[str]:
    """Module paths (the future state_dict prefixes) in creation order, internal nodes excluded."""
    return [graph.node(n)["path"] for n in graph.module_nodes()]


# ------------------------------------------------------------------------------------------ sequences


def test_sequence_chain_labels_and_positional_names(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network seq
        input 3x32x32
        conv1: conv2d(16, 3, stride = 2, padding = 1, bias = false)
        batchnorm -> relu
        conv2d(32, [1, 3], padding = [0, 1]) -> pool: maxpool(2) -> flatten
        fc: linear(10)
        """)
    # 32 -> (32 + 2 - 3) // 2 + 1 = 16
    assert table(g) == {
        "conv1": ("conv2d", (16, 16, 16), conv_p(16, 3, 3, bias=False), conv_m(16, 16, 16, 3, 3)),
        "1": ("batchnorm", (16, 16, 16), 2 * 16, 0),
        "2": ("relu", (16, 16, 16), 0, 0),
        "3": ("conv2d", (32, 16, 16), conv_p(32, 16, 1, 3), conv_m(32, 16, 16, 16, 1, 3)),
        "pool": ("maxpool", (32, 8, 8), 0, 0),
        "5": ("flatten", (32 * 8 * 8,), 0, 0),
        "fc": ("linear", (10,), lin_p(2048, 10), 2048 * 10),
    }
    assert g.total_params() == 432 + 32 + conv_p(32, 16, 1, 3) + lin_p(2048, 10)
    assert g.eval_macs() == conv_m(16, 16, 16, 3, 3) + conv_m(32, 16, 16, 16, 1, 3) + 2048 * 10
    assert report.summary_json(g)["output"] == [10]


def test_groups_are_scopes(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network groups
        input 3x8x8
        features: {
            conv2d(4, 3, padding = 1)
            relu
            inner: { conv2d(4, 1) -> relu }
        }
        { tanh }
        classifier: { flatten -> linear(2) }
        """)
    assert modules(g) == ["features.0", "features.1", "features.inner.0", "features.inner.1", "1.0",
                          "classifier.0", "classifier.1"]
    assert g.scopes["features"].kind == "group" and g.scopes["1"].kind == "group"
    assert table(g)["features.inner.0"][2:] == (conv_p(4, 4, 1), conv_m(4, 8, 8, 4, 1))
    assert table(g)["classifier.1"] == ("linear", (2,), lin_p(256, 2), 512)


# ------------------------------------------------------------------------------------------ concat


def test_concat_sums_channels_and_names_branches(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network cat
        input 8x16x16
        mixed: concat {
            b1: conv2d(4, 1)
            b2: conv2d(6, 1) -> conv2d(8, 3, padding = 1)
            b3: maxpool(3, stride = 1, padding = 1)
        }
        concat { relu  tanh }
        """)
    t = table(g)
    assert list(t) == ["mixed.b1", "mixed.b2", "mixed.2", "mixed.b3", "mixed.<concat>", "1", "2", "<concat>"]
    assert t["mixed.b1"] == ("conv2d", (4, 16, 16), conv_p(4, 8, 1), conv_m(4, 16, 16, 8, 1))
    # a labelled element followed by an unlabelled one in a branch: the next position in the scope
    assert t["mixed.2"] == ("conv2d", (8, 16, 16), conv_p(8, 6, 3), conv_m(8, 16, 16, 6, 3))
    assert t["mixed.<concat>"] == ("concat", (4 + 8 + 8, 16, 16), 0, 0)
    assert t["<concat>"] == ("concat", (40, 16, 16), 0, 0)
    assert g.scopes["mixed"].kind == "concat"


def test_concat_of_flat_vectors(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network flatcat
        input 2x4x4
        flatten
        heads: concat { a: linear(3)  b: linear(5) }
        """)
    assert table(g)["heads.<concat>"] == ("concat", (8,), 0, 0)


# ------------------------------------------------------------------------------------------ residual


def test_residual_identity_projection_scale_post(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network res
        input 16x8x8
        r1: residual { conv2d(16, 3, padding = 1, bias = false) -> bn: batchnorm }
        r2: residual(post = "relu") {
            conv2d(32, 3, stride = 2, padding = 1)
        } shortcut down {
            conv2d(32, 1, stride = 2, bias = false) -> batchnorm
        }
        r3: residual(scale = 0.2, post = "relu6") { conv2d(32, 1) }
        residual { relu } shortcut { identity }
        """)
    t = table(g)
    assert list(t) == ["r1.0", "r1.bn", "r1.<add>",
                       "r2.0", "r2.down.0", "r2.down.1", "r2.<add>", "r2.2",
                       "r3.0", "r3.<scale>", "r3.<add>", "r3.1",
                       "3", "4", "<add>"]
    assert t["r1.<add>"] == ("add", (16, 8, 8), 0, 0)
    assert t["r2.0"][1:] == ((32, 4, 4), conv_p(32, 16, 3), conv_m(32, 4, 4, 16, 3))
    assert t["r2.down.0"][1:] == ((32, 4, 4), conv_p(32, 16, 1, bias=False), conv_m(32, 4, 4, 16, 1))
    assert t["r2.down.1"][1:] == ((32, 4, 4), 64, 0)
    assert t["r2.2"][0] == "relu"              # the post-activation is a module after the add
    # (the named shortcut takes position 1 of the residual's scope, like any labelled child)
    assert t["r3.1"][0] == "relu6"
    scale = g.node(g.by_path("r3@scale"))
    assert scale["op"] == "scale" and scale["args"] == {"factor": 0.2}
    assert g.scopes["r2.down"].kind == "shortcut"
    # an anonymous residual at top level: its body and shortcut layers are positional siblings
    assert t["3"][0] == "relu" and t["4"][0] == "identity"


@pytest.mark.parametrize("stride, expect_down", [(1, False), (2, True)])
def test_conditional_shortcut(tmp_path: Path, stride: int, expect_down: bool) -> None:
    g = build(tmp_path, f"""
        network cond(stride = {stride})
        input 8x8x8
        block Basic(planes, stride = 1) {{
            residual(post = "relu") {{
                conv1: conv2d(planes, 3, stride = stride, padding = 1, bias = false)
                bn1: batchnorm
            }} shortcut downsample if stride != 1 {{
                conv2d(planes, 1, stride = stride, bias = false) -> batchnorm
            }}
        }}
        layer: Basic(8, stride)
        """)
    paths = modules(g)
    assert ("layer.downsample.0" in paths) is expect_down
    size = 8 // stride
    assert report.summary_json(g)["output"] == [8, size, size]
    extra = conv_p(8, 8, 1, bias=False) + 16 if expect_down else 0
    assert g.total_params() == conv_p(8, 8, 3, bias=False) + 16 + extra


# ------------------------------------------------------------------------------------------ dense


def test_dense_block_connectivity(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network dense(growth = 4)
        input 6x8x8
        block Layer(g) {
            norm: batchnorm
            conv: conv2d(g, 3, padding = 1, bias = false)
        }
        block1: dense(3, prefix = "layer", start = 1) as i { Layer(growth) }
        """)
    t = table(g)
    # layer i sees 6 + 4 * (i - 1) channels; the block output concatenates input and all layers
    for i, cin in ((1, 6), (2, 10), (3, 14)):
        assert t[f"block1.layer{i}.norm"] == ("batchnorm", (cin, 8, 8), 2 * cin, 0)
        assert t[f"block1.layer{i}.conv"] == ("conv2d", (4, 8, 8), conv_p(4, cin, 3, bias=False),
                                              conv_m(4, 8, 8, cin, 3))
    assert t["block1.<cat>"][1] == (10, 8, 8)
    assert t["block1.<cat_2>"][1] == (14, 8, 8)
    assert t["block1.<cat_3>"][1] == (18, 8, 8)
    assert report.summary_json(g)["output"] == [18, 8, 8]
    # the concatenated inputs are ordered: block input first, then layers in order
    last = g.by_path("block1@cat_3")
    assert [g.node(p)["path"] for p in g.inputs(last)] == ["@input", "block1.layer1.conv", "block1.layer2.conv",
                                                           "block1.layer3.conv"]


def test_dense_unlabelled_and_zero(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network d
        input 2x4x4
        dense(2) { conv2d(3, 1) }
        dense(0) { conv2d(3, 1) }
        """)
    assert modules(g) == ["0", "1"]
    assert report.summary_json(g)["output"] == [8, 4, 4]
    assert table(g)["1"][2] == conv_p(3, 5, 1)


# ------------------------------------------------------------------------------------------ repeat


def test_repeat_labelled_with_loop_variable(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network rep
        input 8x16x16
        layer1: repeat(3) as i {
            conv: conv2d(8 * (i + 1), 3, stride = if i == 0 then 2 else 1, padding = 1)
            relu
        }
        """)
    t = table(g)
    assert list(t) == ["layer1.0.conv", "layer1.0.1", "layer1.1.conv", "layer1.1.1", "layer1.2.conv", "layer1.2.1"]
    assert t["layer1.0.conv"][1:] == ((8, 8, 8), conv_p(8, 8, 3), conv_m(8, 8, 8, 8, 3))
    assert t["layer1.1.conv"][1:] == ((16, 8, 8), conv_p(16, 8, 3), conv_m(16, 8, 8, 8, 3))
    assert t["layer1.2.conv"][1:] == ((24, 8, 8), conv_p(24, 16, 3), conv_m(24, 8, 8, 16, 3))
    assert g.scopes["layer1"].kind == "repeat" and g.scopes["layer1.1"].kind == "group"


def test_repeat_single_element_body_names_iterations_directly(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network rep
        input 4x8x8
        block Unit(c) { conv: conv2d(c, 1) -> bn: batchnorm }
        stage: repeat(2) { Unit(4) }
        blocks: repeat(2, prefix = "block", start = 1) { Unit(4) }
        """)
    assert modules(g) == ["stage.0.conv", "stage.0.bn", "stage.1.conv", "stage.1.bn",
                          "blocks.block1.conv", "blocks.block1.bn", "blocks.block2.conv", "blocks.block2.bn"]
    assert g.scopes["stage.0"].kind == "block" and g.scopes["stage.0"].block == "Unit"


def test_repeat_unlabelled_splices_and_prefix_names(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network rep
        input 4x8x8
        conv2d(4, 1)
        repeat(2) as j { conv2d(4 + j, 1) -> relu }
        repeat(2, prefix = "extra", start = 5) { tanh }
        repeat(0) { conv2d(99, 1) }
        sigmoid
        """)
    # unlabelled: layers continue the enclosing sequence's positions; with a prefix they are named
    assert modules(g) == ["0", "1", "2", "3", "4", "extra5", "extra6", "5"]
    assert table(g)["3"][2] == conv_p(5, 4, 1)


def test_repeat_count_from_expression(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network rep(counts = [1, 3])
        input 1x4x4
        stages: repeat(len(counts)) as s {
            repeat(counts[s], prefix = "u") { relu }
        }
        """)
    assert modules(g) == ["stages.0.u0", "stages.1.u0", "stages.1.u1", "stages.1.u2"]


# ------------------------------------------------------------------------------------------ if / let


@pytest.mark.parametrize("width, op", [(1, "sigmoid"), (5, "tanh"), (50, "relu")])
def test_if_else_if_else(tmp_path: Path, width: int, op: str) -> None:
    g = build(tmp_path, f"""
        network cond(width = {width})
        input 1x2x2
        if width > 10 {{ act: relu }} else if width > 2 {{ act: tanh }} else {{ act: sigmoid }}
        if width == 50 {{ extra: identity }}
        """)
    assert g.node(g.by_path("act"))["op"] == op
    assert (g.by_path("extra") is not None) is (width == 50)


def test_let_scoping(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network lets(base = 4)
        input 2x4x4
        let w = base * 2
        block B(c) { conv2d(c + w, 1) }       # blocks see the file's globals ...
        a: { let w = 1  conv2d(w, 1) }        # ... a group's let shadows only inside the group
        b: conv2d(w, 1)
        c: B(1)
        d: repeat(2) as i { let k = i * 3 + 1  conv2d(k, 1) }
        e: { conv2d(w, 1)  let w = 100  conv2d(w, 1) }   # inside a body, a let rebinds for what follows
        """)
    paths = ("a.0", "b", "c.0", "d.0.0", "d.1.0", "e.0", "e.1")
    shapes = {p: g.node(g.by_path(p))["shape"][0] for p in paths}
    assert shapes == {"a.0": 1, "b": 8, "c.0": 9, "d.0.0": 1, "d.1.0": 4, "e.0": 8, "e.1": 100}


def test_block_defaults_reference_earlier_params_and_globals(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network defaults
        input 3x16x16
        let base_k = 3
        block Conv(out, k = base_k, stride = 1, padding = k // 2, mid = out * 2) {
            conv: conv2d(mid, k, stride = stride, padding = padding)
            proj: conv2d(out, 1)
        }
        a: Conv(4)
        b: Conv(4, 5)
        c: Conv(4, k = 1, mid = 6)
        d: Conv(out = 2, stride = 2)
        """)
    assert g.scopes["a"].args == {"out": 4, "k": 3, "stride": 1, "padding": 1, "mid": 8}
    assert g.scopes["b"].args == {"out": 4, "k": 5, "stride": 1, "padding": 2, "mid": 8}
    assert g.scopes["c"].args == {"out": 4, "k": 1, "stride": 1, "padding": 0, "mid": 6}
    t = table(g)
    assert t["a.conv"][1:] == ((8, 16, 16), conv_p(8, 3, 3), conv_m(8, 16, 16, 3, 3))
    assert t["b.conv"][1:] == ((8, 16, 16), conv_p(8, 4, 5), conv_m(8, 16, 16, 4, 5))
    assert t["c.conv"][1:] == ((6, 16, 16), conv_p(6, 4, 1), conv_m(6, 16, 16, 4, 1))
    assert t["d.conv"][1:] == ((4, 8, 8), conv_p(4, 4, 3), conv_m(4, 8, 8, 4, 3))


def test_inline_block_splices_into_the_caller_scope(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network inl
        input 3x8x8
        block Stem(c) { conv1: conv2d(c, 3, padding = 1) -> relu }
        block Head(n) { flatten -> fc: linear(n) }
        inline Stem(4)
        pool: maxpool(2)
        body: { inline Stem(8)  tanh }
        inline Head(3)
        """)
    # positions continue across the spliced layers; labels inside the block become siblings
    assert modules(g) == ["conv1", "1", "pool", "body.conv1", "body.1", "body.2", "4", "fc"]
    assert table(g)["fc"] == ("linear", (3,), lin_p(8 * 4 * 4, 3), 8 * 16 * 3)


# ------------------------------------------------------------------------------------------ aux heads


def test_aux_heads(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network aux(aux_on = true, classes = 5)
        input 4x8x8
        block Head(n) { global_avgpool -> flatten -> fc: linear(n) }
        conv1: conv2d(8, 3, padding = 1)
        if aux_on { aux(weight = 0.3) aux1: Head(classes) }
        conv2: conv2d(16, 3, stride = 2, padding = 1)
        aux aux2: { flatten -> linear(2) }
        head: Head(classes)
        """)
    doc = report.summary_json(g)
    assert doc["outputs"] == {"main": [5], "aux1": [5], "aux2": [2]}
    assert doc["output"] == [5]
    assert g.aux_weights == {"aux1": 0.3, "aux2": 1.0}
    main = conv_p(8, 4, 3) + conv_p(16, 8, 3) + lin_p(16, 5)
    aux = lin_p(8, 5) + lin_p(16 * 4 * 4, 2)
    assert doc["params"] == main + aux                   # the whole module, aux heads included
    main_macs = conv_m(8, 8, 8, 4, 3) + conv_m(16, 4, 4, 8, 3) + 16 * 5
    assert doc["macs"] == main_macs                      # the eval-mode forward excludes aux heads
    # the main flow continues from the tap point: conv2 sees conv1's output
    assert g.inputs(g.by_path("conv2")) == [g.by_path("conv1")]

    g_off = build(tmp_path, """
        network aux(aux_on = true, classes = 5)
        input 4x8x8
        block Head(n) { global_avgpool -> flatten -> fc: linear(n) }
        conv1: conv2d(8, 3, padding = 1)
        if aux_on { aux(weight = 0.3) aux1: Head(classes) }
        head: Head(classes)
        """, name="off.arch", overrides={"aux_on": False})
    assert list(report.summary_json(g_off)["outputs"]) == ["main"]


# ------------------------------------------------------------------------------------------ imports


def test_use_imports_relative_to_the_importing_file(tmp_path: Path) -> None:
    lib = tmp_path / "specs" / "nets" / "lib"
    lib.mkdir(parents=True)
    (lib / "common.arch").write_text("block ConvBN(c) { conv: conv2d(c, 1, bias = false) -> bn: batchnorm }\n")
    # lib/blocks.arch imports its sibling by a path relative to itself, not to the network
    (lib / "blocks.arch").write_text('use "common.arch"\nlet lib_width = 6\n'
                                     'block Pair(c) { a: ConvBN(c) b: ConvBN(lib_width) }\n')
    g = build(tmp_path, """
        network imp
        input 3x4x4
        use "lib/blocks.arch"
        p: Pair(5)
        """, name="specs/nets/net.arch")
    assert modules(g) == ["p.a.conv", "p.a.bn", "p.b.conv", "p.b.bn"]
    # the imported block sees its own file's globals (lib_width), not the importer's
    assert table(g)["p.b.conv"][1:] == ((6, 4, 4), conv_p(6, 5, 1, bias=False), conv_m(6, 4, 4, 5, 1))


def test_diamond_imports_are_fine(tmp_path: Path) -> None:
    (tmp_path / "base.arch").write_text("block Base { relu }\n")
    (tmp_path / "l1.arch").write_text('use "base.arch"\nblock L1 { Base }\n')
    (tmp_path / "l2.arch").write_text('use "base.arch"\nblock L2 { Base }\n')
    g = build(tmp_path, 'network d\ninput 1x2x2\nuse "l1.arch"\nuse "l2.arch"\nL1\nL2\n')
    assert modules(g) == ["0.0.0", "1.0.0"]


# ------------------------------------------------------------------------------------------ overrides


def test_parameter_overrides(tmp_path: Path) -> None:
    text = """
        network net(num_classes = 1000, width = 8, use_bn = false)
        input 3x8x8
        conv: conv2d(width, 3, padding = 1, bias = not use_bn)
        if use_bn { bn: batchnorm }
        global_avgpool -> flatten
        fc: linear(num_classes)
        """
    g = build(tmp_path, text)
    assert report.summary_json(g)["output"] == [1000]
    over = parse_overrides(["num_classes=10", "width=2*8", "use_bn=true"])
    assert over == {"num_classes": 10, "width": 16, "use_bn": True}
    g2 = build(tmp_path, text, name="b.arch", overrides=over)
    assert report.summary_json(g2)["output"] == [10]
    assert g2.params == {"num_classes": 10, "width": 16, "use_bn": True}
    assert g2.total_params() == conv_p(16, 3, 3, bias=False) + 32 + lin_p(16, 10)


def test_network_params_see_earlier_params(tmp_path: Path) -> None:
    text = """
        network net(width = 8, hidden = width * 4)
        input 3x4x4
        flatten -> linear(hidden)
        """
    assert report.summary_json(build(tmp_path, text))["output"] == [32]
    g = build(tmp_path, text, name="b.arch", overrides={"width": 2})
    assert report.summary_json(g)["output"] == [8]   # defaults follow the overridden parameter


def test_input_override(tmp_path: Path) -> None:
    text = """
        network net
        input 3x224x224
        conv: conv2d(8, 3, stride = 2, padding = 1)
        global_avgpool -> flatten -> fc: linear(4)
        """
    g = build(tmp_path, text, input_shape=(1, 31, 17))
    t = table(g)
    assert g.input_shape == (1, 31, 17)
    assert t["conv"][1:] == ((8, 16, 9), conv_p(8, 1, 3), conv_m(8, 16, 9, 1, 3))
    # a spec without an input line is fine when the shape comes from the command line
    g = build(tmp_path, "network n\nrelu\n", name="noinput.arch", input_shape=(2, 3, 4))
    assert report.summary_json(g)["output"] == [2, 3, 4]


def test_input_as_expression_list(tmp_path: Path) -> None:
    g = build(tmp_path, "network n(size = 32)\ninput [3, size, size // 2]\nrelu\n")
    assert g.input_shape == (3, 32, 16)


# ------------------------------------------------------------------------------------------ receptive field


def test_receptive_field_and_effective_stride(tmp_path: Path) -> None:
    g = build(tmp_path, """
        network rf
        input 1x64x64
        c1: conv2d(1, 3, padding = 1)
        c2: conv2d(1, 3, stride = 2, padding = 1)
        c3: conv2d(1, 3, dilation = 2, padding = 2)
        p: maxpool(2)
        """)
    rf = {p: g.node(g.by_path(p))["rf"] for p in ("c1", "c2", "c3", "p")}
    assert rf == {"c1": (3, 3, 1, 1), "c2": (5, 5, 2, 2), "c3": (13, 13, 2, 2), "p": (15, 15, 4, 4)}


# ------------------------------------------------------------------------------------------ both front ends

LANGUAGE_TOUR = """
    network tour(width = 8, classes = 3, aux_on = true)
    input 3x16x16
    let half = width // 2
    block Unit(c, stride = 1, k = 3) {
        conv: conv2d(c, k, stride = stride, padding = k // 2, bias = false)
        bn: batchnorm(eps = 0.001)
        relu
    }
    stem: Unit(width, stride = 2)
    mixed: concat {
        a: Unit(half, k = 1)
        b: { Unit(half, k = 1) -> Unit(half) }
        c: avgpool(3, stride = 1, padding = 1, count_include_pad = false) -> Unit(half, k = 1)
    }
    stage: repeat(2, prefix = "block") as i {
        residual(post = "relu") {
            Unit(16, stride = if i == 0 then 2 else 1) -> conv2d(16, 3, padding = 1)
        } shortcut down if i == 0 {
            conv2d(16, 1, stride = 2, bias = false) -> batchnorm
        }
    }
    dense1: dense(2, prefix = "l", start = 1) { Unit(4) }
    if aux_on { aux(weight = 0.4) side: { global_avgpool -> flatten -> linear(classes) } } else { identity }
    inline Unit(8, k = 1)
    global_avgpool -> flatten -> dropout(0.2)
    fc: linear(classes)
"""


def test_yaml_gives_the_same_graph(tmp_path: Path) -> None:
    text = textwrap.dedent(LANGUAGE_TOUR).lstrip("\n")
    (tmp_path / "tour.arch").write_text(text)
    (tmp_path / "tour.yaml").write_text(to_yaml(parse_source(text, "tour.arch")))
    a, b = analyze(tmp_path / "tour.arch"), analyze(tmp_path / "tour.yaml")
    assert a.ok and b.ok, [d.message for d in [*a.diags, *b.diags]]
    ja, jb = report.summary_json(a.graph), report.summary_json(b.graph)
    for doc in (ja, jb):
        for node in doc["nodes"]:
            node.pop("line")
    assert json.dumps(ja) == json.dumps(jb)
    # spot-check the tour itself
    t = table(a.graph)
    assert t["stem.conv"][1:] == ((8, 8, 8), conv_p(8, 3, 3, bias=False), conv_m(8, 8, 8, 3, 3))
    assert t["mixed.<concat>"][1] == (12, 8, 8)
    assert t["stage.block0.down.0"][1] == (16, 4, 4)
    assert "stage.block1.down.0" not in t
    assert t["dense1.<cat_2>"][1] == (24, 4, 4)
    assert ja["outputs"] == {"main": [3], "side": [3]}
