"""The op registry: one entry per layer type, holding everything archdsl knows about it.

Each :class:`OpSpec` carries the parameter schema, the shape rule (PyTorch's exact formulas),
the cost rule (parameters and MACs), the receptive-field window and the torch emitter.  Adding
an op means adding one entry here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .expr import Value, show, type_name

Shape = tuple  # (C, H, W) for feature maps, (F,) for flat vectors
REQUIRED = object()


class ShapeError(Exception):
    """A shape rule's complaint: code, message and an optional fix."""

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


class ArgError(Exception):
    """An argument value of the wrong type or range (reported as E106)."""


@dataclass(frozen=True)
class P:
    """One parameter of an op: name, kind (how it is validated and normalized), default."""

    name: str
    kind: str
    default: object = REQUIRED
    choices: tuple = ()
    doc: str = ""

    @property
    def required(self) -> bool:
        """True when the parameter has no default."""
        return self.default is REQUIRED


@dataclass(frozen=True)
class Costs:
    """Per-node costs: parameters PyTorch counts, multiply-accumulates, output activations."""

    params: int = 0
    macs: int = 0


@dataclass(frozen=True)
class OpSpec:
    """Everything about one op: schema, shape, cost, receptive-field window and torch emitter."""

    name: str
    family: str
    params: tuple[P, ...]
    shape: Callable[[Mapping, Sequence[Shape]], Shape]
    cost: Callable[[Mapping, Sequence[Shape], Shape], Costs] = lambda a, i, o: Costs()
    window: Callable[[Mapping, Sequence[Shape]], tuple | None] = lambda a, i: None
    torch: Callable[[Mapping, Sequence[Shape]], str] | None = None
    doc: str = ""
    internal: bool = False
    arity: int = 1
    aliases: tuple[str, ...] = field(default=())

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the op's parameters in positional order."""
        return tuple(p.name for p in self.params)


# ------------------------------------------------------------------------------ argument kinds


def _is_int(v: Value) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pos_int(v: Value, what: str) -> int:
    if not _is_int(v) or v < 1:
        raise ArgError(f"{what} must be a positive integer, got {type_name(v)} {show(v)}")
    return v


def _nonneg_int(v: Value, what: str) -> int:
    if not _is_int(v) or v < 0:
        raise ArgError(f"{what} must be a non-negative integer, got {type_name(v)} {show(v)}")
    return v


def _pair(v: Value, what: str, check: Callable[[Value, str], int]) -> tuple[int, int]:
    if isinstance(v, tuple):
        if len(v) != 2:
            raise ArgError(f"{what} must be an integer or a [height, width] pair, got {len(v)} values")
        return (check(v[0], what), check(v[1], what))
    n = check(v, what)
    return (n, n)


