"""The blocks of post-2017 CNNs: gate, layernorm, groupnorm, drop_path, layer_scale, permute, N-D
linear, chunk / split, channel_shuffle, pad_channels, hardsigmoid, and labels that are keywords.

Shapes are checked against torch itself (hypothesis drives the sizes): archdsl must infer exactly
the shape torch produces, and report an error exactly when torch refuses.
"""

from __future__ import annotations

import itertools
import pickle
import textwrap
from pathlib import Path

import pytest
from cli_support import run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shape_support import agree, infer, torch_shape

from archdsl import report
from archdsl.frontend.loader import parse_source
from archdsl.frontend.printer import to_text, to_yaml
from archdsl.ops import OPS, ChannelsLast, ShapeError, channels
from archdsl.pipeline import analyze

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def summary(tmp_path: Path, text: str, name: str = "n.arch") -> dict:
    path = tmp_path / name
    path.write_text(src(text))
    res = analyze(path)
    assert res.ok, [f"{d.loc}: {d.code} {d.message}" for d in res.diags]
    return report.summary_json(res.graph)


# ------------------------------------------------------------------------------------ shape rules vs torch

torch = pytest.importorskip("torch")
F = torch.nn.functional


@SETTINGS
@given(c=st.integers(1, 24), h=st.integers(1, 6), chunks=st.integers(1, 9), index=st.integers(0, 9))
def test_chunk_matches_torch(c: int, h: int, chunks: int, index: int) -> None:
    x = torch.zeros(1, c, h, h)
    agree(infer("chunk", {"chunks": chunks, "index": index}, (c, h, h)),
          torch_shape(lambda: x.chunk(chunks, 1)[index]))


@SETTINGS
@given(c=st.integers(1, 24), sizes=st.one_of(st.integers(1, 9), st.lists(st.integers(1, 9), min_size=1, max_size=4)),
       index=st.integers(0, 5))
def test_split_matches_torch(c: int, sizes, index: int) -> None:
    x = torch.zeros(1, c, 2, 2)
    arg = tuple(sizes) if isinstance(sizes, list) else sizes
    agree(infer("split", {"sizes": arg, "index": index}, (c, 2, 2)), torch_shape(lambda: x.split(sizes, 1)[index]))


@SETTINGS
@given(c=st.integers(1, 24), groups=st.integers(1, 8))
def test_channel_shuffle_and_groupnorm_match_torch(c: int, groups: int) -> None:
    x = torch.zeros(2, c, 3, 3)
    agree(infer("channel_shuffle", {"groups": groups}, (c, 3, 3)), torch_shape(lambda: F.channel_shuffle(x, groups)))
    agree(infer("groupnorm", {"groups": groups}, (c, 3, 3)),
          torch_shape(lambda: torch.nn.GroupNorm(groups, c)(x)))


@SETTINGS
@given(dims=st.permutations([0, 1, 2, 3]), c=st.integers(1, 5), h=st.integers(1, 5), w=st.integers(1, 5))
def test_permute_tracks_the_channel_axis(dims: list[int], c: int, h: int, w: int) -> None:
    ours = infer("permute", {"dims": tuple(dims)}, (c, h, w))
    theirs = torch_shape(lambda: torch.zeros(1, c, h, w).permute(*dims))
    if dims[0] != 0 or dims[1:] not in ([1, 2, 3], [1, 3, 2], [2, 3, 1], [3, 2, 1]):
        assert isinstance(ours, ShapeError) and ours.code == "E213"  # batch first, channels first or last
        return
    assert tuple(ours) == theirs
    assert isinstance(ours, ChannelsLast) == (dims[3] == 1)
    if isinstance(ours, ChannelsLast):  # and back again
        back = infer("permute", {"dims": (0, 3, 1, 2)}, ours)
        assert not isinstance(back, ChannelsLast) and channels(back) == c


