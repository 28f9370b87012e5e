"""Training metadata declared in a spec: the loss and the weight initialization.

Spec lines::

    loss cross_entropy(label_smoothing = 0.1)
    init conv2d: kaiming_normal(mode = "fan_out", nonlinearity = "relu")
    init linear: normal(0, 0.01, bias = 0)
    init batchnorm: constant(1, bias = 0)

:func:`validate_settings` checks them against the vocabulary below and reports located
diagnostics (E301-E306); :func:`training_settings` returns the normalized form the code
generator emits.  Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import DiagnosticBag, did_you_mean
from ..expr import show

_NUM = "number"
_STR = "string"

#: loss name -> {param: (kind, default)}
LOSSES: dict[str, dict[str, tuple[str, Any]]] = {
    "cross_entropy": {"label_smoothing": (_NUM, 0.0)},
}

#: init target (an op name) -> the torch classes it applies to (source text for the generated file).
INIT_TARGETS: dict[str, str] = {
    "conv2d": "nn.Conv2d",
    "linear": "nn.Linear",
    "batchnorm": "(nn.BatchNorm1d, nn.BatchNorm2d)",
}

_NONLIN = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
           "sigmoid", "tanh", "relu", "leaky_relu", "selu")
_KAIMING = {"a": (_NUM, 0.0), "mode": (_STR, "fan_in", ("fan_in", "fan_out")),
            "nonlinearity": (_STR, "leaky_relu", _NONLIN)}

#: init scheme -> (torch.nn.init function or None, {param: (kind, default[, choices])}) in positional order.
INIT_SCHEMES: dict[str, tuple[str | None, dict[str, tuple]]] = {
    "default": (None, {}),
    "zeros": ("zeros_", {}),
    "ones": ("ones_", {}),
    "constant": ("constant_", {"val": (_NUM, None)}),
    "normal": ("normal_", {"mean": (_NUM, 0.0), "std": (_NUM, 1.0)}),
    "uniform": ("uniform_", {"a": (_NUM, 0.0), "b": (_NUM, 1.0)}),
    "trunc_normal": ("trunc_normal_", {"mean": (_NUM, 0.0), "std": (_NUM, 1.0), "a": (_NUM, -2.0),
                                       "b": (_NUM, 2.0)}),
    "kaiming_normal": ("kaiming_normal_", dict(_KAIMING)),
    "kaiming_uniform": ("kaiming_uniform_", dict(_KAIMING)),
    "xavier_normal": ("xavier_normal_", {"gain": (_NUM, 1.0)}),
    "xavier_uniform": ("xavier_uniform_", {"gain": (_NUM, 1.0)}),
    "orthogonal": ("orthogonal_", {"gain": (_NUM, 1.0)}),
}


@dataclass
class InitRule:
    """One ``init`` line, normalized: which modules, which function, its keyword arguments, bias."""

    target: str
    scheme: str
    func: str | None
    kwargs: dict[str, Any]
    bias: float | None = None


@dataclass
class TrainingSettings:
    """The loss and init rules of a network (defaults when the spec declares none)."""

    loss: str = "cross_entropy"
    label_smoothing: float = 0.0
    init: list[InitRule] = field(default_factory=list)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _bind(args: dict, schema: dict[str, tuple], what: str, loc, diags: DiagnosticBag,
          extra: tuple[str, ...] = ()) -> dict[str, Any] | None:
    names = list(schema)
    out: dict[str, Any] = {}
    ok = True
    for key, value in args.items():
        if isinstance(key, int):
            if key >= len(names):
                diags.error("E304", f"{what} takes at most {len(names)} positional argument"
                            f"{'s' if len(names) != 1 else ''}", loc,
                            hint=f"parameters: {', '.join(names + list(extra)) or '(none)'}")
                ok = False
                continue
            key = names[key]
        elif key not in schema and key not in extra:
            diags.error("E304", f"{what} has no parameter '{key}'", loc,
                        hint=did_you_mean(key, names + list(extra))
                        or f"parameters: {', '.join(names + list(extra)) or '(none)'}")
            ok = False
            continue
        if key in out:
            diags.error("E304", f"argument '{key}' given more than once", loc)
            ok = False
            continue
        out[key] = value
    for key, spec in schema.items():
        kind, default = spec[0], spec[1]
        if key not in out:
            if default is None:
                diags.error("E304", f"{what} is missing required argument '{key}'", loc)
                ok = False
            continue
        value = out[key]
        if kind == _NUM and not _is_num(value):
            diags.error("E305", f"{what}: '{key}' must be a number, got {show(value)}", loc)
            ok = False
        elif kind == _STR:
            choices = spec[2] if len(spec) > 2 else ()
            if not isinstance(value, str) or (choices and value not in choices):
                diags.error("E305", f"{what}: '{key}' must be one of {', '.join(map(repr, choices))}, "
                            f"got {show(value)}", loc, hint=did_you_mean(str(value), choices))
                ok = False
    return out if ok else None


def validate_settings(graph, diags: DiagnosticBag) -> None:
    """Check every ``loss`` / ``init`` line of ``graph.settings``; report E301-E306."""
    training_settings(graph, diags)


def training_settings(graph, diags: DiagnosticBag | None = None) -> TrainingSettings:
    """The normalized training settings of ``graph`` (invalid lines are reported and skipped)."""
    diags = diags if diags is not None else DiagnosticBag()
    out = TrainingSettings()
    seen_loss = None
    for st in getattr(graph, "settings", []) or []:
        loc, name, args = st["loc"], st["name"], st["args"]
        if st["kind"] == "loss":
            if seen_loss is not None:
                diags.error("E306", "more than one 'loss' line", loc, hint=f"the first is at {seen_loss}")
                continue
            seen_loss = loc
            if name not in LOSSES:
                diags.error("E301", f"unknown loss '{name}'", loc,
                            hint=did_you_mean(name, LOSSES) or f"supported: {', '.join(LOSSES)}")
                continue
            bound = _bind(args, LOSSES[name], f"loss {name}", loc, diags)
            if bound is None:
                continue
            eps = float(bound.get("label_smoothing", 0.0))
            if not 0.0 <= eps < 1.0:
                diags.error("E305", f"label_smoothing must be in [0, 1), got {show(eps)}", loc)
                continue
            out.loss, out.label_smoothing = name, eps
        elif st["kind"] == "init":
            target = st["target"]
            if target not in INIT_TARGETS:
                diags.error("E302", f"unknown init target '{target}'", loc,
                            hint=did_you_mean(target, INIT_TARGETS) or f"targets: {', '.join(INIT_TARGETS)}")
                continue
            if name not in INIT_SCHEMES:
                diags.error("E303", f"unknown init scheme '{name}'", loc,
                            hint=did_you_mean(name, INIT_SCHEMES) or f"schemes: {', '.join(INIT_SCHEMES)}")
                continue
            func, schema = INIT_SCHEMES[name]
            bound = _bind(args, schema, f"init {name}", loc, diags, extra=("bias",))
            if bound is None:
                continue
            bias = bound.pop("bias", None)
            if bias is not None and not _is_num(bias):
                diags.error("E305", f"init {name}: 'bias' must be a number, got {show(bias)}", loc)
                continue
            kwargs = {k: (float(v) if _is_num(v) and schema[k][0] == _NUM else v) for k, v in bound.items()}
            out.init = [r for r in out.init if r.target != target]  # a later line replaces an earlier one
            out.init.append(InitRule(target, name, func, kwargs, None if bias is None else float(bias)))
        else:
            diags.error("E301", f"unknown setting '{st['kind']}'", loc)
    return out
