"""Train-mode comparisons with a reference implementation (the test_train_mode_* files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archdsl.backends.reference import randomize_norm_layers
from archdsl.backends.runtime import load_spec


def loaded_pair(ref: Any, spec: Path, **params: Any) -> tuple[Any, Any]:
    """(compiled ``spec``, ``ref``): ``ref``'s norm layers randomized, its state_dict loaded strictly."""
    randomize_norm_layers(ref, seed=0)
    model = load_spec(spec, **params).build()
    model.load_state_dict(ref.state_dict(), strict=True)
    return model, ref


def train_forward(module: Any, x: Any, seed: int) -> Any:
    """One train-mode forward under ``torch.manual_seed(seed)`` (same dropout / drop-path draws)."""
    import torch

    module.train()
    with torch.no_grad():
        torch.manual_seed(seed)
        return module(x)


def assert_train_step_matches(model: Any, ref: Any, x: Any, seed: int = 3) -> Any:
    """One seeded train-mode step of each gives the same logits (1e-5) and leaves the same floating
    buffers (running statistics); returns the compiled model's logits."""
    ours, theirs = train_forward(model, x, seed), train_forward(ref, x, seed)
    assert ours.shape == theirs.shape == (x.shape[0], 1000)
    assert float((ours - theirs).abs().max()) <= 1e-5
    a, b = model.state_dict(), ref.state_dict()
    buffers = [k for k, _ in ref.named_buffers() if b[k].is_floating_point()]
    assert buffers and max(float((a[k] - b[k]).abs().max()) for k in buffers) <= 1e-5
    return ours