@SETTINGS
@given(c=st.integers(1, 8), h=st.integers(1, 5), w=st.integers(1, 5), out=st.integers(1, 8))
def test_linear_and_layernorm_on_channels_last(c: int, h: int, w: int, out: int) -> None:
    x = torch.zeros(1, h, w, c)
    shape = ChannelsLast((h, w, c))
    lin = infer("linear", {"out": out}, shape)
    assert isinstance(lin, ChannelsLast) and tuple(lin) == torch_shape(lambda: torch.nn.Linear(c, out)(x))
    assert OPS["linear"].cost({"out": out, "bias": True}, [shape], lin).macs == h * w * c * out
    assert infer("layernorm", {}, shape) == shape
    assert OPS["layernorm"].torch({"eps": 1e-6, "affine": True}, [shape]) == "nn.LayerNorm(8, eps=1e-06)".replace(
        "8", str(c))
    assert OPS["layernorm"].torch({"eps": 1e-6, "affine": True}, [(c, h, w)]).startswith("LayerNorm2d(")


@SETTINGS
@given(c=st.integers(1, 8), before=st.integers(0, 5), after=st.integers(0, 5))
def test_pad_channels_matches_torch(c: int, before: int, after: int) -> None:
    x = torch.zeros(1, c, 3, 3)
    agree(infer("pad_channels", {"before": before, "after": after}, (c, 3, 3)),
          torch_shape(lambda: F.pad(x, (0, 0, 0, 0, before, after))))


@SETTINGS
@given(c=st.integers(1, 6), h=st.integers(1, 5), gc=st.sampled_from(["c", 1]), gh=st.sampled_from(["h", 1, 2]))
def test_gate_broadcasts_like_torch(c: int, h: int, gc, gh) -> None:
    gate = (c if gc == "c" else gc, h if gh == "h" else gh, h if gh == "h" else gh)
    try:
        ours = OPS["mul"].shape({}, [(c, h, h), gate])
    except ShapeError as exc:
        ours = exc
    try:
        theirs = tuple((torch.zeros(1, c, h, h) * torch.zeros(1, *gate)).shape[1:])
    except RuntimeError:
        theirs = None
    if theirs != (c, h, h):  # torch may broadcast the input up; a gate must keep its input's shape
        assert isinstance(ours, ShapeError) and ours.code == "E212"
    else:
        assert ours == theirs


def test_shapes_pickle_with_their_layout() -> None:
    s = ChannelsLast((7, 7, 96))
    assert pickle.loads(pickle.dumps(s)) == s and isinstance(pickle.loads(pickle.dumps(s)), ChannelsLast)
    assert s != (7, 7, 96) and tuple(s) == (7, 7, 96)


# ------------------------------------------------------------------------------------ costs and paths


def test_convnext_block_costs_and_paths(tmp_path: Path) -> None:
    doc = summary(tmp_path, """
        network n
        input 96x56x56
        block CNBlock(dim, p) {
            residual {
                `block`: {
                    conv2d(dim, 7, padding = 3, groups = dim)
                    permute([0, 2, 3, 1])
                    layernorm(eps = 1e-6)
                    linear(4 * dim)
                    gelu
                    linear(dim)
                    permute([0, 3, 1, 2])
                }
                layer_scale: layer_scale(1e-6)
                stochastic_depth: drop_path(p)
            }
        }
        `repeat`: CNBlock(96, 0.1)
        """)
    nodes = {n["path"]: n for n in doc["nodes"]}
    assert nodes["repeat.block.2"]["op"] == "layernorm" and nodes["repeat.block.2"]["params"] == 192
    assert nodes["repeat.block.3"]["macs"] == 56 * 56 * 96 * 384
    assert nodes["repeat.layer_scale"]["params"] == 96
    # torchvision's CNBlock(96): 4,704 + 96 (dwconv) + 192 (LN) + 37,248 + 36,960 (two Linear) + 96 (layer scale)
    assert doc["params"] == 4704 + 96 + 192 + 96 * 384 + 384 + 384 * 96 + 96 + 96
    assert doc["output"] == [96, 56, 56]


def test_squeeze_excitation_gate(tmp_path: Path) -> None:
    doc = summary(tmp_path, """
        network n
        input 32x14x14
        se: gate { avgpool: adaptive_avgpool(1) -> fc1: conv2d(8, 1) -> relu -> fc2: conv2d(32, 1) -> hardsigmoid }
        """)
    assert doc["output"] == [32, 14, 14]
    assert doc["params"] == 32 * 8 + 8 + 8 * 32 + 32
    assert [n["op"] for n in doc["nodes"]][-2:] == ["hardsigmoid", "mul"]


def test_spatial_attention_gate(tmp_path: Path) -> None:
    doc = summary(tmp_path, """
        network n
        input 16x8x8
        gate { conv2d(1, 7, padding = 3) -> sigmoid }
        """)
    assert doc["output"] == [16, 8, 8]


