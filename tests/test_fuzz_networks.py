"""Random valid networks: the analysis agrees with the PyTorch module archdsl builds from them.

A hypothesis strategy writes small but valid specs as text — sequences of convolutions (kernels
1/3/5 or asymmetric, strides, padding, dilation, groups), batch norms, activations, dropout, max
and average pools (ceil mode, padding), concat branches, residuals (with a projection shortcut
whenever the body changes the shape, sometimes also when it does not), dense blocks, repeats with
a loop variable, block definitions called by label or ``inline``, labelled groups, and an optional
flatten + linear head — on inputs of 1 or 3 channels and 5 to 16 pixels a side, with at most 16
channels per layer (a concat or dense block up to 32).  The generator tracks the shape itself so
that every spec is valid, and:

* ``analyze`` reports no error, and no design rule fails (R000);
* the module ``archdsl.build`` makes has exactly the analytic parameter count, and its forward on
  a random tensor returns the inferred output shape;
* every module of a named node (and every block or sequence the generated code makes a
  submodule) sees, through a forward hook, the output shape the analysis inferred for it;
* torch's FLOP counter gives twice the analytic MACs.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import archdsl  # noqa: E402
from archdsl.backends.codegen import Generator  # noqa: E402
from archdsl.pipeline import analyze  # noqa: E402

MAX_C = 16
BLOCKS = """\
block ConvBN(out, k = 3, stride = 1) {
    conv: conv2d(out, k, stride = stride, padding = k // 2, bias = false)
    bn: batchnorm
    relu
}

block Basic(planes, stride = 1, project = false) {
    residual(post = "relu") {
        conv1: conv2d(planes, 3, stride = stride, padding = 1, bias = false)
        bn1: batchnorm
        relu
        conv2: conv2d(planes, 3, padding = 1, bias = false)
        bn2: batchnorm
    } shortcut downsample if project {
        conv2d(planes, 1, stride = stride, bias = false) -> batchnorm
    }
}
"""


@dataclass
class Net:
    """The generator's state: the current shape, label counter, whether the blocks are used."""

    c: int
    h: int
    w: int
    labels: itertools.count = field(default_factory=itertools.count)
    blocks: bool = False
    inlined: set[str] = field(default_factory=set)  # an inlined block's layer names join the parent's

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.c, self.h, self.w)


