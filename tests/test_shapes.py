"""Shape inference equals PyTorch's, checked against torch itself.

For random conv/pool hyper-parameters (bounded so the whole module runs in seconds) the shape
archdsl infers must be exactly the shape torch produces, and archdsl must report an error exactly
when torch refuses the configuration.  Torch is used only here, as the oracle.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from shape_support import agree, infer, torch_shape  # noqa: E402

from archdsl.pipeline import analyze  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")]

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


pairs = st.one_of(st.integers(1, 5), st.tuples(st.integers(1, 5), st.integers(1, 5)).map(tuple))


def _pair(v) -> tuple[int, int]:
    return (v[0], v[1]) if isinstance(v, tuple) else (v, v)


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    cin = groups * draw(st.integers(1, 2)) if draw(st.booleans()) else draw(st.integers(1, 6))
    out = groups * draw(st.integers(1, 2)) if draw(st.booleans()) else draw(st.integers(1, 6))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    kernel = draw(pairs)
    stride = draw(st.one_of(st.just(1), st.integers(1, 4), st.tuples(st.integers(1, 3), st.integers(1, 3)).map(tuple)))
    padding = draw(st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)).map(tuple),
                             st.sampled_from(["same", "valid"])))
    dilation = draw(st.one_of(st.just(1), st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)).map(tuple)))
    bias = draw(st.booleans())
    return dict(out=out, kernel=kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
                bias=bias), (cin, h, w)


@SETTINGS
@given(conv_cases())
@example((dict(out=4, kernel=(2, 4), stride=1, padding="same", dilation=(2, 1), groups=1, bias=True), (3, 5, 5)))
@example((dict(out=4, kernel=5, stride=2, padding=0, dilation=1, groups=1, bias=True), (3, 4, 9)))
@example((dict(out=6, kernel=3, stride=1, padding=1, dilation=1, groups=3, bias=False), (4, 5, 5)))
def test_conv2d_shape_matches_torch(case) -> None:
    args, (c, h, w) = case
    kh, kw = _pair(args["kernel"])
    ok_groups = c % args["groups"] == 0 and args["out"] % args["groups"] == 0
    weight = torch.zeros(args["out"], max(c // args["groups"], 1) if ok_groups else c, kh, kw)
    padding = args["padding"] if isinstance(args["padding"], str) else _pair(args["padding"])

    def run():
        if not ok_groups:
            raise RuntimeError("groups")
        return F.conv2d(torch.zeros(1, c, h, w), weight, None, _pair(args["stride"]), padding,
                        _pair(args["dilation"]), args["groups"])

    agree(infer("conv2d", args, (c, h, w)), torch_shape(run))


@st.composite
def pool_cases(draw):
    kernel = draw(pairs)
    stride = draw(st.one_of(st.none(), st.integers(1, 4), st.tuples(st.integers(1, 3), st.integers(1, 3)).map(tuple)))
    padding = draw(st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 2), st.integers(0, 2)).map(tuple)))
    dilation = draw(st.one_of(st.just(1), st.integers(1, 3)))
    ceil_mode = draw(st.booleans())
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    return kernel, stride, padding, dilation, ceil_mode, (2, h, w)


# ceil_mode edge cases: a last window that would start in the padding is dropped; a kernel larger
# than the input still gives one output with ceil_mode; the padding limit uses the undilated kernel.
CEIL_EDGES = [
    (3, 2, 1, 1, True, (2, 6, 6)),
    (2, 2, 1, 1, True, (2, 5, 5)),
    (3, 2, 0, 1, True, (2, 2, 2)),
    (3, 3, 1, 1, True, (2, 7, 7)),
    (3, 2, 0, 1, True, (2, 112, 112)),
    (3, 1, 2, 2, False, (2, 9, 9)),
    (2, 2, 1, 2, True, (2, 4, 4)),
]


@SETTINGS
@given(pool_cases())
@pytest.mark.parametrize("op", ["maxpool", "avgpool"])
def test_pool_shape_matches_torch(op: str, case) -> None:
    kernel, stride, padding, dilation, ceil_mode, shape = case
    check_pool(op, kernel, stride, padding, dilation, ceil_mode, shape)


@pytest.mark.parametrize("op", ["maxpool", "avgpool"])
@pytest.mark.parametrize("case", CEIL_EDGES, ids=[str(c) for c in CEIL_EDGES])
def test_pool_ceil_mode_edges(op: str, case) -> None:
    check_pool(op, *case)


def check_pool(op, kernel, stride, padding, dilation, ceil_mode, shape) -> None:
    x = torch.zeros(1, *shape)
    k, s, p = _pair(kernel), _pair(stride) if stride is not None else None, _pair(padding)
    args = dict(kernel=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    if op == "maxpool":
        args["dilation"] = dilation
        theirs = torch_shape(lambda: F.max_pool2d(x, k, s, p, dilation, ceil_mode))
    else:
        theirs = torch_shape(lambda: F.avg_pool2d(x, k, s, p, ceil_mode))
    agree(infer(op, args, shape), theirs)


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 9), st.integers(1, 9), pairs, st.sampled_from(["avg", "max"]))
def test_adaptive_pool_matches_torch(c: int, h: int, w: int, size, kind: str) -> None:
    x = torch.zeros(1, c, h, w)
    fn = F.adaptive_avg_pool2d if kind == "avg" else F.adaptive_max_pool2d
    agree(infer(f"adaptive_{kind}pool", {"size": size}, (c, h, w)), torch_shape(lambda: fn(x, _pair(size))))
    agree(infer(f"global_{kind}pool", {}, (c, h, w)), torch_shape(lambda: fn(x, 1)))


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 9), st.integers(1, 9), st.integers(1, 7))
def test_flatten_linear_lrn_match_torch(c: int, h: int, w: int, out: int) -> None:
    x = torch.zeros(1, c, h, w)
    flat = infer("flatten", {}, (c, h, w))
    agree(flat, torch_shape(lambda: torch.flatten(x, 1)))
    lin = torch.nn.Linear(flat[0], out)
    agree(infer("linear", {"out": out}, flat), torch_shape(lambda: lin(torch.flatten(x, 1))))
    agree(infer("lrn", {"size": 5}, (c, h, w)), torch_shape(lambda: F.local_response_norm(x, 5)))


# ------------------------------------------------------------------------- whole specs vs torch modules


def _torch_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_costs_of_a_small_net_match_torch(tmp_path) -> None:
    """Params of every layer kind equal torch's count (BN running stats excluded), shapes equal."""
    spec = tmp_path / "net.arch"
    spec.write_text(
        "network t\ninput 3x17x17\n"
        "c1: conv2d(8, [3, 5], stride = 2, padding = [1, 2], bias = false)\n"
        "bn: batchnorm\n"
        "c2: conv2d(8, 3, groups = 4, dilation = 2, padding = \"same\")\n"
        "p: maxpool(3, stride = 2, ceil_mode = true)\n"
        "n: lrn(3)\n"
        "a: avgpool(2, padding = 1, count_include_pad = false)\n"
        "g: adaptive_avgpool([2, 3])\n"
        "flatten\n"
        "fc: linear(5)\n")
    res = analyze(spec)
    assert res.ok, [d.message for d in res.diags]
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(3, 8, (3, 5), stride=2, padding=(1, 2), bias=False),
        nn.BatchNorm2d(8),
        nn.Conv2d(8, 8, 3, groups=4, dilation=2, padding="same"),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.LocalResponseNorm(3),
        nn.AvgPool2d(2, padding=1, count_include_pad=False),
        nn.AdaptiveAvgPool2d((2, 3)),
        nn.Flatten(1),
        nn.Linear(8 * 2 * 3, 5),
    )
    g = res.graph
    x = torch.zeros(1, 3, 17, 17)
    paths = ["c1", "bn", "c2", "p", "n", "a", "g", "7", "fc"]
    for path, layer in zip(paths, model, strict=True):
        x = layer(x)
        node = g.node(g.by_path(path))
        assert node["shape"] == tuple(x.shape[1:]), path
        assert node["costs"].params == _torch_params(layer), path
    assert g.total_params() == _torch_params(model)
