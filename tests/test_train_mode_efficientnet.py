"""Train-mode outputs of the compiled EfficientNets equal torchvision's under the same seed.

torchvision's MBConv / FusedMBConv send the body of every block with an identity shortcut through
``StochasticDepth(p, "row")``, ``p = 0.2 * block_index / num_blocks``: in train mode each sample's
body is kept with probability ``1 - p`` (``torch.empty(N, 1, 1, 1).bernoulli_(1 - p)``, drawn from
the global generator, block by block) and scaled by ``1 / (1 - p)``.  The specs write that as
``drop_path(stochastic_depth_prob * (first[s] + i) / total)`` on the residual body; the generated
module must draw the same numbers in the same order, so with torchvision's state loaded strictly
(after randomizing its norm layers) the compiled module and the reference give the same
train-mode logits under ``torch.manual_seed`` (BatchNorm on batch statistics, so batch > 1) and
leave the same running statistics behind.  With ``dropout = 0`` the only randomness left is
stochastic depth: another seed must change the logits, and ``stochastic_depth_prob = 0`` must make
train mode deterministic.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from train_support import assert_train_step_matches, loaded_pair, train_forward  # noqa: E402

from archdsl.backends.runtime import load_spec  # noqa: E402

SPECS = Path(__file__).resolve().parents[1] / "specs"
NAMES = ("efficientnet_b0", "efficientnet_b1", "efficientnet_v2_s")
BATCH = 2   # BatchNorm needs more than one sample in train mode
ROWS = 8    # the stochastic-depth check: several rows, so the per-sample ("row") masks differ
SMALL = (3, 96, 96)   # ... on a smaller image (the networks end in an adaptive pool)


def _pair(name: str, **kwargs: float):
    return loaded_pair(getattr(torchvision.models, name)(weights=None, **kwargs), SPECS / f"{name}.arch", **kwargs)


def _spec_input(name: str) -> torch.Tensor:
    shape = tuple(load_spec(SPECS / f"{name}.arch").graph.input_shape)
    return torch.randn(BATCH, *shape, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", NAMES)
def test_train_mode_logits_and_running_stats_match_torchvision(name: str) -> None:
    model, ref = _pair(name)
    x = _spec_input(name)
    assert_train_step_matches(model, ref, x)
    # eval mode is deterministic and equal too, after the train step moved the statistics
    model.eval()
    ref.eval()
    with torch.no_grad():
        assert float((model(x) - ref(x)).abs().max()) <= 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_stochastic_depth_draws_match_torchvision(name: str) -> None:
    """Without dropout, the per-sample stochastic-depth masks are the only randomness: they must
    coincide with torchvision's seed by seed, and they must really drop something."""
    model, ref = _pair(name, dropout=0.0)
    x = torch.randn(ROWS, *SMALL, generator=torch.Generator().manual_seed(2))
    runs = {}
    for seed in (3, 4):
        runs[seed] = ours = train_forward(model, x, seed)
        theirs = train_forward(ref, x, seed)
        assert float((ours - theirs).abs().max()) <= 1e-5, seed
    # the masks are really drawn: another seed gives other logits
    assert float((runs[3] - runs[4]).abs().max()) > 1e-3


@pytest.mark.parametrize("name", NAMES[:1])
def test_no_stochastic_depth_makes_train_mode_deterministic(name: str) -> None:
    model, ref = _pair(name, dropout=0.0, stochastic_depth_prob=0.0)
    x = torch.randn(ROWS, *SMALL, generator=torch.Generator().manual_seed(2))
    a, b = train_forward(model, x, 3), train_forward(model, x, 4)
    assert float((a - b).abs().max()) == 0.0
    assert float((a - train_forward(ref, x, 5)).abs().max()) <= 1e-5