# ------------------------------------------------------------------------------------ labels that are keywords

ESCAPED = src("""
    network n
    input 3x8x8
    `block`: conv2d(4, 3)
    `repeat`: repeat(2) { relu }
    residual { conv2d(4, 1) } shortcut `shortcut` { conv2d(4, 1) }
    `group`: { `concat`: relu -> `dense`: identity }
    `block1-0`: conv2d(4, 1)
    stage: repeat(2, prefix = "block2-") { conv2d(4, 1) }
    """)


def test_keyword_labels_name_modules_in_both_front_ends(tmp_path: Path) -> None:
    spec = parse_source(ESCAPED, "e.arch")
    yaml = to_yaml(spec)
    assert "'`block`':" in yaml
    assert parse_source(yaml, "e.yaml", yaml=True) == spec
    assert parse_source(to_text(spec), "p.arch") == spec
    assert "`repeat`: repeat(2) {" in to_text(spec)
    paths = [n["path"] for n in summary(tmp_path, ESCAPED)["nodes"]]
    assert {"block", "repeat.0", "repeat.1", "shortcut.0", "group.concat", "group.dense", "block1-0",
            "stage.block2-0", "stage.block2-1"} <= set(paths)


def test_hyphenated_names_compile_to_torchvision_style_keys(tmp_path: Path) -> None:
    from archdsl.backends.runtime import load_spec

    (tmp_path / "e.arch").write_text(ESCAPED)
    model = load_spec(tmp_path / "e.arch").build()
    keys = set(model.state_dict())
    assert {"block1-0.weight", "stage.block2-0.weight", "stage.block2-1.bias", "block.weight"} <= keys
    assert tuple(model(torch.zeros(1, 3, 8, 8)).shape) == (1, 4, 6, 6)


def test_convert_keeps_escaped_labels(tmp_path: Path) -> None:
    (tmp_path / "e.arch").write_text(ESCAPED)
    assert run("convert", str(tmp_path / "e.arch"), "-o", str(tmp_path / "e.yaml"))[0] == 0
    assert run("convert", str(tmp_path / "e.yaml"), "-o", str(tmp_path / "back.arch"))[0] == 0
    a = summary(tmp_path, ESCAPED)
    b = report.summary_json(analyze(tmp_path / "back.arch").graph)
    assert [n["path"] for n in a["nodes"]] == [n["path"] for n in b["nodes"]]


def test_keywords_still_cannot_name_lets_or_loop_variables(tmp_path: Path) -> None:
    (tmp_path / "bad.arch").write_text("network n\ninput 3x8x8\nrepeat(2) as `then` { relu }\n")
    rc, out, err = run("check", str(tmp_path / "bad.arch"))
    assert rc == 1 and "error[E001]" in out + err


@pytest.mark.parametrize("body", ["training: layer_scale -> dropout(0.5)", "g: { to: layer_scale }",
                                  "forward: layer_scale"])
def test_layer_scale_names_are_checked_like_module_names(tmp_path: Path, body: str) -> None:
    (tmp_path / "p.arch").write_text(f"network n\ninput 4x8x8\n{body}\n")
    rc, out, err = run("compile", str(tmp_path / "p.arch"), "-o", str(tmp_path / "p.py"))
    assert rc == 1 and "error[E330]" in out + err and "Traceback" not in out + err
    assert not (tmp_path / "p.py").exists()


def test_layer_scale_in_a_namespace_and_silu_in_place_compute_what_they_say(tmp_path: Path) -> None:
    from archdsl.backends.runtime import load_spec

    (tmp_path / "p.arch").write_text(src("""
        network n
        input 4x8x8
        g: { conv2d(4, 1) -> layer_scale(0.5) -> s: scale(2.0) }
        residual { s2: silu(inplace = true) }
        """))
    model = load_spec(tmp_path / "p.arch").build()
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        c = F.conv2d(x, model.g["0"].weight, model.g["0"].bias) * 0.5 * 2.0
        assert torch.allclose(model(x), F.silu(c) + c)  # silu must not overwrite the shortcut's tensor
    assert "g.1" in model.state_dict()


# ------------------------------------------------------------------------------------ random networks vs torch


