"""The op registry: one entry per layer type, holding everything archdsl knows about it.

Each :class:`OpSpec` carries the parameter schema, the shape rule (PyTorch's exact formulas),
the cost rule (parameters and MACs), the receptive-field window and the torch emitter.  Adding
an op means adding one entry here.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .expr import Value, show, type_name

Shape = tuple  # (C, H, W) for feature maps, (F,) for flat vectors, ChannelsLast (H, W, C) after a permute
REQUIRED = object()


class ChannelsLast(tuple):
    """A per-sample shape whose channels are the last dimension, ``(H, W, C)``: what ``permute([0, 2,
    3, 1])`` makes of a feature map (ConvNeXt's ``Permute -> LayerNorm -> Linear``).  A plain tuple
    of three is channels-first ``(C, H, W)``; one of one is a flat vector."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"ChannelsLast({tuple(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChannelsLast) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __reduce__(self):
        return (ChannelsLast, (tuple(self),))


def channels_last(s: Shape) -> bool:
    """Is ``s`` a channels-last tensor (``(H, W, C)``)?"""
    return isinstance(s, ChannelsLast)


def channels(s: Shape) -> int:
    """The channel (feature) count of a shape in either layout."""
    return s[-1] if isinstance(s, ChannelsLast) else s[0]


def feature_map(s: Shape) -> bool:
    """Is ``s`` a channels-first ``(C, H, W)`` feature map?"""
    return len(s) == 3 and not isinstance(s, ChannelsLast)


def spatial_dims(s: Shape) -> tuple[int, ...]:
    """The non-channel dimensions of a shape in either layout."""
    return tuple(s[:-1]) if isinstance(s, ChannelsLast) else tuple(s[1:])


def same_layout(a: Shape, b: Shape) -> bool:
    """Equal dimensions in the same layout."""
    return isinstance(a, ChannelsLast) == isinstance(b, ChannelsLast) and tuple(a) == tuple(b)


class ShapeError(Exception):
    """A shape rule's complaint: code, message and an optional fix.

    A merge's complaint about its inputs also says which input has which shape: ``groups`` holds
    ``(shape text, input indices)`` per distinct shape, the expected one (the most common) first,
    and ``lead`` the message before them, so the shape pass can name each input by its branch
    (``branch `b` is 16x16``) and point at it; ``message`` is the form without names."""

    def __init__(self, code: str, message: str, hint: str = "", lead: str = "",
                 groups: tuple[tuple[str, tuple[int, ...]], ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.lead = lead
        self.groups = groups


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
    #: Holds parameters or buffers: always a module in generated code, never a functional call.
    stateful: bool = False
    #: The call applied to the input when the op is not a module (``None``: the codegen's own forms).
    functional: Callable[[Mapping, Sequence[Shape]], Fn] | None = None
    #: Helper definitions (names in :data:`SUPPORT`) the generated file needs for this op.
    support: tuple[str, ...] = ()
    #: ``(attribute value, forward operator)`` for ops that are a bare ``nn.Parameter`` of the
    #: enclosing module (layer scale): the value's constructor source and how it meets the input.
    parameter: Callable[[Mapping, Sequence[Shape]], str] | None = None
    #: The op as people write it in a diagram node (``groupnorm 32``); ``None``: its name.
    text: Callable[[Mapping], str] | None = None

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the op's parameters in positional order."""
        return tuple(p.name for p in self.params)


@dataclass(frozen=True)
class Fn:
    """A functional form for generated code: ``name(x, *args, **kwargs)``, or ``x.name(*args)`` when
    ``method``, indexed by ``index`` when given.  Argument values are Python literals, except
    :data:`TRAINING`, which stands for ``self.training``."""

    name: str
    args: tuple = ()
    kwargs: tuple[tuple[str, object], ...] = ()
    method: bool = False
    index: int | None = None


#: Placeholder for ``self.training`` in an :class:`Fn`'s arguments.
TRAINING = object()


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
    if k == "perm":
        if not isinstance(v, tuple) or not v or any(not _is_int(d) or d < 0 for d in v):
            raise ArgError(f"{what} must be a list of dimension indices like [0, 2, 3, 1], got {show(v)}")
        return tuple(v)
    if k == "sizes":
        if isinstance(v, tuple):
            if not v:
                raise ArgError(f"{what} must be a positive integer or a list of them, got {show(v)}")
            return tuple(_pos_int(d, what) for d in v)
        return _pos_int(v, what)
    if k == "choice":
        if v not in p.choices:
            raise ArgError(f"{what} must be one of {', '.join(show(c) for c in p.choices)}, got {show(v)}")
        return v
    raise ArgError(f"unknown parameter kind {k}")  # registry bug, not user input


# ------------------------------------------------------------------------------ shape helpers


def _spatial(ins: Sequence[Shape], op: str) -> tuple[int, int, int]:
    s = ins[0]
    _channels_first(s, op)
    if len(s) != 3:
        raise ShapeError("E207", f"{op} needs a C x H x W feature map, got a flat vector of {s[0]}",
                         "place it before 'flatten'")
    return s


def _channels_first(s: Shape, op: str) -> None:
    """E211 when a channels-first op gets a channels-last tensor."""
    if isinstance(s, ChannelsLast):
        raise ShapeError("E211", f"{op} needs a channels-first N x C x H x W tensor, got N x "
                         f"{' x '.join(map(str, s))} (channels-last)", "permute back first: permute([0, 3, 1, 2])")


def conv_size(n, k: int, s: int, p: int, d: int, floordiv: Callable = operator.floordiv):
    """PyTorch's convolution output size along one axis of size ``n``: ``(n + 2p - eff) // s + 1``.

    ``floordiv`` is integer floor division, or its exact symbolic form for a symbolic size
    (:mod:`archdsl.passes.symbolic`): one formula for both."""
    return floordiv(n + 2 * p - (d * (k - 1) + 1), s) + 1


def pool_size(n, k: int, s: int, p: int, d: int, ceil: bool, floordiv: Callable = operator.floordiv,
              minimum: Callable = min):
    """PyTorch's pooling output size along one axis of size ``n`` (``ceil_mode`` included).

    With ``ceil_mode`` PyTorch drops a last window that would start in the right padding
    (``(out - 1) * s >= n + p``): the output is then ``min(ceil(num / s), (n + p - 1) // s) + 1``,
    and when ``s <= eff - p`` that window always starts inside, so the plain ceiling is exact (the
    form symbolic sizes print).  Equal to the direct test for every size with pool padding
    ``p <= k // 2`` (E209), checked exhaustively in tests/test_symbolic.py."""
    eff = d * (k - 1) + 1
    num = n + 2 * p - eff  # negative when the window is larger than the padded input
    if not ceil:
        return floordiv(num, s) + 1
    up = -floordiv(-num, s)
    if s <= eff - p:
        return up + 1
    return minimum(up, floordiv(n + p - 1, s)) + 1


def _conv_out(size: int, k: int, s: int, p: int, d: int, axis: str, op: str) -> int:
    eff = d * (k - 1) + 1
    if size + 2 * p < eff:
        raise ShapeError("E204", f"{op} kernel {eff} (effective) is larger than the padded input "
                         f"{axis} {size}+2*{p} = {size + 2 * p}", "use a smaller kernel or more padding")
    out = conv_size(size, k, s, p, d)
    if out <= 0:
        raise ShapeError("E203", f"{op} output {axis} would be {out}")
    return out


def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil: bool, axis: str, op: str) -> int:
    eff = d * (k - 1) + 1
    out = pool_size(size, k, s, p, d, ceil)
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
    _channels_first(ins[0], "batchnorm")
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
    if len(s) != 1 and not isinstance(s, ChannelsLast):
        raise ShapeError("E206", f"linear needs a flat or channels-last input but gets {fmt_shape(s)}",
                         "insert 'flatten' (after a global pool) before it, or permute([0, 2, 3, 1]) to apply it "
                         "to every position")
    fin = channels(s)
    if a["in_features"] is not None and a["in_features"] != fin:
        raise ShapeError("E206", f"linear in_features={a['in_features']} but its input has {fin} features",
                         f"use in_features={fin} or leave it out to infer it")
    if isinstance(s, ChannelsLast):
        return ChannelsLast(s[:-1] + (a["out"],))
    return (a["out"],)


def _linear_cost(a: Mapping, ins: Sequence[Shape], out: Shape) -> Costs:
    fin = channels(ins[0])
    positions = math.prod(ins[0][:-1]) if isinstance(ins[0], ChannelsLast) else 1
    return Costs(fin * a["out"] + (a["out"] if a["bias"] else 0), positions * fin * a["out"])


def _linear_torch(a: Mapping, ins: Sequence[Shape]) -> str:
    bias = "" if a["bias"] else ", bias=False"
    return f"nn.Linear({channels(ins[0])}, {a['out']}{bias})"


def _same(a: Mapping, ins: Sequence[Shape]) -> Shape:
    return ins[0]


def _same_spatial(op: str) -> Callable:
    def rule(a: Mapping, ins: Sequence[Shape]) -> Shape:
        _spatial(ins, op)
        return ins[0]

    return rule


# ------------------------------------------------------------------------------ merge ops


def fmt_shape(s: Shape) -> str:
    """``192x35x35`` (``1000`` for a flat vector, ``56x56x96 (channels-last)`` after a permute)."""
    if all(type(d) is int for d in s):
        text = "x".join(str(d) for d in s)
    else:  # a symbolic size (input 3xHxW): expressions like 64 x ⌊(H−1)/2⌋ x ⌊(W−1)/2⌋
        text = " x ".join(dim_text(d) for d in s)
    return f"{text} (channels-last)" if isinstance(s, ChannelsLast) else text


def dim_text(d: object) -> str:
    """One dimension as people read it: an integer, or a symbolic size's expression (``⌊(H−1)/2⌋``)."""
    if type(d) is int:
        return str(d)
    from .passes.symbolic import expr_text  # sympy only where a size is symbolic

    return expr_text(d)


def _concat_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    for s in ins:
        _channels_first(s, "concat")
    ranks = {len(s) for s in ins}
    if len(ranks) != 1:
        lead = "concat mixes feature maps and flat vectors"
        raise ShapeError("E201", f"{lead}: " + " vs ".join(fmt_shape(s) for s in ins), lead=lead,
                         groups=shape_groups([len(s) for s in ins], [fmt_shape(s) for s in ins]))
    if ranks == {1}:
        return (sum(s[0] for s in ins),)
    spatial = [s[1:] for s in ins]
    for s in spatial[1:]:
        if s != spatial[0]:
            odd = next(x for x in spatial if x != spatial[0])
            lead = "concat inputs differ in spatial size"
            raise ShapeError("E201", f"{lead}: {fmt_shape(spatial[0])} vs {fmt_shape(odd)}",
                             "give every branch the same stride and padding (pools: check ceil_mode)",
                             lead=lead, groups=shape_groups(spatial, [fmt_shape(x) for x in spatial]))
    return (sum(s[0] for s in ins),) + spatial[0]


def shape_groups(keys: Sequence, texts: Sequence[str]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The inputs grouped by ``keys`` as ``(their shapes' texts, input indices)``: the most common
    group first (on a tie, the one of the earliest input), as the others are taken to deviate from it."""
    groups: dict = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    ordered = sorted(groups.values(), key=lambda ix: (-len(ix), ix[0]))
    return tuple((" and ".join(dict.fromkeys(texts[i] for i in ix)), tuple(ix)) for ix in ordered)


def _add_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    body, *others = ins
    for other in others:
        if not same_layout(other, body):
            raise ShapeError("E202", f"add inputs differ: body gives {fmt_shape(body)}, shortcut gives "
                             f"{fmt_shape(other)}", _projection_hint(other, body))
    return body


def _projection_hint(src: Shape, dst: Shape) -> str:
    if isinstance(src, ChannelsLast) != isinstance(dst, ChannelsLast):
        return "one side is channels-last: permute it back with permute([0, 3, 1, 2]) before the add"
    if len(src) == 3 and len(dst) == 3 and src[1] % dst[1] == 0 and src[1] // dst[1] == src[2] // dst[2]:
        stride = src[1] // dst[1]
        sargs = f", stride = {stride}" if stride != 1 else ""
        return (f"add a projection shortcut: shortcut downsample {{ conv2d({dst[0]}, 1{sargs}, bias = false)"
                f" -> batchnorm }}")
    return "make the body and shortcut produce the same shape"


#: The op of a node standing for a layer that failed to resolve.
UNKNOWN = "unknown"


def _unknown_shape(a: Mapping, ins: Sequence[Shape]) -> None:
    """A failed layer's output shape is unknown (None): the shape pass leaves it and everything
    downstream unshaped, so no shape error is derived from the failure."""
    return None


# ------------------------------------------------------------------------------ gating (multiply merge)


def _mul_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    x, gate = ins
    fits = (isinstance(x, ChannelsLast) == isinstance(gate, ChannelsLast) and len(x) == len(gate)
            and all(g in (d, 1) for d, g in zip(x, gate)))
    if not fits:
        hint = "make the gate's shape equal to its input's, with 1 where it broadcasts"
        if feature_map(x):
            hint = (f"end the gate body with {x[0]}x1x1 (channel attention: ... -> conv2d({x[0]}, 1) -> sigmoid) "
                    f"or 1x{x[1]}x{x[2]} (spatial attention)")
        raise ShapeError("E212", f"gate gives {fmt_shape(gate)}, which does not broadcast to its input "
                         f"{fmt_shape(x)}", hint)
    return x


# ------------------------------------------------------------------------------ norms past BN

#: Helper definitions emitted into a generated file when one of its ops needs them
#: (``OpSpec.support``); each computes exactly what the reference implementation it names does.
SUPPORT: dict[str, str] = {}

SUPPORT["LayerNorm2d"] = '''
class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an N x C x H x W tensor (torchvision's ``LayerNorm2d``)."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)
'''


def _norm_options(op: str, a: Mapping) -> list[str]:
    parts = []
    if a["eps"] != 1e-5:
        parts.append(f"eps={a['eps']!r}")
    if not a["affine"]:
        parts.append("elementwise_affine=False" if op == "layernorm" else "affine=False")
    return parts


def _layernorm_torch(a: Mapping, ins: Sequence[Shape]) -> str:
    s = ins[0]
    cls = "LayerNorm2d" if feature_map(s) else "nn.LayerNorm"
    return f"{cls}({', '.join([str(channels(s))] + _norm_options('layernorm', a))})"


def _norm_cost(a: Mapping, ins: Sequence[Shape], out: Shape) -> Costs:
    return Costs(2 * channels(ins[0]) if a["affine"] else 0)


def _groupnorm_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    s = ins[0]
    _channels_first(s, "groupnorm")
    if s[0] % a["groups"]:
        raise ShapeError("E215", f"groupnorm groups={a['groups']} does not divide the {s[0]} channels",
                         f"choose groups dividing {s[0]}")
    return s


def _groupnorm_torch(a: Mapping, ins: Sequence[Shape]) -> str:
    return f"nn.GroupNorm({', '.join([str(a['groups']), str(ins[0][0])] + _norm_options('groupnorm', a))})"


# ------------------------------------------------------------------------------ stochastic depth, layer scale

SUPPORT["stochastic_depth"] = '''
def stochastic_depth(x: Tensor, p: float, mode: str, training: bool) -> Tensor:
    """Drop the whole input per sample ("row") or per batch with probability p, scaling the rest by
    1 / (1 - p); identity in eval (torchvision.ops.stochastic_depth, with the same random draws)."""
    if not training or p == 0.0:
        return x
    survival_rate = 1.0 - p
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return x * noise
'''
SUPPORT["StochasticDepth"] = '''
class StochasticDepth(nn.Module):
    """Module form of ``stochastic_depth`` (torchvision.ops.StochasticDepth)."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        return stochastic_depth(x, self.p, self.mode, self.training)
'''


def _layer_scale_value(a: Mapping, ins: Sequence[Shape]) -> str:
    s = ins[0]
    dims = (s[0], 1, 1) if feature_map(s) else (channels(s),)
    return f"nn.Parameter(torch.full({dims!r}, {float(a['init'])!r}))"


# ------------------------------------------------------------------------------ layout and channel ops

SUPPORT["Permute"] = '''
class Permute(nn.Module):
    """``torch.permute(x, dims)`` as a module (torchvision.ops.Permute)."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: Tensor) -> Tensor:
        return torch.permute(x, self.dims)
'''
SUPPORT["Chunk"] = '''
class Chunk(nn.Module):
    """One piece of ``x.chunk(chunks, 1)``: a channel split into equal parts."""

    def __init__(self, chunks: int, index: int) -> None:
        super().__init__()
        self.chunks = chunks
        self.index = index

    def forward(self, x: Tensor) -> Tensor:
        return x.chunk(self.chunks, 1)[self.index]
'''
SUPPORT["Split"] = '''
class Split(nn.Module):
    """One piece of ``x.split(sizes, 1)``: a channel split into given sizes."""

    def __init__(self, sizes: int | list[int], index: int) -> None:
        super().__init__()
        self.sizes = sizes
        self.index = index

    def forward(self, x: Tensor) -> Tensor:
        return x.split(self.sizes, 1)[self.index]
'''
SUPPORT["PadChannels"] = '''
class PadChannels(nn.Module):
    """Zero channels before and after the input's (the option-A shortcut of CIFAR ResNets)."""

    def __init__(self, before: int, after: int) -> None:
        super().__init__()
        self.before = before
        self.after = after

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x, (0, 0, 0, 0, self.before, self.after))
'''


def _axes(s: Shape) -> tuple[str, ...]:
    if isinstance(s, ChannelsLast):
        return ("H", "W", "C")
    return ("C", "H", "W") if len(s) == 3 else ("C",)


def _permute_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    s, dims = ins[0], a["dims"]
    rank = len(s) + 1
    if sorted(dims) != list(range(rank)) or dims[0] != 0:
        raise ShapeError("E213", f"permute dims {list(dims)} are not a permutation of the {rank} dimensions "
                         f"0..{rank - 1} of {fmt_shape(s)} that keeps the batch dimension 0 first",
                         "[0, 2, 3, 1] makes a feature map channels-last, [0, 3, 1, 2] makes it channels-first")
    axes = ("N",) + _axes(s)
    sizes = (0,) + tuple(s)
    new_axes = tuple(axes[d] for d in dims[1:])
    new = tuple(sizes[d] for d in dims[1:])
    if new_axes[0] == "C":
        return new
    if new_axes[-1] == "C":
        return ChannelsLast(new)
    raise ShapeError("E213", f"permute {list(dims)} puts the channels of {fmt_shape(s)} in the middle",
                     "archdsl follows channels-first (N x C x H x W) and channels-last (N x H x W x C) tensors")


def _channel_count(ins: Sequence[Shape], op: str) -> int:
    _channels_first(ins[0], op)
    return ins[0][0]


def _pieces(c: int, size: int) -> list[int]:
    return [min(size, c - i) for i in range(0, c, size)]


def _chunk_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    c = _channel_count(ins, "chunk")
    pieces = _pieces(c, -(-c // a["chunks"]))  # torch.chunk: pieces of ceil(C / chunks)
    if a["index"] >= len(pieces):
        raise ShapeError("E214", f"chunk index {a['index']} is out of range: {c} channels in {a['chunks']} "
                         f"chunks give {len(pieces)} pieces", f"use an index below {len(pieces)}")
    return (pieces[a["index"]],) + tuple(ins[0][1:])


def _split_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    c = _channel_count(ins, "split")
    sizes = a["sizes"]
    pieces = _pieces(c, sizes) if isinstance(sizes, int) else list(sizes)
    if sum(pieces) != c:
        raise ShapeError("E214", f"split sizes {list(sizes)} add up to {sum(pieces)}, not the input's {c} "
                         "channels", "the sizes must add up to the channel count")
    if a["index"] >= len(pieces):
        raise ShapeError("E214", f"split index {a['index']} is out of range: there are {len(pieces)} pieces",
                         f"use an index below {len(pieces)}")
    return (pieces[a["index"]],) + tuple(ins[0][1:])


def _shuffle_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    c = _spatial(ins, "channel_shuffle")[0]
    if c % a["groups"]:
        raise ShapeError("E214", f"channel_shuffle groups={a['groups']} does not divide the {c} channels",
                         f"choose groups dividing {c}")
    return ins[0]


def _pad_amounts(a: Mapping) -> tuple[int, int]:
    return a["before"], a["before"] if a["after"] is None else a["after"]


def _pad_channels_shape(a: Mapping, ins: Sequence[Shape]) -> Shape:
    c, h, w = _spatial(ins, "pad_channels")
    return (c + sum(_pad_amounts(a)), h, w)


def _list_or_int(v: int | tuple) -> int | list:
    return list(v) if isinstance(v, tuple) else v


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
           stateful=True, doc="2-D convolution"),
    OpSpec("batchnorm", "norm", (P("eps", "float", 1e-5), P("momentum", "float", 0.1),
                                 P("affine", "bool", True), P("track_running_stats", "bool", True),
                                 P("num_features", "pos", None)),
           _bn_shape, _bn_cost, torch=_bn_torch, stateful=True, doc="batch normalization (channels inferred)"),
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
    _act("silu", "SiLU", (P("inplace", "bool", False),), lambda a: "inplace=True" if a["inplace"] else ""),
    _act("hardswish", "Hardswish"),
    OpSpec("hardsigmoid", "activation", (), _same, torch=lambda a, i: "nn.Hardsigmoid()",
           functional=lambda a, i: Fn("F.hardsigmoid"), doc="Hardsigmoid activation"),
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
           _linear_shape, _linear_cost, torch=_linear_torch, stateful=True,
           doc="fully connected layer (inputs inferred); on a channels-last tensor it maps the last dimension"),
    OpSpec("dropout", "regularize", (P("p", "prob", 0.5),), _same,
           torch=lambda a, i: f"nn.Dropout(p={a['p']!r})", doc="dropout"),
    OpSpec("dropout2d", "regularize", (P("p", "prob", 0.5),), _same_spatial("dropout2d"),
           torch=lambda a, i: f"nn.Dropout2d(p={a['p']!r})", doc="channel dropout"),
    OpSpec("identity", "misc", (), _same, torch=lambda a, i: "nn.Identity()", doc="identity"),
    OpSpec("layernorm", "norm", (P("eps", "float", 1e-5), P("affine", "bool", True)),
           _same, _norm_cost, torch=_layernorm_torch, stateful=True, support=("LayerNorm2d",),
           doc="layer normalization over the channels: torchvision's LayerNorm2d on an N x C x H x W map, "
               "nn.LayerNorm over the last dimension of a channels-last or flat tensor"),
    OpSpec("groupnorm", "norm", (P("groups", "pos"), P("eps", "float", 1e-5), P("affine", "bool", True)),
           _groupnorm_shape, _norm_cost, torch=_groupnorm_torch, stateful=True,
           text=lambda a: f"groupnorm {a['groups']}", doc="group normalization (channels inferred)"),
    OpSpec("drop_path", "regularize", (P("p", "prob"), P("mode", "choice", "row", ("row", "batch"))), _same,
           torch=lambda a, i: f"StochasticDepth({a['p']!r}, {a['mode']!r})",
           functional=lambda a, i: Fn("stochastic_depth", (a["p"], a["mode"], TRAINING)),
           support=("stochastic_depth", "StochasticDepth"), text=lambda a: f"drop_path {a['p']:g}",
           doc="stochastic depth: drops the whole input per sample (\"row\") or per batch with probability p "
               "in training, scaling the rest by 1 / (1 - p); identity in eval"),
    OpSpec("layer_scale", "misc", (P("init", "float", 1e-6),), _same,
           lambda a, i, o: Costs(channels(i[0])), parameter=_layer_scale_value,
           text=lambda a: f"layer scale {a['init']:g}",
           doc="learnable per-channel scale: an nn.Parameter (C x 1 x 1, or C on a channels-last or flat "
               "tensor) of the enclosing module, named by the label, initialised to init"),
    OpSpec("permute", "reshape", (P("dims", "perm"),), _permute_shape,
           torch=lambda a, i: f"Permute({list(a['dims'])!r})", support=("Permute",),
           functional=lambda a, i: Fn("permute", tuple(a["dims"]), method=True),
           text=lambda a: "permute " + ",".join(map(str, a["dims"])),
           doc="reorder dimensions, batch first: [0, 2, 3, 1] to channels-last, [0, 3, 1, 2] back"),
    OpSpec("chunk", "reshape", (P("chunks", "pos"), P("index", "nonneg")), _chunk_shape,
           torch=lambda a, i: f"Chunk({a['chunks']}, {a['index']})", support=("Chunk",),
           functional=lambda a, i: Fn("chunk", (a["chunks"], 1), method=True, index=a["index"]),
           text=lambda a: f"chunk {a['index'] + 1}/{a['chunks']}",
           doc="piece `index` of x.chunk(chunks, 1): a channel split into equal parts"),
    OpSpec("split", "reshape", (P("sizes", "sizes"), P("index", "nonneg")), _split_shape,
           torch=lambda a, i: f"Split({_list_or_int(a['sizes'])!r}, {a['index']})", support=("Split",),
           functional=lambda a, i: Fn("split", (_list_or_int(a["sizes"]), 1), method=True, index=a["index"]),
           text=lambda a: f"split #{a['index']}",
           doc="piece `index` of x.split(sizes, 1): a channel split into given sizes"),
    OpSpec("channel_shuffle", "reshape", (P("groups", "pos"),), _shuffle_shape,
           torch=lambda a, i: f"nn.ChannelShuffle({a['groups']})",
           functional=lambda a, i: Fn("F.channel_shuffle", (a["groups"],)),
           text=lambda a: f"shuffle g{a['groups']}", doc="channel shuffle (ShuffleNet)"),
    OpSpec("pad_channels", "reshape", (P("before", "nonneg"), P("after", "nonneg", None)), _pad_channels_shape,
           torch=lambda a, i: "PadChannels({}, {})".format(*_pad_amounts(a)), support=("PadChannels",),
           functional=lambda a, i: Fn("F.pad", ((0, 0, 0, 0) + _pad_amounts(a),)),
           text=lambda a: "pad channels {}+{}".format(*_pad_amounts(a)),
           doc="zero channels before and after (after defaults to before): option-A shortcuts"),
    OpSpec("scale", "misc", (P("factor", "float"),), _same, doc="multiply by a constant"),
    # Internal nodes the IR creates; not callable from a spec.
    OpSpec("input", "io", (), _same, internal=True, arity=0, doc="network input"),
    OpSpec("output", "io", (P("name", "choice", "main"),), _same, internal=True, doc="network output"),
    OpSpec("concat", "merge", (P("dense", "bool", False),), _concat_shape, internal=True, arity=-1,
           doc="channel concatenation"),
    OpSpec("add", "merge", (), _add_shape, internal=True, arity=-1, doc="elementwise sum"),
    OpSpec("mul", "merge", (), _mul_shape, internal=True, arity=2, text=lambda a: "\u00d7",
           doc="the input times its gate, broadcast (gate { ... })"),
    OpSpec(UNKNOWN, "error", (), _unknown_shape, internal=True, arity=-1,
           doc="stands for a layer that failed (a bad argument, an unknown op): its shape is unknown"),
):
    register(_spec)

#: Ops a spec may call by name.
PUBLIC_OPS = {name: spec for name, spec in OPS.items() if not spec.internal}