def _number(v: Value, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ArgError(f"{what} must be a number, got {type_name(v)} {show(v)}")
    return v


def normalize(p: P, v: Value) -> object:
    """Validate and normalize one argument value according to its parameter kind."""
    what = f"'{p.name}'"
    k = p.kind
    if v is None and p.default is None:
        return None
    if k == "pos":
        return _pos_int(v, what)
    if k == "nonneg":
        return _nonneg_int(v, what)
    if k == "pair":
        return _pair(v, what, _pos_int)
    if k == "pair0":
        return _pair(v, what, _nonneg_int)
    if k == "pad":
        if isinstance(v, str):
            if v not in ("same", "valid"):
                raise ArgError(f"{what} must be an integer, a pair, \"same\" or \"valid\", got {show(v)}")
            return (0, 0) if v == "valid" else "same"
        return _pair(v, what, _nonneg_int)
    if k == "float":
        return _number(v, what)
    if k == "prob":
        x = _number(v, what)
        if not 0 <= x <= 1:
            raise ArgError(f"{what} must be between 0 and 1, got {show(v)}")
        return x
    if k == "bool":
        if not isinstance(v, bool):
            raise ArgError(f"{what} must be true or false, got {type_name(v)} {show(v)}")
        return v
    if k == "choice":
        if v not in p.choices:
            raise ArgError(f"{what} must be one of {', '.join(show(c) for c in p.choices)}, got {show(v)}")
        return v
    raise ArgError(f"unknown parameter kind {k}")  # registry bug, not user input


# ------------------------------------------------------------------------------ shape helpers


def _spatial(ins: Sequence[Shape], op: str) -> tuple[int, int, int]:
    s = ins[0]
    if len(s) != 3:
        raise ShapeError("E207", f"{op} needs a C x H x W feature map, got a flat vector of {s[0]}",
                         "place it before 'flatten'")
    return s


def _conv_out(size: int, k: int, s: int, p: int, d: int, axis: str, op: str) -> int:
    eff = d * (k - 1) + 1
    if size + 2 * p < eff:
        raise ShapeError("E204", f"{op} kernel {eff} (effective) is larger than the padded input "
                         f"{axis} {size}+2*{p} = {size + 2 * p}", "use a smaller kernel or more padding")
    out = (size + 2 * p - eff) // s + 1
    if out <= 0:
        raise ShapeError("E203", f"{op} output {axis} would be {out}")
    return out


def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil: bool, axis: str, op: str) -> int:
    eff = d * (k - 1) + 1
    num = size + 2 * p - eff  # negative when the window is larger than the padded input
    out = (-(-num // s) if ceil else num // s) + 1
    # PyTorch drops a last window that would start entirely in the right padding.
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    # With ceil_mode a window larger than the padded input still gives one output (as in PyTorch).
    if out <= 0 and size + 2 * p < eff:
        raise ShapeError("E204", f"{op} kernel {eff} is larger than the padded input {axis} "
                         f"{size}+2*{p} = {size + 2 * p}", "use a smaller kernel or more padding")
    if out <= 0:
        raise ShapeError("E203", f"{op} output {axis} would be {out}")
    return out


def _check_pool_padding(a: Mapping, eff: tuple[int, int], op: str) -> None:
    for p, e in zip(a["padding"], eff):
        if p > e // 2:
            raise ShapeError("E209", f"{op} padding {p} exceeds half the kernel size {e}",
                             "PyTorch requires pool padding <= kernel // 2")


# ------------------------------------------------------------------------------ conv2d


def _conv_padding(a: Mapping) -> tuple[int, int]:
    if a["padding"] == "same":
        return tuple((d * (k - 1)) // 2 for k, d in zip(a["kernel"], a["dilation"]))
    return a["padding"]


def _conv_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    c, h, w = _spatial(ins, "conv2d")
    g = a["groups"]
    if c % g or a["out"] % g:
        bad = c if c % g else a["out"]
        which = "input" if c % g else "output"
        raise ShapeError("E205", f"conv2d {which} channels {bad} are not divisible by groups={g}",
                         f"choose groups dividing both {c} and {a['out']}")
    if a["padding"] == "same":
        if a["stride"] != (1, 1):
            raise ShapeError("E208", "padding=\"same\" needs stride 1 (as in PyTorch)",
                             "give explicit padding for strided convolutions")
        return (a["out"], h, w)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = a["kernel"], a["stride"], a["padding"], a["dilation"]
    return (a["out"], _conv_out(h, kh, sh, ph, dh, "height", "conv2d"),
            _conv_out(w, kw, sw, pw, dw, "width", "conv2d"))


def _conv_cost(a: Mapping, ins: Sequence[Shape], out: Shape) -> Costs:
    cin = ins[0][0]
    kh, kw = a["kernel"]
    per_out = (cin // a["groups"]) * kh * kw
    params = a["out"] * per_out + (a["out"] if a["bias"] else 0)
    return Costs(params, out[0] * out[1] * out[2] * per_out)


def _conv_window(a: Mapping, ins: Sequence[Shape]) -> tuple:
    eff = tuple(d * (k - 1) + 1 for k, d in zip(a["kernel"], a["dilation"]))
    return eff, a["stride"]


def _conv_torch(a: Mapping, ins: Sequence[Shape]) -> str:
    pad = repr(a["padding"]) if a["padding"] == "same" else repr(tuple(a["padding"]))
    parts = [str(ins[0][0]), str(a["out"]), f"kernel_size={tuple(a['kernel'])!r}",
             f"stride={tuple(a['stride'])!r}", f"padding={pad}"]
    if a["dilation"] != (1, 1):
        parts.append(f"dilation={tuple(a['dilation'])!r}")
    if a["groups"] != 1:
        parts.append(f"groups={a['groups']}")
    if not a["bias"]:
        parts.append("bias=False")
    return f"nn.Conv2d({', '.join(parts)})"


# ------------------------------------------------------------------------------ batchnorm


def _bn_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    nf = a["num_features"]
    if nf is not None and nf != ins[0][0]:
        raise ShapeError("E210", f"batchnorm num_features={nf} but the input has {ins[0][0]} channels",
                         f"use num_features={ins[0][0]} or leave it out to infer it")
    return ins[0]


def _bn_cost(a: Mapping, ins: Sequence[Shape], out: Shape) -> Costs:
    return Costs(2 * ins[0][0] if a["affine"] else 0)


def _bn_torch(a: Mapping, ins: Sequence[Shape]) -> str:
    cls = "nn.BatchNorm2d" if len(ins[0]) == 3 else "nn.BatchNorm1d"
    parts = [str(ins[0][0])]
    if a["eps"] != 1e-5:
        parts.append(f"eps={a['eps']!r}")
    if a["momentum"] != 0.1:
        parts.append(f"momentum={a['momentum']!r}")
    if not a["affine"]:
        parts.append("affine=False")
    if not a["track_running_stats"]:
        parts.append("track_running_stats=False")
    return f"{cls}({', '.join(parts)})"


# ------------------------------------------------------------------------------ pools


def _pool_stride(a: Mapping) -> tuple[int, int]:
    return a["stride"] if a["stride"] is not None else a["kernel"]


def _maxpool_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    c, h, w = _spatial(ins, "maxpool")
    _check_pool_padding(a, a["kernel"], "maxpool")  # PyTorch compares with the undilated kernel
    s = _pool_stride(a)
    return (c,) + tuple(
        _pool_out(n, k, st, p, d, a["ceil_mode"], ax, "maxpool")
        for n, k, st, p, d, ax in zip((h, w), a["kernel"], s, a["padding"], a["dilation"], ("height", "width"))
    )


def _avgpool_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    c, h, w = _spatial(ins, "avgpool")
    _check_pool_padding(a, a["kernel"], "avgpool")
    s = _pool_stride(a)
    return (c,) + tuple(
        _pool_out(n, k, st, p, 1, a["ceil_mode"], ax, "avgpool")
        for n, k, st, p, ax in zip((h, w), a["kernel"], s, a["padding"], ("height", "width"))
    )


def _pool_window(a: Mapping, ins: Sequence[Shape]) -> tuple:
    dil = a.get("dilation", (1, 1))
    eff = tuple(d * (k - 1) + 1 for k, d in zip(a["kernel"], dil))
    return eff, _pool_stride(a)


def _maxpool_torch(a: Mapping, ins: Sequence[Shape]) -> str:
    parts = [f"kernel_size={tuple(a['kernel'])!r}", f"stride={tuple(_pool_stride(a))!r}",
             f"padding={tuple(a['padding'])!r}"]
    if a["dilation"] != (1, 1):
        parts.append(f"dilation={tuple(a['dilation'])!r}")
    if a["ceil_mode"]:
        parts.append("ceil_mode=True")
    return f"nn.MaxPool2d({', '.join(parts)})"


def _avgpool_torch(a: Mapping, ins: Sequence[Shape]) -> str:
    parts = [f"kernel_size={tuple(a['kernel'])!r}", f"stride={tuple(_pool_stride(a))!r}",
             f"padding={tuple(a['padding'])!r}"]
    if a["ceil_mode"]:
        parts.append("ceil_mode=True")
    if not a["count_include_pad"]:
        parts.append("count_include_pad=False")
    return f"nn.AvgPool2d({', '.join(parts)})"


def _adaptive_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    c, _, _ = _spatial(ins, "adaptive pool")
    return (c,) + tuple(a["size"])


def _global_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    c, _, _ = _spatial(ins, "global pool")
    return (c, 1, 1)


def _whole_window(a: Mapping, ins: Sequence[Shape]) -> tuple:
    s = ins[0]
    if len(s) != 3:
        return None
    return (s[1], s[2]), (s[1], s[2])


# ------------------------------------------------------------------------------ flat ops


def _flatten_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    return (math.prod(ins[0]),)


def _linear_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    s = ins[0]
    if len(s) != 1:
        raise ShapeError("E206", f"linear needs a flat input but gets {fmt_shape(s)}",
                         "insert 'flatten' (after a global pool) before it")
    if a["in_features"] is not None and a["in_features"] != s[0]:
        raise ShapeError("E206", f"linear in_features={a['in_features']} but its input has {s[0]} features",
                         f"use in_features={s[0]} or leave it out to infer it")
    return (a["out"],)


def _linear_cost(a: Mapping, ins: Sequence[Shape], out: Shape) -> Costs:
    fin = ins[0][0]
    return Costs(fin * a["out"] + (a["out"] if a["bias"] else 0), fin * a["out"])


def _linear_torch(a: Mapping, ins: Sequence[Shape]) -> str:
    bias = "" if a["bias"] else ", bias=False"
    return f"nn.Linear({ins[0][0]}, {a['out']}{bias})"


def _same(a: Mapping, ins: Sequence[Shape]) -> Shape:
    return ins[0]


def _same_spatial(op: str) -> Callable:
    def rule(a: Mapping, ins: Sequence[Shape]) -> Shape:
        _spatial(ins, op)
        return ins[0]

    return rule


# ------------------------------------------------------------------------------ merge ops


def fmt_shape(s: Shape) -> str:
    """``192x35x35`` (or ``1000`` for a flat vector)."""
    return "x".join(str(d) for d in s)


def _concat_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    ranks = {len(s) for s in ins}
    if len(ranks) != 1:
        raise ShapeError("E201", "concat mixes feature maps and flat vectors: "
                         + " vs ".join(fmt_shape(s) for s in ins))
    if ranks == {1}:
        return (sum(s[0] for s in ins),)
    spatial = [s[1:] for s in ins]
    for s in spatial[1:]:
        if s != spatial[0]:
            odd = next(x for x in spatial if x != spatial[0])
            raise ShapeError("E201", f"concat inputs differ in spatial size: "
                             f"{fmt_shape(spatial[0])} vs {fmt_shape(odd)}",
                             "give every branch the same stride and padding (pools: check ceil_mode)")
    return (sum(s[0] for s in ins),) + spatial[0]


def _add_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    body, *others = ins
    for other in others:
        if other != body:
            raise ShapeError("E202", f"add inputs differ: body gives {fmt_shape(body)}, shortcut gives "
                             f"{fmt_shape(other)}", _projection_hint(other, body))
    return body


def _projection_hint(src: Shape, dst: Shape) -> str:
    if len(src) == 3 and len(dst) == 3 and src[1] % dst[1] == 0 and src[1] // dst[1] == src[2] // dst[2]:
        stride = src[1] // dst[1]
        sargs = f", stride = {stride}" if stride != 1 else ""
        return (f"add a projection shortcut: shortcut downsample {{ conv2d({dst[0]}, 1{sargs}, bias = false)"
                f" -> batchnorm }}")
    return "make the body and shortcut produce the same shape"


# ------------------------------------------------------------------------------ registry

_conv_params = (
    P("out", "pos", doc="output channels"),
    P("kernel", "pair", doc="kernel size: k or [kh, kw]"),
    P("stride", "pair", 1),
    P("padding", "pad", 0, doc="k, [ph, pw], \"same\" or \"valid\""),
    P("dilation", "pair", 1),
    P("groups", "pos", 1),
    P("bias", "bool", True),
)


def _act(name: str, cls: str, extra: tuple[P, ...] = (), fmt: Callable[[Mapping], str] = lambda a: "") -> OpSpec:
    return OpSpec(name, "activation", extra, _same, torch=lambda a, i: f"nn.{cls}({fmt(a)})",
                  doc=f"{cls} activation")


OPS: dict[str, OpSpec] = {}


def register(spec: OpSpec) -> OpSpec:
    """Add an op to the registry (one place per op)."""
    OPS[spec.name] = spec
    return spec


for _spec in (
    OpSpec("conv2d", "conv", _conv_params, _conv_shape, _conv_cost, _conv_window, _conv_torch,
           doc="2-D convolution"),
    OpSpec("batchnorm", "norm", (P("eps", "float", 1e-5), P("momentum", "float", 0.1),
                                 P("affine", "bool", True), P("track_running_stats", "bool", True),
                                 P("num_features", "pos", None)),
           _bn_shape, _bn_cost, torch=_bn_torch, doc="batch normalization (channels inferred)"),
    OpSpec("lrn", "norm", (P("size", "pos"), P("alpha", "float", 1e-4), P("beta", "float", 0.75),
                           P("k", "float", 1.0)),
           _same_spatial("lrn"),
           torch=lambda a, i: f"nn.LocalResponseNorm({a['size']}, alpha={a['alpha']!r}, "
                              f"beta={a['beta']!r}, k={a['k']!r})",
           doc="local response normalization (GoogLeNet paper)"),
    _act("relu", "ReLU", (P("inplace", "bool", False),), lambda a: "inplace=True" if a["inplace"] else ""),
    _act("relu6", "ReLU6", (P("inplace", "bool", False),), lambda a: "inplace=True" if a["inplace"] else ""),
    _act("leaky_relu", "LeakyReLU", (P("negative_slope", "float", 0.01),),
         lambda a: f"negative_slope={a['negative_slope']!r}"),
    _act("sigmoid", "Sigmoid"),
    _act("tanh", "Tanh"),
    _act("gelu", "GELU", (P("approximate", "choice", "none", ("none", "tanh")),),
         lambda a: "" if a["approximate"] == "none" else "approximate='tanh'"),
    _act("silu", "SiLU"),
    _act("hardswish", "Hardswish"),
    OpSpec("maxpool", "pool", (P("kernel", "pair"), P("stride", "pair", None), P("padding", "pair0", 0),
                               P("dilation", "pair", 1), P("ceil_mode", "bool", False)),
           _maxpool_shape, window=_pool_window, torch=_maxpool_torch, doc="2-D max pooling"),
    OpSpec("avgpool", "pool", (P("kernel", "pair"), P("stride", "pair", None), P("padding", "pair0", 0),
                               P("ceil_mode", "bool", False), P("count_include_pad", "bool", True)),
           _avgpool_shape, window=_pool_window, torch=_avgpool_torch, doc="2-D average pooling"),
    OpSpec("adaptive_avgpool", "pool", (P("size", "pair"),), _adaptive_shape, window=_whole_window,
           torch=lambda a, i: f"nn.AdaptiveAvgPool2d({tuple(a['size'])!r})", doc="adaptive average pooling"),
    OpSpec("adaptive_maxpool", "pool", (P("size", "pair"),), _adaptive_shape, window=_whole_window,
           torch=lambda a, i: f"nn.AdaptiveMaxPool2d({tuple(a['size'])!r})", doc="adaptive max pooling"),
    OpSpec("global_avgpool", "pool", (), _global_shape, window=_whole_window,
           torch=lambda a, i: "nn.AdaptiveAvgPool2d((1, 1))", doc="global average pooling to C x 1 x 1"),
    OpSpec("global_maxpool", "pool", (), _global_shape, window=_whole_window,
           torch=lambda a, i: "nn.AdaptiveMaxPool2d((1, 1))", doc="global max pooling to C x 1 x 1"),
    OpSpec("flatten", "reshape", (), _flatten_shape, torch=lambda a, i: "nn.Flatten(1)",
           doc="flatten C x H x W to a vector"),
    OpSpec("linear", "linear", (P("out", "pos"), P("bias", "bool", True), P("in_features", "pos", None)),
           _linear_shape, _linear_cost, torch=_linear_torch, doc="fully connected layer (inputs inferred)"),
    OpSpec("dropout", "regularize", (P("p", "prob", 0.5),), _same,
           torch=lambda a, i: f"nn.Dropout(p={a['p']!r})", doc="dropout"),
    OpSpec("dropout2d", "regularize", (P("p", "prob", 0.5),), _same_spatial("dropout2d"),
           torch=lambda a, i: f"nn.Dropout2d(p={a['p']!r})", doc="channel dropout"),
    OpSpec("identity", "misc", (), _same, torch=lambda a, i: "nn.Identity()", doc="identity"),
    OpSpec("scale", "misc", (P("factor", "float"),), _same, doc="multiply by a constant"),
    # Internal nodes the IR creates; not callable from a spec.
    OpSpec("input", "io", (), _same, internal=True, arity=0, doc="network input"),
    OpSpec("output", "io", (P("name", "choice", "main"),), _same, internal=True, doc="network output"),
    OpSpec("concat", "merge", (P("dense", "bool", False),), _concat_shape, internal=True, arity=-1,
           doc="channel concatenation"),
    OpSpec("add", "merge", (), _add_shape, internal=True, arity=-1, doc="elementwise sum"),
):
    register(_spec)

#: Ops a spec may call by name.
PUBLIC_OPS = {name: spec for name, spec in OPS.items() if not spec.internal}
