"""R7xx: the blocks of post-2017 CNNs (squeeze-and-excitation gates, depthwise separable convolutions,
linear bottlenecks, stacked normalization layers).

Every rule here is one pass, or two, over the graph in topological order (O(nodes + edges)); the shared
structure (the gates, which conv is depthwise) is computed once per spec and cached on the :class:`Ctx`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ...diagnostics import INFO, WARNING, Diagnostic
from ...ops import OPS, ChannelsLast
from ..graphctx import NORM_OPS, WEIGHT_OPS, Ctx, count, grid, hwc, macs
from ..registry import rule

SE = 'Hu et al. 2018, "Squeeze-and-Excitation Networks"'
MOBILENET = 'Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications"'
MOBILENET_V2 = 'Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks"'
NORMS = ('Liu et al. 2022, "A ConvNet for the 2020s" (section 2.6); Ioffe & Szegedy 2015, "Batch Normalization: '
         'Accelerating Deep Network Training by Reducing Internal Covariate Shift" (section 3.2)')

#: Reduction ratios the SE paper tested (Table 10): 2, 4, 8, 16, 32.  Outside them the rule speaks up.
SE_MIN_RATIO = 2
SE_MAX_RATIO = 32
#: The ratio the SE paper settled on, and the one R701's fix proposes.
SE_RATIO = 16

ACTIVATIONS = frozenset(n for n, s in OPS.items() if s.family == "activation")
#: Ops a tensor crosses unchanged in its channel structure: no channel mixing, no spatial filtering that
#: creates features (R703 and R704 walk through them).
_CHANNELWISE = frozenset(n for n, s in OPS.items() if s.family in ("activation", "norm", "regularize", "misc")) | {
    "permute"}
#: Global squeezes that start a squeeze-and-excitation gate body.
_SQUEEZES = frozenset(("global_avgpool", "global_maxpool", "adaptive_avgpool", "adaptive_maxpool"))
#: What R704 walks through after a projection before meeting an activation: per-channel affine maps and
#: the residual sum (an inverted residual's output is still the bottleneck).
_AFTER_PROJECTION = frozenset(("batchnorm", "layernorm", "groupnorm", "identity", "scale", "layer_scale",
                               "permute", "dropout", "dropout2d", "drop_path", "add"))
#: What R705 walks through between two normalization layers: maps that commute with a per-channel affine.
_BETWEEN_NORMS = frozenset(("identity", "scale", "permute", "flatten"))


# ---------------------------------------------------------------------------------- shared helpers


def is_pointwise(ctx: Ctx, nid: int) -> bool:
    """A channel-mixing layer applied at every position: a 1x1 conv2d with groups = 1, or a linear layer
    on a channels-last tensor (ConvNeXt's ``permute -> linear``)."""
    op = ctx.op(nid)
    if op == "conv2d":
        args = ctx.node(nid)["args"]
        return args["kernel"] == (1, 1) and args["groups"] == 1
    if op == "linear":
        preds = ctx.preds[nid]
        return bool(preds) and isinstance(ctx.node(preds[0])["shape"], ChannelsLast)
    return False


def is_mixer(ctx: Ctx, nid: int) -> bool:
    """A layer that combines channels: a linear layer, or a conv2d that is not depthwise (a grouped conv
    mixes within its groups)."""
    op = ctx.op(nid)
    return op == "linear" or (op == "conv2d" and not ctx.is_depthwise(nid))


def channels(ctx: Ctx, nid: int) -> int:
    """Channels (features) of ``nid``'s output, 0 when unknown."""
    s = ctx.shape(nid)
    return s[0] if s else 0


@dataclass(frozen=True)
class Gate:
    """A ``gate { body }``: ``mul = x * body(x)``; ``body`` lists the body's layers in order when it is a
    single chain (empty otherwise)."""

    mul: int
    x: int
    body: tuple[int, ...]


@dataclass(frozen=True)
class SEGate:
    """A gate shaped as squeeze-and-excitation: a global squeeze, then exactly two weight layers, the first
    reducing the ``c`` gated channels to ``w``, the second restoring ``c``."""

    gate: Gate
    fc1: int
    fc2: int
    c: int
    w: int


def gates(ctx: Ctx) -> list[Gate]:
    """Every gate of the graph (each ``mul`` node is one), with its body when the body is a chain."""
    return ctx.cached("modern.gates", lambda: [_gate(ctx, m) for m in ctx.nodes_with("mul")])


def _gate(ctx: Ctx, mul: int) -> Gate:
    x, out = ctx.preds[mul][0], ctx.preds[mul][-1]
    chain: list[int] = []
    cur = out
    while cur != x:
        preds = ctx.preds[cur]
        if len(preds) != 1 or ctx.op(cur) in ("input", "mul"):
            return Gate(mul, x, ())
        chain.append(cur)
        cur = preds[0]
    return Gate(mul, x, tuple(reversed(chain)))


def squeezes(ctx: Ctx, gate: Gate) -> bool:
    """Does the gate's body start with a global squeeze (a channel gate, as in SE)?"""
    if not gate.body or ctx.op(gate.body[0]) not in _SQUEEZES:
        return False
    s = ctx.shape(gate.body[0])
    return s is not None and len(s) == 3 and s[1:] == (1, 1)


def se_gates(ctx: Ctx) -> list[SEGate]:
    """The gates shaped as squeeze-and-excitation."""
    return ctx.cached("modern.se", lambda: [se for g in gates(ctx) if (se := _se(ctx, g)) is not None])


def _se(ctx: Ctx, gate: Gate) -> SEGate | None:
    if not squeezes(ctx, gate):
        return None
    weights = [n for n in gate.body if ctx.op(n) in WEIGHT_OPS]
    c = channels(ctx, gate.x)
    if len(weights) != 2 or not c:
        return None
    fc1, fc2 = weights
    if channels(ctx, fc2) != c or ctx.in_shape(fc1) is None or ctx.in_shape(fc1)[0] != c:
        return None
    return SEGate(gate, fc1, fc2, c, channels(ctx, fc1))


def _params(ctx: Ctx, nid: int) -> int:
    return ctx.node(nid)["costs"].params


def _fc_call(ctx: Ctx, nid: int, width: int) -> str:
    """The spec text of ``nid``'s layer with ``width`` outputs: ``conv2d(4, 1)`` or ``linear(4)``."""
    if ctx.op(nid) == "linear":
        return f"linear({width})"
    k = ctx.node(nid)["args"]["kernel"]
    return f"conv2d({width}, {k[0] if k[0] == k[1] else list(k)})"


def _ratio_text(r: float) -> str:
    return f"{r:g}" if r == int(r) else f"{r:.2f}"


# ---------------------------------------------------------------------------------- R701


@rule("R701", "se-reduction-ratio", WARNING,
      "a squeeze-and-excitation gate whose reduction ratio r (gated channels / squeeze width) is below "
      f"{SE_MIN_RATIO} or above {SE_MAX_RATIO}",
      "The SE excitation is a bottleneck of two FC layers, C -> C/r -> C. The SE paper tested r = 2 to 32 on "
      "SE-ResNet-50 (Table 10): accuracy is flat from 2 to 16 while parameters fall, and drops at 32; it keeps "
      "r = 16. Below 2 there is no bottleneck, only parameters (2C^2/r per gate); above 32 the squeeze is "
      "narrower than anything tested.", SE)
def se_reduction_ratio(ctx: Ctx) -> Iterator[Diagnostic]:
    """R701: SE gates whose squeeze width lies outside the ratios the SE paper tested."""
    for se in se_gates(ctx):
        if not se.w:
            continue
        r = se.c / se.w
        if SE_MIN_RATIO <= r <= SE_MAX_RATIO:
            continue
        yield _r701(ctx, se, r)


def _r701(ctx: Ctx, se: SEGate, r: float) -> Diagnostic:
    target = max(1, round(se.c / SE_RATIO))
    bias1 = 1 if ctx.node(se.fc1)["args"].get("bias") else 0
    bias2 = 1 if ctx.node(se.fc2)["args"].get("bias") else 0
    before = _params(ctx, se.fc1) + _params(ctx, se.fc2)
    after = se.c * target + bias1 * target + target * se.c + bias2 * se.c
    call = _fc_call(ctx, se.fc1, target)
    head = (f"squeeze-and-excitation gate on {se.c} channels squeezes them to {se.w} "
            f"(reduction ratio r = {_ratio_text(r)})")
    if r < SE_MIN_RATIO:
        msg = (f"{head}: {'no bottleneck' if r <= 1 else 'hardly a bottleneck'}; its two layers hold "
               f"{count(before)} params, the SE paper's r = 16 needs {count(after)}")
    else:
        msg = (f"{head}: narrower than r = {SE_MAX_RATIO}, the narrowest the SE paper tested, where accuracy "
               f"already fell (Table 10)")
    hint = (f"squeeze to {target} channels (r = {SE_RATIO}, the SE paper's choice): {call}; the gate goes from "
            f"{count(before)} to {count(after)} params ({after - before:+,})")
    return ctx.diag("R701", WARNING, se.fc1, msg, hint,
                    {"channels": se.c, "squeeze_width": se.w, "ratio": round(r, 2), "squeeze_to": target,
                     "params_before": before, "params_after": after})


# ---------------------------------------------------------------------------------- R702


@rule("R702", "se-after-addition", WARNING,
      "a squeeze-and-excitation gate applied to the sum of a residual block (the whole trunk), not to its "
      "residual branch",
      "The SE paper compared where to put the gate in a residual unit (section 6.5, Figure 5, Table 14): in the "
      "branch before the sum, before the unit, or on the identity path all do about equally well; after the "
      "sum (SE-POST), where it rescales the identity path too, accuracy drops.", SE)
def se_after_addition(ctx: Ctx) -> Iterator[Diagnostic]:
    """R702: channel gates whose input is a residual sum that nothing else reads (SE-POST)."""
    for gate in gates(ctx):
        if not squeezes(ctx, gate):
            continue
        add = _sum_behind(ctx, gate)
        if add is not None:
            yield _r702(ctx, gate, add)


def _sum_behind(ctx: Ctx, gate: Gate) -> int | None:
    """The residual ``add`` whose output (through activations) only the gate reads, if any."""
    readers = set(ctx.succs[gate.x]) - {gate.mul} - set(gate.body)
    if readers:
        return None     # the ungated sum also goes on (SE-PRE: the next unit's shortcut reads it)
    cur = gate.x
    while ctx.op(cur) in ACTIVATIONS or ctx.op(cur) == "identity":
        cur = ctx.preds[cur][0]
        if len(ctx.succs[cur]) != 1:
            return None
    return cur if ctx.op(cur) == "add" else None


def _branch_end(ctx: Ctx, add: int) -> int:
    """The last layer of a residual's branch (the add's first input, past a ``scale`` node)."""
    end = ctx.preds[add][0]
    while ctx.op(end) == "scale" and "@" in ctx.node(end)["path"]:
        end = ctx.preds[end][0]
    return end


def _r702(ctx: Ctx, gate: Gate, add: int) -> Diagnostic:
    c = channels(ctx, gate.x)
    params = sum(_params(ctx, n) for n in gate.body)
    end = _branch_end(ctx, add)
    msg = (f"squeeze-and-excitation gate on the output of the residual sum {ctx.path(add)} rescales the identity "
           f"path as well as the branch (the SE paper's SE-POST placement, the only one that lost accuracy)")
    hint = (f"move the gate into the residual branch, right after {ctx.path(end)} and before the sum: same "
            f"{count(params)} params on the same {c} channels, same MACs")
    return ctx.diag("R702", WARNING, gate.mul, msg, hint,
                    {"channels": c, "gate_params": params, "sum": ctx.path(add), "branch_end": ctx.path(end)})


# ---------------------------------------------------------------------------------- R703


@rule("R703", "depthwise-without-pointwise", WARNING,
      "a depthwise conv whose output reaches another depthwise conv, or an output, without crossing any "
      "channel-mixing layer (a conv that is not depthwise, or a linear layer)",
      "A depthwise convolution filters each input channel on its own and does not combine channels into new "
      "features; MobileNet pairs every one with a 1x1 pointwise convolution that does (the depthwise "
      "separable convolution, section 3.1).", MOBILENET)
def depthwise_without_pointwise(ctx: Ctx) -> Iterator[Diagnostic]:
    """R703: depthwise convs whose channels are filtered again, or leave the network, unmixed."""
    for dw, end in _unmixed_depthwise(ctx).items():
        yield _r703(ctx, dw, end)


def _unmixed_depthwise(ctx: Ctx) -> dict[int, int]:
    """Depthwise conv -> the first depthwise conv or output its channels reach with no mixing in between.

    One forward pass: ``carry[n]`` is the depthwise conv whose unmixed output *all* of ``n``'s channels are
    (a concat or sum with anything mixed is mixed: GhostNet's cheap depthwise features next to the primary
    1x1 ones do not count); a gate keeps what its input carries.
    """
    carry: dict[int, int | None] = {}
    found: dict[int, int] = {}
    for n in ctx.order:
        preds = ctx.preds[n]
        op = ctx.op(n)
        before = carry.get(preds[0]) if preds else None
        if op in ("concat", "add"):
            ins = [carry.get(p) for p in preds]
            carry[n] = ins[0] if all(i is not None for i in ins) else None
        elif ctx.is_depthwise(n) or op == "output":
            if before is not None:
                found.setdefault(before, n)
            carry[n] = n if op != "output" else None
        elif is_mixer(ctx, n) or op == "input":
            carry[n] = None
        else:
            carry[n] = before
    return dict(sorted(found.items()))


def _r703(ctx: Ctx, dw: int, end: int) -> Diagnostic:
    shape = ctx.shape(dw)
    c = shape[0]
    k = ctx.node(dw)["args"]["kernel"]
    weights = c * c
    mac = weights * shape[1] * shape[2]
    if ctx.op(end) == "output":
        name = ctx.node(end)["args"].get("name", "main")
        where = f"the network's output '{name}'"
        before = "before the output"
    else:
        where = f"depthwise conv {ctx.path(end)}"
        before = f"before {ctx.path(end)}"
    msg = (f"depthwise {k[0]}x{k[1]} conv on {hwc(shape)} filters each channel on its own, and its output reaches "
           f"{where} without any channel-mixing layer: no feature here combines two channels")
    hint = (f"add a pointwise conv2d({c}, 1) after it, {before} (MobileNet's depthwise separable pair): "
            f"+{count(weights)} weights, +{macs(mac)} MACs")
    return ctx.diag("R703", WARNING, dw, msg, hint,
                    {"channels": c, "grid": grid(shape), "reaches": ctx.path(end), "pointwise_weights": weights,
                     "pointwise_macs": mac})


# ---------------------------------------------------------------------------------- R704


@rule("R704", "activation-after-linear-bottleneck", WARNING,
      "a non-linearity applied to the output of an inverted bottleneck's projection (a pointwise layer that "
      "narrows the channels after a depthwise conv), directly or after its normalization or the residual sum",
      "MobileNetV2 keeps the narrow layers of its inverted residuals linear: a ReLU on a low-dimensional "
      "representation destroys information it cannot recover (section 3.2), and the linear bottleneck "
      "measured better than one with a non-linearity (section 6.3, Figure 6a).", MOBILENET_V2)
def activation_after_linear_bottleneck(ctx: Ctx) -> Iterator[Diagnostic]:
    """R704: activations on the narrow output of an inverted bottleneck."""
    first_act = _first_activation_after(ctx)
    found: dict[int, tuple[int, int]] = {}
    for proj, src in _projections(ctx):
        act = first_act.get(proj)
        if act is not None:
            found[act] = (proj, src)    # the last projection wins: the nearest one to the activation
    for act in sorted(found):
        yield _r704(ctx, act, *found[act])


def _projections(ctx: Ctx) -> list[tuple[int, int]]:
    """(projection, depthwise conv behind it): pointwise layers that narrow the channels and read, through
    channel-wise ops and possibly a widening pointwise layer (ConvNeXt's expansion), a depthwise conv."""
    src: dict[int, int | None] = {}
    out: list[tuple[int, int]] = []
    for n in ctx.order:
        preds = ctx.preds[n]
        before = src.get(preds[0]) if preds else None
        op = ctx.op(n)
        if ctx.is_depthwise(n):
            src[n] = n
        elif op in _CHANNELWISE or op == "mul":
            src[n] = before
        elif before is not None and is_pointwise(ctx, n):
            cin, cout = ctx.in_shape(n)[0], channels(ctx, n)
            src[n] = before if cout > cin else None
            if cout < cin:
                out.append((n, before))
        else:
            src[n] = None
    return out


def _first_activation_after(ctx: Ctx) -> dict[int, int | None]:
    """For every node, the first activation its output meets through per-channel ops and residual sums (a
    gate's main input included, its body not); one backward pass."""
    first: dict[int, int | None] = {}
    for n in reversed(ctx.order):
        best = None
        for s in ctx.succs[n]:
            op = ctx.op(s)
            if op in ACTIVATIONS:
                cand = s
            elif op in _AFTER_PROJECTION or (op == "mul" and ctx.preds[s][0] == n):
                cand = first.get(s)
            else:
                cand = None
            if cand is not None and (best is None or cand < best):
                best = cand
        first[n] = best
    return first


def _r704(ctx: Ctx, act: int, proj: int, dw: int) -> Diagnostic:
    cin, cout = ctx.in_shape(proj)[0], channels(ctx, proj)
    op = ctx.op(act)
    pred = ctx.preds[act][0]
    post = ctx.op(pred) == "add" and ctx.node(pred)["loc"] == ctx.node(act)["loc"]
    past = f", past the residual sum {ctx.path(pred)}" if ctx.op(pred) == "add" else ""
    msg = (f"{op} on the {cout}-channel output of the projection {ctx.path(proj)} ({cin} -> {cout} channels after "
           f"the depthwise conv {ctx.path(dw)}){past}: a non-linearity in the narrow bottleneck destroys "
           f"information (MobileNetV2's linear bottleneck)")
    fix = f'remove post = "{op}" from the residual' if post else f"remove the {op}"
    hint = f"{fix} and keep the projection linear: same params, same MACs"
    return ctx.diag("R704", WARNING, act, msg, hint,
                    {"activation": op, "projection": ctx.path(proj), "depthwise": ctx.path(dw),
                     "expanded_channels": cin, "bottleneck_channels": cout, "residual_post": post})


# ---------------------------------------------------------------------------------- R705


@rule("R705", "stacked-normalization", WARNING,
      "a normalization layer feeding another one with nothing but identity, scale, permute or flatten between",
      "Batch normalization standardizes every channel over the batch, which cancels any per-channel affine "
      "map before it, as it cancels a conv bias (BN paper, section 3.2): a batchnorm before it is redundant as "
      "a whole, a layernorm or groupnorm before it loses its weight and bias. ConvNeXt (section 2.6) uses "
      "fewer normalization layers, one per block.", NORMS,
      severity_note="info when the second layer normalizes across channels (a layernorm, a groupnorm with several "
                    "channels per group), which does not provably cancel the first, or when the first has no "
                    "affine: then it is only a doubled normalization")
def stacked_normalization(ctx: Ctx) -> Iterator[Diagnostic]:
    """R705: a normalization directly followed by another."""
    for n in ctx.nodes_with(*sorted(NORM_OPS)):
        nxt = _next_norm(ctx, n)
        if nxt is not None:
            yield _r705(ctx, n, nxt)


def _next_norm(ctx: Ctx, nid: int) -> int | None:
    cur = nid
    while len(ctx.succs[cur]) == 1:
        s = ctx.succs[cur][0]
        if ctx.op(s) in NORM_OPS:
            return s
        if ctx.op(s) not in _BETWEEN_NORMS:
            return None
        cur = s
    return None


def _cancels_affine(ctx: Ctx, nid: int) -> bool:
    """Does normalization ``nid`` standardize every channel on its own (batchnorm; a groupnorm with one group
    per channel), so that a per-channel affine map before it has no effect?"""
    op = ctx.op(nid)
    return op == "batchnorm" or (op == "groupnorm" and ctx.node(nid)["args"]["groups"] == channels(ctx, nid))


def _fewer(params: int) -> str:
    return f"{-params:+,} params, " if params else ""


def _r705(ctx: Ctx, first: int, second: int) -> Diagnostic:
    a, b = ctx.op(first), ctx.op(second)
    c = channels(ctx, first)
    params = _params(ctx, first)
    affine = bool(ctx.node(first)["args"].get("affine", True)) and params > 0
    then = f"right before the {b} {ctx.path(second)}"
    ev = {"first": ctx.path(first), "second": ctx.path(second), "channels": c, "wasted_params": params}
    if _cancels_affine(ctx, second) and a == "batchnorm":
        waste = f"{count(params)} params wasted" if affine else "its compute is wasted"
        msg = (f"batchnorm on {c} channels {then}, which standardizes every channel again: the first is a "
               f"per-channel affine map that the second undoes ({waste})")
        hint = f"remove this batchnorm ({_fewer(params)}the same function up to eps)"
        return ctx.diag("R705", WARNING, first, msg, hint, ev)
    if _cancels_affine(ctx, second) and affine:
        msg = (f"{a} on {c} channels {then}, which standardizes every channel again: the {a}'s weight and bias "
               f"({count(params)} params) are cancelled")
        hint = f"set affine = false on this {a} ({_fewer(params)}the same function up to eps)"
        return ctx.diag("R705", WARNING, first, msg, hint, ev)
    msg = (f"{a} on {c} channels {then}, which normalizes it again: two normalizations in a row, where ConvNeXt "
           f"keeps one per block")
    hint = f"keep one of the two: remove this {a}" + (f" ({-params:+,} params)" if params else "")
    return ctx.diag("R705", INFO, first, msg, hint, ev)
