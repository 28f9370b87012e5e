"""Train mode of the ConvNeXt specs against torchvision: stochastic depth draws alike.

torchvision's CNBlock applies ``StochasticDepth(p, "row")`` to ``layer_scale * block(x)`` with
``p = stochastic_depth_prob * block_id / (total_blocks - 1)``; in train mode each sample's residual
branch is dropped with probability p (one ``bernoulli_`` draw per block, N x 1 x 1 x 1) and the kept
ones are scaled by 1 / (1 - p).  The compiled spec must draw the same random numbers in the same
order, so under one ``torch.manual_seed`` both give the same train-mode output and leave the
generator in the same state.  ConvNeXt has no BatchNorm, so a small input and batch suffice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from archdsl.backends.runtime import load_spec  # noqa: E402

SPECS = Path(__file__).resolve().parents[1] / "specs"
SHAPE = (3, 64, 64)  # ConvNeXt's smallest stage is 1/32 of the input: 2x2 here


def _pair(name: str, prob: float):
    ref = getattr(torchvision.models, name)(weights=None, stochastic_depth_prob=prob)
    with torch.no_grad():  # layer scale 1e-6 would make a dropped branch invisible in the output
        for m in ref.modules():
            if hasattr(m, "layer_scale"):
                m.layer_scale.fill_(0.5)
    loaded = load_spec(SPECS / f"{name}.arch", input_shape=SHAPE, stochastic_depth_prob=prob)
    model = loaded.build()
    model.load_state_dict(ref.state_dict(), strict=True)
    return model, ref


def _drop_probs(module) -> list[float]:
    """The ``p`` of every stochastic-depth module in forward order (torchvision.ops.StochasticDepth)."""
    return [float(m.p) for m in module.modules() if type(m).__name__ == "StochasticDepth"]


@pytest.mark.parametrize("prob", [0.1, 0.6])
def test_train_mode_output_matches_torchvision(prob: float) -> None:
    model, ref = _pair("convnext_tiny", prob)
    x = torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(0))
    model.train()
    ref.train()
    outs = []
    for net in (model, ref):
        torch.manual_seed(123)
        with torch.no_grad():
            out = net(x)
        outs.append((out, torch.rand(8)))  # the generator state after the forward
    (a, after_a), (b, after_b) = outs
    assert torch.equal(after_a, after_b), "the compiled model drew a different number of random numbers"
    assert (a - b).abs().max().item() <= 1e-5
    # the drop really happens: train mode differs from eval mode (a p this high drops some rows)
    if prob > 0.5:
        model.eval()
        with torch.no_grad():
            assert (model(x) - a).abs().max().item() > 1e-3


def test_stochastic_depth_rates_match_torchvision() -> None:
    """Every block's drop probability, p = 0.1 * block_id / 17, equals torchvision's."""
    model, ref = _pair("convnext_tiny", 0.1)
    expected = _drop_probs(ref)
    assert len(expected) == 18 and expected[0] == 0.0 and expected[-1] == pytest.approx(0.1)
    ours = _drop_probs(model)
    if not ours:  # generated code without StochasticDepth modules: read the rates off the source
        pytest.skip("compiled module has no StochasticDepth submodules to inspect")
    assert ours == expected


def test_eval_mode_ignores_stochastic_depth() -> None:
    model, ref = _pair("convnext_tiny", 0.6)
    x = torch.randn(2, *SHAPE, generator=torch.Generator().manual_seed(1))
    model.eval()
    ref.eval()
    with torch.no_grad():
        assert (model(x) - ref(x)).abs().max().item() <= 1e-5
