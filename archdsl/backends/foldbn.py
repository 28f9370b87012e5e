"""Fold batch norms into the convolutions before them, for inference.

With population statistics a BN is an affine map per channel (REFERENCE.md §2)::

    s       = gamma / sqrt(var + eps)
    weight' = W * s            (per output channel)
    bias'   = beta + (b - mean) * s

A BN that *precedes* its convolution (DenseNet's pre-activation layers) has a ReLU between them
and cannot be folded; it is left alone and reported.  Modules built by archdsl record, per class,
which BN folds into which conv (``archdsl_bn``), so no tracing is needed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field


@dataclass
class FoldReport:
    """What :func:`fold_bn` did: folded (bn, conv) module paths and the BNs left alone."""

    folded: list[tuple[str, str]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"folded {len(self.folded)} batch norm{'s' if len(self.folded) != 1 else ''} into convolutions"]
        if self.kept:
            lines.append(f"left {len(self.kept)} batch norm{'s' if len(self.kept) != 1 else ''} alone "
                         "(not right after a convolution, e.g. pre-activation):")
            lines += [f"  {p}" for p in self.kept]
        return "\n".join(lines)


def fold_bn(model, *, inplace: bool = False, report: bool = False):
    """Fold every BN that follows a convolution into it; return the folded model.

    The folded BNs become ``nn.Identity`` and their convolutions gain a bias, so the result's
    state_dict matches a model built with ``archdsl.build(spec, fold_bn=True)`` (or compiled with
    ``archdsl compile --fold-bn``).  The model is copied unless ``inplace``; it is put in eval
    mode.  With ``report=True`` return ``(model, FoldReport)``.
    """
    import torch
    from torch import nn

    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    rep = FoldReport()
    found = False
    for prefix, module in list(model.named_modules()):
        pairs = getattr(type(module), "archdsl_bn", None)
        if pairs is None:
            continue
        found = True
        for bn_path, conv_path in pairs:
            bn = module.get_submodule(bn_path)
            full = f"{prefix}.{bn_path}" if prefix else bn_path
            if isinstance(bn, nn.Identity):
                continue  # already folded
            if conv_path is None:
                rep.kept.append(full)
                continue
            conv = module.get_submodule(conv_path)
            _fold_into(conv, bn, torch, nn)
            _replace(module, bn_path, nn.Identity())
            rep.folded.append((full, f"{prefix}.{conv_path}" if prefix else conv_path))
    if not found:
        raise TypeError("fold_bn needs a model built by archdsl (no archdsl_bn metadata found)")
    return (model, rep) if report else model


def _fold_into(conv, bn, torch, nn) -> None:
    with torch.no_grad():
        var = bn.running_var
        mean = bn.running_mean
        scale = torch.rsqrt(var + bn.eps)
        if bn.affine:
            scale = bn.weight * scale
            shift = bn.bias
        else:
            shift = torch.zeros_like(mean)
        w = conv.weight
        conv.weight.copy_(w * scale.reshape(-1, *([1] * (w.dim() - 1))).to(w.dtype))
        b = conv.bias if conv.bias is not None else torch.zeros_like(mean)
        new_bias = shift + (b - mean) * scale
        if conv.bias is None:
            conv.bias = nn.Parameter(new_bias.to(w.dtype))
        else:
            conv.bias.copy_(new_bias)


def _replace(root, path: str, new) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    parent.add_module(name, new)  # replaces the child module of that name
