"""Exactness of every zoo spec's compiled module.

* against the analysis: parameter count, ``FlopCounterMode`` total = 2 x analytic MACs (eval),
  and every module's output shape (forward hooks) = the inferred shape of its IR node;
* against the reference implementation (optional extras torchvision / timm / pretrainedmodels):
  identical state_dict keys and shapes, ``load_state_dict(strict=True)``, eval logits within 1e-5,
  and the train-mode aux logits too.

The analytic checks run on the ``meta`` device (same shape functions as the real kernels, no
arithmetic) for every spec, and on real CPU tensors for a few.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from archdsl.backends.codegen import Generator  # noqa: E402
from archdsl.backends.runtime import load_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.arch"))
REAL_CPU = ("googlenet", "resnet18", "bn_inception")  # full-resolution CPU runs (cheap ones)

REFERENCES = {
    "googlenet": "torchvision:googlenet",
    "inception_v3": "torchvision:inception_v3",
    "resnet18": "torchvision:resnet18",
    "resnet34": "torchvision:resnet34",
    "resnet50": "torchvision:resnet50",
    "resnet101": "torchvision:resnet101",
    "resnet152": "torchvision:resnet152",
    "densenet121": "torchvision:densenet121",
    "densenet169": "torchvision:densenet169",
    "densenet201": "torchvision:densenet201",
    "densenet161": "torchvision:densenet161",
    "vgg16": "torchvision:vgg16",
    "vgg16_bn": "torchvision:vgg16_bn",
    "squeezenet1_1": "torchvision:squeezenet1_1",
    "resnext50_32x4d": "torchvision:resnext50_32x4d",
    "wide_resnet50_2": "torchvision:wide_resnet50_2",
    "mobilenet_v2": "torchvision:mobilenet_v2",
    "mnasnet1_0": "torchvision:mnasnet1_0",
    "mnasnet0_5": "torchvision:mnasnet0_5",
    "inception_v4": "timm:inception_v4",
    "inception_resnet_v2": "timm:inception_resnet_v2",
    "bn_inception": "pretrainedmodels:bninception",
    "mobilenet_v3_large": "torchvision:mobilenet_v3_large",
    "efficientnet_b0": "torchvision:efficientnet_b0",
    "efficientnet_v2_s": "torchvision:efficientnet_v2_s",
    "efficientnet_b1": "torchvision:efficientnet_b1",
    "convnext_tiny": "torchvision:convnext_tiny",
    "convnext_small": "torchvision:convnext_small",
    "regnet_y_400mf": "torchvision:regnet_y_400mf",
    "regnet_x_400mf": "torchvision:regnet_x_400mf",
    "shufflenet_v2_x1_0": "torchvision:shufflenet_v2_x1_0",
    "shufflenet_v2_x0_5": "torchvision:shufflenet_v2_x0_5",
}


def _expected_shapes(graph) -> tuple[dict[str, tuple], set[str]]:
    """Module path -> inferred output shape, and the module op nodes a forward must reach."""
    gen = Generator(graph)
    gen.analyze()
    expected: dict[str, tuple] = {}
    must: set[str] = set()
    for nid, d in graph.g.nodes(data=True):
        if gen.is_module(nid):
            expected[d["path"]] = d["shape"]
            must.add(d["path"])
    for path in graph.scopes:
        if path in gen.first and gen.role.get(path) in ("block", "seq"):
            expected[path] = graph.node(gen.exit_node(path))["shape"]
    return expected, must


def _run_checked(model, graph, x, train: bool) -> tuple[int, dict[str, tuple]]:
    expected, _ = _expected_shapes(graph)
    seen: dict[str, tuple] = {}
    handles = []
    for name, module in model.named_modules():
        if name in expected:
            handles.append(module.register_forward_hook(
                lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:]))))
    model.train(train)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        for h in handles:
            h.remove()
    return counter.get_total_flops(), seen


def _check(spec: Path, device: str) -> None:
    loaded = load_spec(spec)
    graph = loaded.graph
    with torch.device(device):
        model = loaded.build()
        x = torch.zeros(1, *graph.input_shape)
    assert sum(p.numel() for p in model.parameters()) == graph.total_params()
    flops, seen = _run_checked(model, graph, x, train=False)
    assert flops == 2 * graph.eval_macs()
    expected, must = _expected_shapes(graph)
    eval_must = {p for p in must if graph.by_path(p) in graph.eval_nodes()}
    assert eval_must <= set(seen), sorted(eval_must - set(seen))[:5]
    bad = {k: (v, expected[k]) for k, v in seen.items() if v != tuple(expected[k])}
    assert not bad, list(bad.items())[:5]
    if len(graph.outputs) > 1:  # aux heads run in train mode only; BN needs batch > 1 there
        with torch.device(device):
            x2 = torch.zeros(2, *graph.input_shape)
        train_flops, seen = _run_checked(model, graph, x2, train=True)
        assert set(must) <= set(seen), sorted(set(must) - set(seen))[:5]
        bad = {k: (v, expected[k]) for k, v in seen.items() if v != tuple(expected[k])}
        assert not bad, list(bad.items())[:5]
        assert train_flops == 2 * 2 * sum(graph.node(n)["costs"].macs for n in graph.g.nodes)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_params_flops_and_shapes_meta(spec: Path) -> None:
    _check(spec, "meta")


@pytest.mark.parametrize("spec", [p for p in SPECS if p.stem in REAL_CPU], ids=lambda p: p.stem)
def test_params_flops_and_shapes_cpu(spec: Path) -> None:
    _check(spec, "cpu")


def test_every_zoo_spec_is_checked() -> None:
    assert len(SPECS) >= 1
    assert {p.stem for p in SPECS} - set(REFERENCES) <= {
        "googlenet_paper",
        "cifar_resnet20",   # no package builds it: tests/test_cifar_resnet.py checks it against the classic port
    }, "add the spec's reference"


# ------------------------------------------------------------------------------------ references


def _reference(spec: Path, aux: bool):
    from archdsl.backends.reference import ReferenceUnavailable, reference_model

    pkg = REFERENCES[spec.stem].split(":")[0]
    pytest.importorskip(pkg)
    try:
        return reference_model(REFERENCES[spec.stem], aux=aux)
    except (ReferenceUnavailable, ImportError) as exc:  # e.g. pretrainedmodels without its deps
        pytest.skip(str(exc))


@pytest.mark.parametrize("spec", [p for p in SPECS if p.stem in REFERENCES], ids=lambda p: p.stem)
def test_matches_reference_implementation(spec: Path) -> None:
    from archdsl.backends.reference import compare

    loaded = load_spec(spec)
    aux = tuple(n for n in loaded.graph.outputs if n != "main")
    ref = _reference(spec, bool(aux))
    torch.manual_seed(1)
    model = loaded.build()
    result = compare(model, ref, tuple(loaded.graph.input_shape), reference=REFERENCES[spec.stem],
                     aux_names=aux, tolerance=1e-5)
    assert not result.missing and not result.unexpected, str(result)
    assert not result.shape_mismatches, str(result)
    assert list(model.state_dict()) and result.loaded, str(result)
    assert result.eval_max_diff <= 1e-5, str(result)
    if aux:
        assert set(result.train_max_diff) == {"logits", *aux}, str(result)
        assert max(result.train_max_diff.values()) <= 1e-5, str(result)
    assert result.running_stats_max_diff is not None and result.running_stats_max_diff <= 1e-5, str(result)
    assert result.ok, str(result)


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_matches_reference_without_aux_heads(name: str) -> None:
    from archdsl.backends.reference import compare

    spec = ROOT / "specs" / f"{name}.arch"
    if not spec.exists():
        pytest.skip("spec not present")
    ref = _reference(spec, aux=False)
    loaded = load_spec(spec, aux_logits=False)
    result = compare(loaded.build(), ref, tuple(loaded.graph.input_shape), reference=name)
    assert result.ok, str(result)
