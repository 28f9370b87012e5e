"""Compare a compiled module with a reference implementation (``--check-against``).

References are named ``PACKAGE:MODEL``: ``torchvision:resnet50``, ``timm:inception_v4``,
``pretrainedmodels:bninception``.  The reference is built without pretrained weights and its
normalization layers get random running statistics and affine parameters (an untrained
BatchNorm is the identity up to ``1 / sqrt(1 + eps)``, so a wrong ``eps`` would pass); its
state_dict is loaded into the compiled module with ``strict=True`` and both run in eval mode on
the same random input, then one step in train mode with the same seed, after which the running
statistics must agree too (a wrong ``momentum`` shows only there).  Models with aux heads also
compare their train-mode outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .extras import ExtraUnavailable, reference_problem, torchvision_mismatch

PACKAGES = ("torchvision", "timm", "pretrainedmodels")


class ReferenceUnavailable(ExtraUnavailable):
    """The reference package is missing, does not work with this torch, or does not know the model."""


@dataclass
class Comparison:
    """The outcome of :func:`compare`."""

    reference: str
    missing: list[str] = field(default_factory=list)  # keys the reference has and we lack
    unexpected: list[str] = field(default_factory=list)  # keys we have and the reference lacks
    shape_mismatches: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    loaded: bool = False
    eval_max_diff: float | None = None
    train_max_diff: dict[str, float] = field(default_factory=dict)
    running_stats_max_diff: float | None = None  # buffers after one train-mode step
    params: tuple[int, int] = (0, 0)
    tolerance: float = 1e-5
    error: str = ""

    @property
    def ok(self) -> bool:
        """Keys, shapes, strict load and outputs all agree."""
        return (self.loaded and not self.missing and not self.unexpected and not self.shape_mismatches
                and self.eval_max_diff is not None and self.eval_max_diff <= self.tolerance
                and all(d <= self.tolerance for d in self.train_max_diff.values())
                and self.running_stats_max_diff is not None and self.running_stats_max_diff <= self.tolerance
                and not self.error)

    def __str__(self) -> str:
        out = [f"reference: {self.reference}",
               f"parameters: compiled {self.params[0]:,}, reference {self.params[1]:,}"]
        if self.missing or self.unexpected:
            out.append(f"state_dict keys differ: {len(self.missing)} missing, {len(self.unexpected)} unexpected")
            out += [f"  missing    {k}" for k in self.missing[:20]]
            out += [f"  unexpected {k}" for k in self.unexpected[:20]]
        else:
            out.append("state_dict keys: identical")
        for k, a, b in self.shape_mismatches[:20]:
            out.append(f"  shape {k}: compiled {tuple(a)}, reference {tuple(b)}")
        out.append(f"load_state_dict(strict=True): {'ok' if self.loaded else 'failed'}")
        if self.eval_max_diff is not None:
            out.append(f"eval logits max |diff|: {self.eval_max_diff:.3g} (tolerance {self.tolerance:g})")
        for name, d in self.train_max_diff.items():
            out.append(f"train-mode {name} max |diff|: {d:.3g}")
        if self.running_stats_max_diff is not None:
            out.append(f"running statistics after a train-mode step max |diff|: {self.running_stats_max_diff:.3g}")
        if self.error:
            out.append(f"error: {self.error}")
        out.append("MATCH" if self.ok else "MISMATCH")
        return "\n".join(out)


def _import_package(pkg: str) -> Any:
    """The module a reference package's models are looked up in (one of :data:`PACKAGES`).

    torchvision is imported first for all three (timm and pretrainedmodels import it): a torchvision
    built for another torch fails at import (``operator torchvision::nms does not exist``), and that
    is reported as a mismatch with the command that installs a matching set, not as a traceback.
    """
    mismatch = torchvision_mismatch()
    if mismatch is not None:
        raise ReferenceUnavailable(mismatch.message, mismatch.hint, mismatch.note)
    importing = "torchvision"  # the one being imported, for the message
    try:
        import torchvision.models as mod

        importing = pkg
        if pkg == "timm":
            import timm as mod
        elif pkg == "pretrainedmodels":
            import pretrainedmodels as mod
    except Exception as exc:  # noqa: BLE001 (any import failure is the environment's, reported as such)
        problem = reference_problem(importing, exc, needed_by="" if importing == pkg else pkg)
        raise ReferenceUnavailable(problem.message, problem.hint, problem.note) from exc
    return mod


def reference_model(ref: str, aux: bool = False):
    """Instantiate ``PACKAGE:MODEL`` without pretrained weights."""
    pkg, sep, name = ref.partition(":")
    if not sep or pkg not in PACKAGES or not name.isidentifier():
        raise ReferenceUnavailable(f"reference must be one of {', '.join(p + ':NAME' for p in PACKAGES)}, "
                                   f"got {ref!r}")
    mod = _import_package(pkg)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if pkg == "timm":
            if name not in mod.list_models():
                raise ReferenceUnavailable(f"timm has no model {name!r}")
            return mod.create_model(name, pretrained=False)
        fn = getattr(mod, name, None)
        if fn is None:
            raise ReferenceUnavailable(f"{pkg} has no model {name!r}")
        if pkg == "pretrainedmodels":
            return fn(num_classes=1000, pretrained=None)
        kwargs: dict[str, Any] = {"weights": None}
        if name in ("googlenet", "inception_v3"):
            kwargs.update(aux_logits=aux, init_weights=True)
        return fn(**kwargs)


def randomize_norm_layers(module, seed: int = 0) -> int:
    """Give ``module``'s normalization layers non-trivial state, in place, under a fixed seed.

    Every submodule with ``running_mean`` / ``running_var`` tensors (BatchNorm1d/2d/3d, tracked
    InstanceNorm, subclasses such as timm's BatchNormAct2d) gets ``running_mean ~ N(0, 0.1^2)`` and
    ``running_var ~ U(0.5, 2)``; the affine ``weight`` and ``bias`` of those and of GroupNorm /
    LayerNorm become ``U(0.75, 1.25)`` and ``N(0, 0.1^2)`` (mild, so deep nets keep their scale).
    Returns how many modules were changed.
    """
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)

    def fill(t, sample) -> None:
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            t.copy_(sample(tuple(t.shape)).to(t.dtype))

    def normal(shape):
        return torch.randn(shape, generator=gen) * 0.1

    def uniform(lo: float, hi: float):
        return lambda shape: lo + (hi - lo) * torch.rand(shape, generator=gen)

    changed = 0
    with torch.no_grad():
        for m in module.modules():
            mean, var = getattr(m, "running_mean", None), getattr(m, "running_var", None)
            stats = isinstance(mean, torch.Tensor) and isinstance(var, torch.Tensor)
            if not stats and not isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
                continue
            if stats:
                fill(mean, normal)
                fill(var, uniform(0.5, 2.0))
            weight, bias = getattr(m, "weight", None), getattr(m, "bias", None)
            if isinstance(weight, torch.Tensor):
                fill(weight, uniform(0.75, 1.25))
            if isinstance(bias, torch.Tensor):
                fill(bias, normal)
            changed += 1
    return changed


def compare(model, ref_model, input_shape: tuple[int, ...], *, reference: str = "", aux_names: tuple = (),
            tolerance: float = 1e-5, batch: int = 2, seed: int = 0) -> Comparison:
    """Load ``ref_model``'s weights into ``model`` strictly and compare outputs and running statistics.

    ``ref_model``'s normalization layers are first randomized in place (:func:`randomize_norm_layers`
    with ``seed``), so the loaded running statistics and affine parameters are not the identity.
    Both models then run in eval mode on the same ``randn(batch, *input_shape)`` (``seed``) and the
    logits are compared; then one train-mode forward each under ``torch.manual_seed(seed)`` (dropout
    draws alike), comparing the aux-head outputs named in ``aux_names`` (if any) and every floating
    state_dict buffer afterwards (running statistics updated with each layer's ``momentum``).
    Both models are left in eval mode, with those updated statistics.
    """
    import torch

    cmp = Comparison(reference, tolerance=tolerance)
    cmp.params = (sum(p.numel() for p in model.parameters()), sum(p.numel() for p in ref_model.parameters()))
    ours, theirs = model.state_dict(), ref_model.state_dict()
    cmp.missing = sorted(set(theirs) - set(ours))
    cmp.unexpected = sorted(set(ours) - set(theirs))
    cmp.shape_mismatches = [(k, tuple(ours[k].shape), tuple(theirs[k].shape)) for k in sorted(set(ours) & set(theirs))
                            if ours[k].shape != theirs[k].shape]
    randomize_norm_layers(ref_model, seed)
    try:
        model.load_state_dict(ref_model.state_dict(), strict=True)
        cmp.loaded = True
    except RuntimeError as exc:
        cmp.error = str(exc).splitlines()[0]
        return cmp
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *input_shape, generator=gen)
    model.eval()
    ref_model.eval()
    with torch.no_grad():
        a, b = model(x), ref_model(x)
    cmp.eval_max_diff = float((a - b).abs().max())
    model.train()
    ref_model.train()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):  # the caller's RNG state stays as it was
        torch.manual_seed(seed)
        ta = model(x)
        torch.manual_seed(seed)
        tb = ref_model(x)
    if aux_names:
        theirs_by_name = _reference_outputs(tb, aux_names)
        for name, value in zip(ta._fields, ta):  # noqa: B905
            other = theirs_by_name.get(name)
            if other is not None:
                cmp.train_max_diff[name] = float((value - other).abs().max())
    ours, theirs = model.state_dict(keep_vars=True), ref_model.state_dict(keep_vars=True)
    buffers = {name for name, _ in ref_model.named_buffers()}
    diffs = [float((ours[k] - theirs[k]).abs().max()) for k in sorted(buffers & set(theirs))
             if theirs[k].is_floating_point() and theirs[k].numel()]
    cmp.running_stats_max_diff = max(diffs, default=0.0)
    model.eval()
    ref_model.eval()
    return cmp


def _reference_outputs(out, aux_names: tuple) -> dict[str, Any]:
    """Map a reference's train-mode outputs to our field names (main first, then aux by name)."""
    fields = getattr(out, "_fields", None)
    if fields is None:
        return {"logits": out}
    values = dict(zip(fields, out))  # noqa: B905
    result = {"logits": values.get("logits", out[0])}
    # torchvision: GoogLeNetOutputs(logits, aux_logits2, aux_logits1), InceptionOutputs(logits, aux_logits)
    for name in aux_names:
        digits = "".join(c for c in name if c.isdigit())
        for field_name in (f"aux_logits{digits}", "aux_logits", name):
            if field_name in values:
                result[name] = values[field_name]
                break
    return result
