"""The R7xx rules (archdsl/rules/checks/modern.py): SE gates, depthwise convs, linear bottlenecks and stacked
normalization, with exact figures on tiny specs, the negatives that keep them quiet on good designs, and
silence over the whole zoo.
"""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archdsl.diagnostics import INFO, WARNING, Diagnostic
from archdsl.pipeline import analyze
from archdsl.rules import RuleRequest, all_rules, lint

ROOT = Path(__file__).resolve().parents[1]
ZOO = sorted(p.name for p in (ROOT / "specs").iterdir() if p.suffix in (".arch", ".yaml"))
NO_PYPROJECT = RuleRequest(use_pyproject=False)


def r7(tmp_path: Path, text: str, name: str = "t.arch") -> list[Diagnostic]:
    """The R7xx findings of a spec (all severities), in file order."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    res = analyze(path)
    assert res.ok, [f"{d.loc}: {d.code} {d.message}" for d in res.diags]
    return sorted((d for d in lint(res, NO_PYPROJECT) if d.code.startswith("R7")), key=Diagnostic.sort_key)


def where(ds: list[Diagnostic]) -> list[tuple[str, str, int, int]]:
    return [(d.code, d.severity, d.loc.line, d.loc.col) for d in ds]


def test_the_rules_are_registered_with_their_papers() -> None:
    rules = {r.code: r for r in all_rules() if r.code.startswith("R7")}
    assert [(c, r.name) for c, r in sorted(rules.items())] == [
        ("R701", "se-reduction-ratio"), ("R702", "se-after-addition"), ("R703", "depthwise-without-pointwise"),
        ("R704", "activation-after-linear-bottleneck"), ("R705", "stacked-normalization")]
    assert rules["R701"].source == rules["R702"].source == 'Hu et al. 2018, "Squeeze-and-Excitation Networks"'
    assert rules["R703"].source.startswith("Howard et al. 2017") and rules["R704"].source.startswith("Sandler")
    assert "ConvNet for the 2020s" in rules["R705"].source and rules["R705"].severity_note


@pytest.mark.parametrize("name", ZOO)
def test_no_r7_finding_on_the_zoo(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    res = analyze(f"specs/{name}")
    assert res.ok
    found = [d for d in lint(res, NO_PYPROJECT) if d.code.startswith("R7") or d.code == "R000"]
    assert not found, "\n".join(f"{d.loc}: {d.code} {d.message}" for d in found)


# ---------------------------------------------------------------------------------- R701

SE_BLOCK = """
network se
input 64x8x8
residual(post = "relu") {{
    conv2d(16, 1, bias = false) -> batchnorm -> relu
    conv2d(64, 1, bias = false) -> batchnorm
    gate {{ global_avgpool -> conv2d({w}, 1) -> relu -> conv2d(64, 1) -> sigmoid }}
}}
"""


def test_R701_no_bottleneck_exact(tmp_path: Path) -> None:
    (d,) = r7(tmp_path, SE_BLOCK.format(w=64))
    assert where([d]) == [("R701", WARNING, 6, 30)]
    assert d.message == ("squeeze-and-excitation gate on 64 channels squeezes them to 64 (reduction ratio r = 1): "
                         "no bottleneck; its two layers hold 8,320 params, the SE paper's r = 16 needs 580")
    assert d.hint == ("squeeze to 4 channels (r = 16, the SE paper's choice): conv2d(4, 1); the gate goes from "
                      "8,320 to 580 params (-7,740)")
    # 64·64 + 64 and 64·64 + 64 before; 64·4 + 4 and 4·64 + 64 after
    assert d.evidence == {"channels": 64, "squeeze_width": 64, "ratio": 1.0, "squeeze_to": 4,
                          "params_before": 8_320, "params_after": 580}


def test_R701_too_narrow_and_the_tested_range(tmp_path: Path) -> None:
    (d,) = r7(tmp_path, SE_BLOCK.format(w=1))
    assert d.evidence["ratio"] == 64 and d.evidence["squeeze_to"] == 4 and "narrower than r = 32" in d.message
    assert d.hint.endswith("the gate goes from 193 to 580 params (+387)")
    for w in (32, 16, 4, 2):            # r = 2, 4, 16, 32: what the SE paper tested
        assert r7(tmp_path, SE_BLOCK.format(w=w)) == []
    assert "hardly a bottleneck" in r7(tmp_path, SE_BLOCK.format(w=48))[0].message     # r = 1.33


def test_R701_only_se_shaped_gates(tmp_path: Path) -> None:
    # a gate without a global squeeze (a spatial gate) has no reduction ratio
    assert r7(tmp_path, """
        network g
        input 16x8x8
        gate { conv2d(16, 1) -> relu -> conv2d(16, 1) -> sigmoid }
    """) == []


# ---------------------------------------------------------------------------------- R702


def test_R702_se_post_exact(tmp_path: Path) -> None:
    (d,) = r7(tmp_path, """
        network se_post
        input 64x8x8
        residual(post = "relu") {
            conv2d(16, 1, bias = false) -> batchnorm -> relu
            conv2d(64, 1, bias = false) -> bn: batchnorm
        }
        se: gate { global_avgpool -> conv2d(4, 1) -> relu -> conv2d(64, 1) -> sigmoid }
    """)
    assert where([d]) == [("R702", WARNING, 7, 5)] and d.path == "se.<mul>"
    assert d.hint == ("move the gate into the residual branch, right after bn and before the sum: same 580 params "
                      "on the same 64 channels, same MACs")
    assert d.evidence == {"channels": 64, "gate_params": 580, "sum": "<add>", "branch_end": "bn"}


def test_R702_silent_for_se_in_the_branch_pre_and_identity(tmp_path: Path) -> None:
    block = """
        network se_ok
        input 64x8x8
        block SE(c) { gate { global_avgpool -> conv2d(c // 16, 1) -> relu -> conv2d(c, 1) -> sigmoid } }
        residual(post = "relu") { conv2d(16, 1) -> relu -> conv2d(64, 1) -> SE(64) }
        residual(post = "relu") { SE(64) -> conv2d(16, 1) -> relu -> conv2d(64, 1) }
        residual(post = "relu") { conv2d(16, 1) -> relu -> conv2d(64, 1) } shortcut { SE(64) }
    """
    assert r7(tmp_path, block) == []


# ---------------------------------------------------------------------------------- R703


def test_R703_stacked_depthwise_exact(tmp_path: Path) -> None:
    (d,) = r7(tmp_path, """
        network dw
        input 32x16x16
        dw1: conv2d(32, 3, padding = 1, groups = 32, bias = false) -> batchnorm -> relu
        dw2: conv2d(32, 3, padding = 1, groups = 32, bias = false) -> batchnorm -> relu
        conv2d(64, 1)
    """)
    assert where([d]) == [("R703", WARNING, 3, 6)] and d.path == "dw1"
    assert d.message == ("depthwise 3x3 conv on 16x16x32 filters each channel on its own, and its output reaches "
                         "depthwise conv dw2 without any channel-mixing layer: no feature here combines two channels")
    assert d.hint == ("add a pointwise conv2d(32, 1) after it, before dw2 (MobileNet's depthwise separable pair): "
                      "+1,024 weights, +262.14K MACs")
    assert d.evidence == {"channels": 32, "grid": "16x16", "reaches": "dw2", "pointwise_weights": 1_024,
                          "pointwise_macs": 262_144}


def test_R703_negatives(tmp_path: Path) -> None:
    # a pointwise conv, a grouped conv, a channels-last linear each mix channels; a depthwise result
    # concatenated with mixed channels (GhostNet's cheap operation) is mixed
    assert r7(tmp_path, """
        network ok
        input 32x16x16
        conv2d(32, 3, padding = 1, groups = 32) -> relu -> conv2d(32, 1)
        conv2d(32, 3, padding = 1, groups = 32) -> relu -> conv2d(32, 1, groups = 4)
        conv2d(32, 3, padding = 1, groups = 32) -> permute([0, 2, 3, 1]) -> linear(32) -> permute([0, 3, 1, 2])
        concat { identity  conv2d(32, 3, padding = 1, groups = 32) }
        conv2d(64, 3, padding = 1, groups = 64)
        conv2d(64, 1)
    """) == []


def test_R703_to_the_output_through_a_gate_and_pools(tmp_path: Path) -> None:
    (d,) = r7(tmp_path, """
        network out
        input 16x8x8
        dw: conv2d(16, 3, padding = 1, groups = 16)
        gate { global_avgpool -> conv2d(4, 1) -> relu -> conv2d(16, 1) -> sigmoid }
        global_avgpool -> flatten
    """)
    assert d.path == "dw" and d.evidence["reaches"] == "<output>" and "the network's output 'main'" in d.message


# ---------------------------------------------------------------------------------- R704

INVERTED = """
network ir
input 16x8x8
residual{post} {{
    conv2d(96, 1, bias = false) -> batchnorm -> relu6
    dw: conv2d(96, 3, padding = 1, groups = 96, bias = false) -> batchnorm -> relu6
    proj: conv2d(16, 1, bias = false) -> batchnorm{act}
}}
"""


def test_R704_activation_after_the_projection_exact(tmp_path: Path) -> None:
    (d,) = r7(tmp_path, INVERTED.format(post="", act=" -> relu6"))
    assert where([d]) == [("R704", WARNING, 6, 55)]
    assert d.message == ("relu6 on the 16-channel output of the projection proj (96 -> 16 channels after the "
                         "depthwise conv dw): a non-linearity in the narrow bottleneck destroys information "
                         "(MobileNetV2's linear bottleneck)")
    assert d.hint == "remove the relu6 and keep the projection linear: same params, same MACs"
    assert d.evidence == {"activation": "relu6", "projection": "proj", "depthwise": "dw", "expanded_channels": 96,
                          "bottleneck_channels": 16, "residual_post": False}


def test_R704_post_activation_of_the_residual(tmp_path: Path) -> None:
    (d,) = r7(tmp_path, INVERTED.format(post='(post = "relu")', act=""))
    assert (d.loc.line, d.loc.col) == (3, 1) and d.evidence["residual_post"] is True
    assert d.hint.startswith('remove post = "relu" from the residual')
    assert r7(tmp_path, INVERTED.format(post="", act="")) == []


def test_R704_negatives(tmp_path: Path) -> None:
    # ShuffleNetV2: the 1x1 after the depthwise conv keeps the width; ResNet: the narrowing 1x1 reads no
    # depthwise conv; an SE body's reducing FC is no projection
    assert r7(tmp_path, """
        network ok
        input 64x8x8
        conv2d(64, 3, padding = 1, groups = 64) -> batchnorm -> conv2d(64, 1) -> batchnorm -> relu
        conv2d(16, 1) -> batchnorm -> relu -> conv2d(16, 3, padding = 1) -> relu -> conv2d(64, 1)
        gate { global_avgpool -> conv2d(4, 1) -> relu -> conv2d(64, 1) -> sigmoid }
    """) == []


# ---------------------------------------------------------------------------------- R705


def test_R705_batchnorm_twice_exact(tmp_path: Path) -> None:
    (d,) = r7(tmp_path, """
        network bn2
        input 8x8x8
        conv2d(16, 3, padding = 1, bias = false) -> bn1: batchnorm -> bn2: batchnorm -> relu
    """)
    assert where([d]) == [("R705", WARNING, 3, 50)] and d.path == "bn1"
    assert d.message == ("batchnorm on 16 channels right before the batchnorm bn2, which standardizes every channel "
                         "again: the first is a per-channel affine map that the second undoes (32 params wasted)")
    assert d.hint == "remove this batchnorm (-32 params, the same function up to eps)"
    assert d.evidence == {"first": "bn1", "second": "bn2", "channels": 16, "wasted_params": 32}


def test_R705_severity_follows_what_the_second_norm_cancels(tmp_path: Path) -> None:
    ds = r7(tmp_path, """
        network norms
        input 8x8x8
        a: layernorm -> b: batchnorm -> relu
        c: batchnorm -> permute([0, 2, 3, 1]) -> d: layernorm -> permute([0, 3, 1, 2]) -> relu
        e: layernorm -> f: groupnorm(8) -> relu
        g: layernorm -> h: groupnorm(2) -> relu
        i: layernorm(affine = false) -> j: batchnorm -> relu
    """)
    assert [(d.path, d.severity) for d in ds] == [("a", WARNING), ("c", INFO), ("e", WARNING), ("g", INFO),
                                                   ("i", INFO)]
    assert ds[0].hint == "set affine = false on this layernorm (-16 params, the same function up to eps)"


def test_R705_negatives(tmp_path: Path) -> None:
    # an activation, a conv or a fork between two norms: each normalizes something new
    assert r7(tmp_path, """
        network ok
        input 8x8x8
        batchnorm -> relu -> batchnorm
        conv2d(8, 1) -> layernorm -> conv2d(8, 1) -> batchnorm
        residual { batchnorm } -> batchnorm
    """) == []


# ---------------------------------------------------------------------------------- random modern blocks

#: Layers that keep 16 channels, so any sequence of them is a valid network.
MODERN = st.sampled_from([
    "conv2d(16, 3, padding = 1, groups = 16) -> batchnorm -> relu6",
    "conv2d(16, 1) -> batchnorm",
    "conv2d(16, 1) -> relu",
    "gate { global_avgpool -> conv2d(4, 1) -> relu -> conv2d(16, 1) -> sigmoid }",
    "gate { global_avgpool -> conv2d(16, 1) -> relu -> conv2d(16, 1) -> hardsigmoid }",
    "layernorm", "batchnorm", "groupnorm(4)", "relu", "drop_path(0.1)",
    "permute([0, 2, 3, 1]) -> layernorm -> linear(64) -> gelu -> linear(16) -> permute([0, 3, 1, 2])",
    "residual { conv2d(96, 1) -> relu6 -> conv2d(96, 3, padding = 1, groups = 96) -> conv2d(16, 1) -> batchnorm }",
    'residual(post = "relu") { conv2d(16, 3, padding = 1, groups = 16) -> conv2d(8, 1) -> conv2d(16, 1) }',
    "concat { chunk(2, 0)  chunk(2, 1) -> conv2d(8, 3, padding = 1, groups = 8) }",
    "channel_shuffle(2)",
])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MODERN, min_size=1, max_size=8), st.booleans())
def test_random_modern_blocks_never_crash_and_are_deterministic(layers: list[str], head: bool) -> None:
    tail = ["global_avgpool -> flatten -> linear(10)"] if head else []
    text = "\n".join(["network m", "input 16x8x8", *layers, *tail]) + "\n"
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.arch"
        path.write_text(text, encoding="utf-8")
        res = analyze(path)
        assert res.ok, [e.message for e in res.diags if e.is_error]
        runs = [[(f.code, f.severity, f.loc, f.message, f.hint) for f in lint(res, NO_PYPROJECT)] for _ in range(2)]
    assert runs[0] == runs[1]
    assert not [f for f in runs[0] if f[0] == "R000"], runs[0]
