"""Train-mode outputs of the compiled MobileNetV3-Large equal torchvision's under the same seed.

MobileNetV3 has no stochastic depth; in train mode its BatchNorms (eps 0.001, momentum 0.01) use
the batch statistics (so batch > 1) and the classifier's Dropout(0.2) draws from the global
generator.  With torchvision's state loaded strictly (after randomizing its norm layers), the
compiled module and ``mobilenet_v3_large`` must give the same train-mode logits under
``torch.manual_seed`` (the dropout masks coincide) and leave the same running statistics behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from train_support import assert_train_step_matches, loaded_pair, train_forward  # noqa: E402

SPEC = Path(__file__).resolve().parents[1] / "specs" / "mobilenet_v3_large.arch"


def test_train_mode_logits_and_running_stats_match_torchvision() -> None:
    model, ref = loaded_pair(torchvision.models.mobilenet_v3_large(weights=None), SPEC)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    ours = assert_train_step_matches(model, ref, x)
    other = train_forward(model, x, seed=4)   # the dropout really drew a mask
    assert float((other - ours).abs().max()) > 1e-3