@st.composite
def modern_networks(draw) -> str:
    """A random valid network built from the new blocks, with labels and positional names mixed."""
    c = draw(st.sampled_from([4, 6, 8]))
    hw = draw(st.integers(5, 9))
    lines = ["network m", f"input {c}x{hw}x{hw}"]
    for i in range(draw(st.integers(2, 6))):
        kind = draw(st.sampled_from(["conv", "norm", "gate", "cn", "shuffle", "split", "pad", "act"]))
        label = draw(st.sampled_from(["", f"l{i}: ", f"`block{i}-0`: "]))
        if kind == "conv":
            out = draw(st.sampled_from([4, 6, 8, 12]))
            k = draw(st.sampled_from([1, 3]))
            lines.append(f"{label}conv2d({out}, {k}, padding = {k // 2}, bias = false)")
            c = out
        elif kind == "norm":
            g = draw(st.sampled_from([g for g in (1, 2, c) if c % g == 0]))
            lines.append(f"{label}" + draw(st.sampled_from([f"groupnorm({g})", "layernorm(eps = 1e-6)"])))
        elif kind == "gate":
            act = draw(st.sampled_from(["sigmoid", "hardsigmoid"]))
            lines.append(f"{label}gate {{ adaptive_avgpool(1) -> fc1_{i}: conv2d({max(1, c // 2)}, 1) -> relu "
                         f"-> fc2_{i}: conv2d({c}, 1) -> {act} }}")
        elif kind == "cn":  # ConvNeXt-style residual through a channels-last MLP
            p = draw(st.sampled_from([0.0, 0.3]))
            lines.append(f"{label}residual {{ `block{i}`: {{ conv2d({c}, 3, padding = 1, groups = {c}) -> "
                         f"permute([0, 2, 3, 1]) -> layernorm -> linear({2 * c}) -> gelu -> linear({c}) -> "
                         f"permute([0, 3, 1, 2]) }} -> gamma{i}: layer_scale(0.5) -> sd{i}: drop_path({p}) }}")
        elif kind == "shuffle" and c % 2 == 0:  # ShuffleNetV2 unit
            lines.append(f"{label}concat {{ chunk(2, 0)\n chunk(2, 1) -> b{i}: {{ conv2d({c // 2}, 1) -> relu }} }}"
                         " -> channel_shuffle(2)")
        elif kind == "split" and c >= 4:
            lines.append(f"{label}concat {{ split([1, {c - 1}], 1)\n split([1, {c - 1}], 0) }}")
        elif kind == "pad":
            lines.append(f"{label}pad_channels(1, 2)")
            c += 3
        else:
            lines.append(f"{label}" + draw(st.sampled_from(["hardswish", "silu(inplace = true)", "hardsigmoid"])))
    lines.append("global_avgpool -> flatten -> layernorm -> fc: linear(3)")
    return "\n".join(lines) + "\n"


NETS = itertools.count()


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=modern_networks())
def test_random_modern_network_matches_torch(text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    import archdsl
    from archdsl.backends.codegen import Generator

    path = tmp_path_factory.mktemp("modern") / f"net{next(NETS)}.arch"
    path.write_text(text, encoding="utf-8")
    res = analyze(path)
    assert res.ok, ([f"{d.loc} {d.code} {d.message}" for d in res.diags], text)
    graph = res.graph
    gen = Generator(graph)
    gen.analyze()
    expected = {d["path"]: tuple(d["shape"]) for nid, d in graph.g.nodes(data=True) if gen.is_module(nid)}
    model = archdsl.build(path).eval()
    assert sum(p.numel() for p in model.parameters()) == graph.total_params(), text
    seen: dict[str, tuple] = {}
    handles = [m.register_forward_hook(lambda _m, _i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:])))
               for name, m in model.named_modules() if name in expected]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            y = model(torch.randn(2, *graph.input_shape))
    finally:
        for h in handles:
            h.remove()
    assert tuple(y.shape) == (2, 3), text
    assert set(expected) <= set(seen), (sorted(set(expected) - set(seen)), text)
    assert {k: v for k, v in seen.items() if v != expected[k]} == {}, text
    assert counter.get_total_flops() == 2 * 2 * graph.eval_macs(), text
    model.train()  # stochastic depth and the rest run in train mode too
    assert tuple(model(torch.randn(2, *graph.input_shape)).shape) == (2, 3), text
