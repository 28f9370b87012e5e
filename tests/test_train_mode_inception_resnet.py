"""Train-mode outputs of the compiled Inception-ResNet-v2 equal timm's under the same seed.

Inception-ResNet-v2 has no stochastic depth; in train mode its BatchNorms use the batch
statistics (so batch 2) and its head dropout draws from the global generator.  With timm's state
loaded strictly (after randomizing its norm layers), the compiled module and timm's
``inception_resnet_v2`` must give the same train-mode logits under ``torch.manual_seed`` and leave
the same running statistics behind; with ``drop_rate > 0`` the dropout masks must coincide too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

from train_support import assert_train_step_matches, loaded_pair, train_forward  # noqa: E402

SPEC = Path(__file__).resolve().parents[1] / "specs" / "inception_resnet_v2.arch"


def _pair(drop_rate: float):
    return loaded_pair(timm.create_model("inception_resnet_v2", pretrained=False, drop_rate=drop_rate), SPEC,
                       drop_rate=drop_rate)


def test_train_mode_logits_and_running_stats_match_timm() -> None:
    # one full-resolution run covers both sources of train-mode behaviour (about 20 s on a CPU):
    # batch statistics in every BN and the head dropout's mask (drop_rate 0.5 instead of timm's 0)
    model, ref = _pair(drop_rate=0.5)
    x = torch.randn(2, 3, 299, 299, generator=torch.Generator().manual_seed(1))
    ours = assert_train_step_matches(model, ref, x)
    a, b = model.state_dict(), ref.state_dict()
    assert all(int(a[k]) == int(b[k]) == 1 for k in a if k.endswith("num_batches_tracked"))
    # the dropout really drew a mask: another seed gives other logits
    other = train_forward(model, x, seed=4)
    assert float((other - ours).abs().max()) > 1e-3