def _conv_out(n: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _pool_out(n: int, k: int, s: int, p: int, ceil: bool) -> int:
    if not ceil:
        return (n + 2 * p - k) // s + 1
    out = -(-(n + 2 * p - k) // s) + 1
    if (out - 1) * s >= n + p:  # the last window must start inside the input or left padding
        out -= 1
    return out


def _label(draw, net: Net, text: str) -> str:
    return f"l{next(net.labels)}: {text}" if draw(st.booleans()) else text


def _conv(draw, net: Net) -> str | None:
    out = draw(st.sampled_from([4, 8, 12, 16]))
    if draw(st.integers(0, 4)) == 0:  # asymmetric kernel
        kh, kw = draw(st.sampled_from([(1, 3), (3, 1), (1, 5), (5, 1)]))
        if net.h < kh or net.w < kw:
            return None
        net.c = out
        return f"conv2d({out}, [{kh}, {kw}], padding = [{kh // 2}, {kw // 2}])"
    k = draw(st.sampled_from([1, 3, 3, 5]))
    s = draw(st.sampled_from([1, 1, 2]))
    p = draw(st.sampled_from([0, k // 2]))
    d = draw(st.sampled_from([1, 1, 1, 2])) if k > 1 else 1
    groups = draw(st.sampled_from([g for g in (1, 1, 2, 4) if net.c % g == 0 and out % g == 0]))
    bias = draw(st.booleans())
    oh, ow = _conv_out(net.h, k, s, p, d), _conv_out(net.w, k, s, p, d)
    if oh < 1 or ow < 1:
        return None
    net.c, net.h, net.w = out, oh, ow
    args = [str(out), str(k)]
    args += [f"stride = {s}"] * (s != 1) + [f"padding = {p}"] * (p != 0) + [f"dilation = {d}"] * (d != 1)
    args += [f"groups = {groups}"] * (groups != 1) + ["bias = false"] * (not bias)
    return f"conv2d({', '.join(args)})"


def _pool(draw, net: Net) -> str | None:
    kind = draw(st.sampled_from(["maxpool", "avgpool"]))
    k = draw(st.sampled_from([2, 3]))
    s = draw(st.sampled_from([1, 2, 2]))
    p = draw(st.integers(0, k // 2))
    ceil = draw(st.booleans())
    if net.h + 2 * p < k or net.w + 2 * p < k:
        return None
    oh, ow = _pool_out(net.h, k, s, p, ceil), _pool_out(net.w, k, s, p, ceil)
    if oh < 1 or ow < 1:
        return None
    net.h, net.w = oh, ow
    args = [str(k), f"stride = {s}"] + [f"padding = {p}"] * (p != 0) + ["ceil_mode = true"] * ceil
    if kind == "avgpool" and draw(st.booleans()):
        args.append("count_include_pad = false")
    return f"{kind}({', '.join(args)})"


SIMPLE = ["batchnorm", "batchnorm(eps = 0.001)", "relu", "relu6", "leaky_relu(negative_slope = 0.2)", "sigmoid",
          "tanh", "gelu", "silu", "hardswish", "identity", "dropout(0.3)", "dropout2d(0.1)", "lrn(3)"]


def _branch(draw, net: Net, s: int) -> tuple[str, int]:
    """A concat branch: output spatial size (n - 1) // s + 1, whatever it does."""
    out = draw(st.sampled_from([2, 4, 6, 8]))
    kind = draw(st.integers(0, 3))
    if kind == 0:
        text = f"conv2d({out}, 1{f', stride = {s}' * (s != 1)})"
    elif kind == 1:
        text = f"conv2d({out}, 3, stride = {s}, padding = 1) -> batchnorm -> relu"
    elif kind == 2:
        text = f"maxpool(3, stride = {s}, padding = 1) -> conv2d({out}, 1)"
    else:
        text = f"conv2d({out}, 1) -> relu -> conv2d({out}, [1, 3], stride = {s}, padding = [0, 1])"
    return _label(draw, net, "{ " + text + " }" if "->" in text else text), out


def _concat(draw, net: Net) -> str:
    s = draw(st.sampled_from([1, 1, 2]))
    branches = [_branch(draw, net, s) for _ in range(draw(st.integers(2, 3)))]
    net.c = sum(c for _, c in branches)
    net.h, net.w = (net.h - 1) // s + 1, (net.w - 1) // s + 1
    return "concat {\n" + "\n".join(f"    {b}" for b, _ in branches) + "\n}"


def _residual(draw, net: Net) -> str:
    out = draw(st.sampled_from([net.c, 4, 8, 16]))
    s = draw(st.sampled_from([1, 1, 2]))
    mid = draw(st.sampled_from(["relu", "batchnorm -> relu", "identity"]))
    project = out != net.c or s != 1
    post = draw(st.sampled_from(["", '(post = "relu")']))
    body = (f"conv2d({out}, 3, stride = {s}, padding = 1, bias = false) -> {mid} -> "
            f"conv2d({out}, 3, padding = 1) -> batchnorm")
    shortcut = ""
    if project or draw(st.integers(0, 3)) == 0:
        shortcut = f" shortcut proj{next(net.labels)} {{ conv2d({out}, 1{f', stride = {s}' * (s != 1)}, bias = false) -> batchnorm }}"
    net.c, net.h, net.w = out, (net.h - 1) // s + 1, (net.w - 1) // s + 1
    return f"residual{post} {{ {body} }}{shortcut}"


def _dense(draw, net: Net) -> str | None:
    n, g = draw(st.integers(1, 3)), draw(st.sampled_from([2, 4]))
    if net.c + n * g > 2 * MAX_C:
        return None
    net.c += n * g
    text = f"dense({n}) {{ batchnorm -> relu -> conv2d({g}, 3, padding = 1, bias = false) }}"
    if draw(st.booleans()):  # layer names from prefix/start: only inside a labelled dense's own scope
        text = f'l{next(net.labels)}: dense({n}, prefix = "layer", start = 1)' + text[text.index(")") + 1:]
    return text


def _repeat(draw, net: Net) -> str:
    n, out = draw(st.integers(1, 3)), draw(st.sampled_from([4, 6, 8]))
    net.c = out + n - 1
    return f"repeat({n}) as i {{ conv2d({out} + i, 3, padding = 1) -> relu }}"


def _block_call(draw, net: Net) -> str:
    net.blocks = True
    if draw(st.booleans()):
        out, k, s = draw(st.sampled_from([4, 8, 16])), draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 2]))
        net.c, net.h, net.w = out, (net.h - 1) // s + 1, (net.w - 1) // s + 1
        call = f"ConvBN({out}, {k}, stride = {s})"
    else:
        planes, s = draw(st.sampled_from([net.c, 8, 16])), draw(st.sampled_from([1, 2]))
        project = "true" if planes != net.c or s != 1 else draw(st.sampled_from(["false", "true"]))
        net.c, net.h, net.w = planes, (net.h - 1) // s + 1, (net.w - 1) // s + 1
        call = f"Basic({planes}, stride = {s}, project = {project})"
    name = call.split("(")[0]
    if name not in net.inlined and draw(st.integers(0, 3)) == 0:
        net.inlined.add(name)
        return f"inline {call}"
    return f"l{next(net.labels)}: {call}"


def _element(draw, net: Net, depth: int) -> str:
    kinds = ["conv", "conv", "simple", "simple", "pool", "concat", "residual", "dense", "repeat", "block"]
    if depth < 2:
        kinds.append("group")
    while True:
        kind = draw(st.sampled_from(kinds))
        if net.c > MAX_C and kind in ("concat", "dense", "simple", "pool"):
            kind = "conv"  # bring the width back down
        if kind == "conv":
            text = _conv(draw, net)
        elif kind == "simple":
            text = draw(st.sampled_from(SIMPLE))
        elif kind == "pool":
            text = _pool(draw, net)
        elif kind == "concat":
            text = _concat(draw, net)
        elif kind == "residual":
            text = _residual(draw, net)
        elif kind == "dense":
            text = _dense(draw, net)
        elif kind == "repeat":
            text = _repeat(draw, net)
        elif kind == "block":
            return _block_call(draw, net)
        else:
            inner = [_element(draw, net, depth + 1) for _ in range(draw(st.integers(1, 3)))]
            return f"l{next(net.labels)}: {{\n" + "\n".join(inner) + "\n}"
        if text is not None:
            return text if re.match(r"l\d+: ", text) else _label(draw, net, text)


@st.composite
def networks(draw) -> tuple[str, tuple[int, ...]]:
    """(spec text, output shape the generator expects)."""
    net = Net(draw(st.sampled_from([1, 3, 3])), draw(st.integers(5, 16)), draw(st.integers(5, 16)))
    header = f"network fuzz\ninput {net.c}x{net.h}x{net.w}\n"
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        el = _element(draw, net, 0)
        if lines and "\n" not in el and "\n" not in lines[-1] and draw(st.booleans()):
            lines[-1] += f" -> {el}"  # a chain
        else:
            lines.append(el)
    out: tuple[int, ...] = net.shape
    head = draw(st.sampled_from(["", "gap", "flat", "adaptive"]))
    if head == "flat" and net.c * net.h * net.w > 2048:
        head = "gap"
    n = draw(st.integers(1, 10))
    if head == "gap":
        lines.append(f"global_avgpool -> flatten -> fc: linear({n})")
    elif head == "flat":
        lines.append(f"flatten -> dropout(0.5) -> fc: linear({n}, bias = false)")
    elif head == "adaptive":
        lines.append(f"adaptive_avgpool(2) -> flatten -> fc: linear({n})")
    if head:
        out = (n,)
    return header + (BLOCKS if net.blocks else "") + "\n".join(lines) + "\n", out


def _expected_shapes(graph) -> dict[str, tuple]:
    """Module path -> inferred output shape: op modules, and block/sequence submodules."""
    gen = Generator(graph)
    gen.analyze()
    expected = {d["path"]: tuple(d["shape"]) for nid, d in graph.g.nodes(data=True) if gen.is_module(nid)}
    for path in graph.scopes:
        if path in gen.first and gen.role.get(path) in ("block", "seq"):
            expected[path] = tuple(graph.node(gen.exit_node(path))["shape"])
    return expected


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nets")


COUNTER = itertools.count()


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=networks())
def test_random_network_matches_torch(case: tuple[str, tuple[int, ...]], scratch: Path) -> None:
    text, out_shape = case
    path = scratch / f"net{next(COUNTER)}.arch"  # a fresh name: the runtime caches by path and mtime
    path.write_text(text, encoding="utf-8")
    res = analyze(path, rules=True)
    errors = [f"{d.loc} {d.code} {d.message}" for d in res.diags if d.is_error or d.code == "R000"]
    assert not errors, f"{errors}\n{text}"
    graph = res.graph
    inferred = tuple(graph.node(graph.outputs["main"])["shape"])
    assert inferred == out_shape, text

    torch.manual_seed(0)
    model = archdsl.build(path).eval()
    assert sum(p.numel() for p in model.parameters()) == graph.total_params(), text
    expected = _expected_shapes(graph)
    seen: dict[str, tuple] = {}
    handles = [m.register_forward_hook(lambda _m, _i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:])))
               for name, m in model.named_modules() if name in expected]
    x = torch.randn(2, *graph.input_shape)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            y = model(x)
    finally:
        for h in handles:
            h.remove()
    y = y if isinstance(y, torch.Tensor) else y[0]
    assert tuple(y.shape) == (2, *inferred), text
    must = {p for p, _ in expected.items() if graph.by_path(p) in graph.eval_nodes()}
    assert must <= set(seen), (sorted(must - set(seen))[:5], text)
    bad = {k: (v, expected[k]) for k, v in seen.items() if v != expected[k]}
    assert not bad, (list(bad.items())[:5], text)
    assert counter.get_total_flops() == 2 * 2 * graph.eval_macs(), text  # batch of 2
