"""Compare a compiled module with a reference implementation (``--check-against``).

References are named ``PACKAGE:MODEL``: ``torchvision:resnet50``, ``timm:inception_v4``,
``pretrainedmodels:bninception``.  The reference is built without pretrained weights, its
state_dict is loaded into the compiled module with ``strict=True`` and both run in eval mode
on the same random input (and, for models with aux heads, in train mode with the same seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PACKAGES = ("torchvision", "timm", "pretrainedmodels")


class ReferenceUnavailable(RuntimeError):
    """The reference package is not installed or does not know the model."""


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
    params: tuple[int, int] = (0, 0)
    tolerance: float = 1e-5
    error: str = ""

    @property
    def ok(self) -> bool:
        """Keys, shapes, strict load and outputs all agree."""
        return (self.loaded and not self.missing and not self.unexpected and not self.shape_mismatches
                and self.eval_max_diff is not None and self.eval_max_diff <= self.tolerance
                and all(d <= self.tolerance for d in self.train_max_diff.values()) and not self.error)

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
        if self.error:
            out.append(f"error: {self.error}")
        out.append("MATCH" if self.ok else "MISMATCH")
        return "\n".join(out)


def _import_package(pkg: str) -> Any:
    """The module a reference package's models are looked up in (one of :data:`PACKAGES`)."""
    if pkg == "torchvision":
        import torchvision.models as mod
    elif pkg == "timm":
        import timm as mod
    else:
        import pretrainedmodels as mod
    return mod


def reference_model(ref: str, aux: bool = False):
    """Instantiate ``PACKAGE:MODEL`` without pretrained weights."""
    pkg, sep, name = ref.partition(":")
    if not sep or pkg not in PACKAGES or not name.isidentifier():
        raise ReferenceUnavailable(f"reference must be one of {', '.join(p + ':NAME' for p in PACKAGES)}, "
                                   f"got {ref!r}")
    try:
        mod = _import_package(pkg)
    except ImportError as exc:
        raise ReferenceUnavailable(f"{pkg} is not installed (pip install {pkg})") from exc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if pkg == "torchvision":
            fn = getattr(mod, name, None)
            if fn is None:
                raise ReferenceUnavailable(f"torchvision has no model {name!r}")
            kwargs: dict[str, Any] = {"weights": None}
            if name in ("googlenet", "inception_v3"):
                kwargs.update(aux_logits=aux, init_weights=True)
            return fn(**kwargs)
        if pkg == "timm":
            return mod.create_model(name, pretrained=False)
        fn = getattr(mod, name, None)
        if fn is None:
            raise ReferenceUnavailable(f"pretrainedmodels has no model {name!r}")
        return fn(num_classes=1000, pretrained=None)


def compare(model, ref_model, input_shape: tuple[int, ...], *, reference: str = "", aux_names: tuple = (),
            tolerance: float = 1e-5, batch: int = 2, seed: int = 0) -> Comparison:
    """Load ``ref_model``'s weights into ``model`` strictly and compare outputs."""
    import torch

    cmp = Comparison(reference, tolerance=tolerance)
    cmp.params = (sum(p.numel() for p in model.parameters()), sum(p.numel() for p in ref_model.parameters()))
    ours, theirs = model.state_dict(), ref_model.state_dict()
    cmp.missing = sorted(set(theirs) - set(ours))
    cmp.unexpected = sorted(set(ours) - set(theirs))
    cmp.shape_mismatches = [(k, tuple(ours[k].shape), tuple(theirs[k].shape)) for k in sorted(set(ours) & set(theirs))
                            if ours[k].shape != theirs[k].shape]
    try:
        model.load_state_dict(theirs, strict=True)
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
    if aux_names:
        model.train()
        ref_model.train()
        with torch.no_grad():
            torch.manual_seed(seed)
            ta = model(x)
            torch.manual_seed(seed)
            tb = ref_model(x)
        theirs_by_name = _reference_outputs(tb, aux_names)
        for name, value in zip(ta._fields, ta):  # noqa: B905
            other = theirs_by_name.get(name)
            if other is not None:
                cmp.train_max_diff[name] = float((value - other).abs().max())
        model.eval()
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
