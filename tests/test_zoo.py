"""Every zoo spec gives exactly the reference parameter count and MACs (../shared/REFERENCE.md §1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archdsl import report
from archdsl.pipeline import analyze

SPECS = Path(__file__).resolve().parents[1] / "specs"

# spec: (input, params, params with aux heads or None, MACs or None) -- REFERENCE.md, measured there
# with torchvision 0.29.1, timm and pretrainedmodels.
REFERENCE = {
    "googlenet": ((3, 224, 224), 6_624_904, 13_004_888, 1_498_376_192),
    "googlenet_paper": ((3, 224, 224), 6_998_552, 13_378_280, None),
    "bn_inception": ((3, 224, 224), 11_295_240, None, 2_032_600_064),
    "inception_v3": ((3, 299, 299), 23_834_568, 27_161_264, 5_713_216_096),
    "inception_v4": ((3, 299, 299), 42_679_816, None, 12_253_974_624),
    "inception_resnet_v2": ((3, 299, 299), 55_843_464, None, 13_155_794_016),
    "resnet18": ((3, 224, 224), 11_689_512, None, 1_814_073_344),
    "resnet34": ((3, 224, 224), 21_797_672, None, 3_663_761_408),
    "resnet50": ((3, 224, 224), 25_557_032, None, 4_089_184_256),
    "resnet101": ((3, 224, 224), 44_549_160, None, 7_801_405_440),
    "resnet152": ((3, 224, 224), 60_192_808, None, 11_513_626_624),
    "densenet121": ((3, 224, 224), 7_978_856, None, 2_834_161_664),
    "densenet169": ((3, 224, 224), 14_149_480, None, 3_359_843_328),
    "densenet201": ((3, 224, 224), 20_013_928, None, 4_291_365_888),
    "densenet161": ((3, 224, 224), 28_681_000, None, 7_727_907_072),
    "vgg16": ((3, 224, 224), 138_357_544, None, 15_470_264_320),
    "vgg16_bn": ((3, 224, 224), 138_365_992, None, 15_470_264_320),
    "squeezenet1_1": ((3, 224, 224), 1_235_496, None, 349_151_936),
    "resnext50_32x4d": ((3, 224, 224), 25_028_904, None, 4_230_479_872),
    "wide_resnet50_2": ((3, 224, 224), 68_883_240, None, 11_398_021_120),
    "mobilenet_v2": ((3, 224, 224), 3_504_872, None, 300_774_272),
    "mnasnet1_0": ((3, 224, 224), 4_383_312, None, 314_415_872),
    "mnasnet0_5": ((3, 224, 224), 2_218_512, None, 104_455_968),  # torchvision mnasnet0_5, measured
    "mobilenet_v3_large": ((3, 224, 224), 5_483_032, None, 216_589_760),
    "efficientnet_b0": ((3, 224, 224), 5_288_548, None, 385_814_752),
    "efficientnet_v2_s": ((3, 224, 224), 21_458_488, None, 2_849_895_872),
    "efficientnet_b1": ((3, 240, 240), 7_794_184, None, 686_802_832),  # torchvision efficientnet_b1, measured
    "convnext_tiny": ((3, 224, 224), 28_589_128, None, 4_455_531_264),
    "convnext_small": ((3, 224, 224), 50_223_688, None, 8_683_712_256),  # torchvision convnext_small, measured
    "regnet_y_400mf": ((3, 224, 224), 4_344_144, None, 401_842_848),
    "regnet_x_400mf": ((3, 224, 224), 5_495_976, None, 413_812_608),  # torchvision regnet_x_400mf, measured
    "shufflenet_v2_x1_0": ((3, 224, 224), 2_278_604, None, 144_907_992),
    "shufflenet_v2_x0_5": ((3, 224, 224), 1_366_792, None, 40_476_448),  # torchvision shufflenet_v2_x0_5, measured
}
YAML_VERSIONS = ("googlenet", "resnet50", "densenet121", "inception_resnet_v2", "mobilenet_v2")


def _summary(path: Path, **overrides: object) -> dict:
    res = analyze(path, overrides)
    assert res.ok, [f"{d.loc}: {d.code} {d.message}" for d in res.diags]
    return report.summary_json(res.graph)


def test_every_reference_has_a_spec() -> None:
    missing = [name for name in REFERENCE if not (SPECS / f"{name}.arch").is_file()]
    assert not missing, f"zoo specs missing: {missing}"
    missing_yaml = [name for name in YAML_VERSIONS if not (SPECS / f"{name}.yaml").is_file()]
    assert not missing_yaml, f"YAML zoo specs missing: {missing_yaml}"


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("suffix", [".arch", ".yaml"])
def test_zoo_figures_exact(name: str, suffix: str) -> None:
    path = SPECS / f"{name}{suffix}"
    if suffix == ".yaml" and name not in YAML_VERSIONS and not path.exists():
        pytest.skip("no YAML version of this spec")
    shape, params, params_aux, macs = REFERENCE[name]
    doc = _summary(path)
    assert tuple(doc["input"]) == shape
    assert doc["params"] == (params_aux if params_aux is not None else params)
    if macs is not None:
        assert doc["macs"] == macs
    if params_aux is not None:
        off = _summary(path, aux_logits=False)
        assert off["params"] == params
        assert off["macs"] == doc["macs"], "aux heads must not count towards eval MACs"
        assert set(off["outputs"]) == {"main"}
    assert doc["output"] == [1000]


@pytest.mark.parametrize("name", YAML_VERSIONS)
def test_yaml_and_text_give_the_same_network(name: str) -> None:
    a = _summary(SPECS / f"{name}.arch")
    b = _summary(SPECS / f"{name}.yaml")
    strip = lambda d: [{k: v for k, v in n.items() if k != "line"} for n in d["nodes"]]  # noqa: E731
    assert strip(a) == strip(b)
    assert (a["params"], a["macs"], a["outputs"]) == (b["params"], b["macs"], b["outputs"])


def test_num_classes_override_changes_only_the_classifier() -> None:
    base = _summary(SPECS / "resnet50.arch")
    ten = _summary(SPECS / "resnet50.arch", num_classes=10)
    assert ten["output"] == [10]
    assert base["params"] - ten["params"] == 2048 * 990 + 990


def test_summary_json_is_deterministic() -> None:
    a = report.render_json(analyze(SPECS / "inception_v3.arch").graph)
    b = report.render_json(analyze(SPECS / "inception_v3.arch").graph)
    assert a == b
    json.loads(a)
