"""Random small networks: the rules never crash, and the transform either verifies or leaves things alone."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archdsl.pipeline import analyze
from archdsl.rules import RuleRequest, lint
from archdsl.transforms.factorize import TransformError, parse_kinds, transform

CONV = st.builds(lambda out, k, s, p, bias, act: f"conv2d({out}, {k}, stride = {s}, padding = {p}"
                 f"{'' if bias else ', bias = false'}) -> {act}",
                 st.sampled_from([4, 8, 16, 64]), st.sampled_from([1, 3, 5, 7, "[1, 7]", "[3, 1]"]),
                 st.sampled_from([1, 1, 2]), st.sampled_from([0, 1, 2, 3]), st.booleans(),
                 st.sampled_from(["relu", "batchnorm -> relu", "tanh", "sigmoid -> relu", "identity"]))
LAYER = st.one_of(
    CONV,
    st.sampled_from(["maxpool(2, stride = 2)", "avgpool(3, stride = 1, padding = 1)", "batchnorm", "dropout(0.3)",
                     "lrn(5)"]),
    st.builds(lambda a, b: f"concat {{\n    conv2d({a}, 1) -> relu\n    conv2d({b}, 3, padding = 1) -> relu\n"
                           f"    maxpool(3, stride = 1, padding = 1)\n}}",
              st.sampled_from([8, 16]), st.sampled_from([8, 32])),
    st.builds(lambda c: f"residual(post = \"relu\") {{ conv2d({c}, 3, padding = 1) -> batchnorm -> relu -> "
                        f"conv2d({c}, 3, padding = 1) -> batchnorm }} shortcut proj {{ conv2d({c}, 1) }}",
              st.sampled_from([16, 256])),
    st.builds(lambda n: f"dense({n}, prefix = \"l\") {{ batchnorm -> relu -> conv2d(8, 3, padding = 1) }}",
              st.integers(1, 4)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LAYER, min_size=1, max_size=8), st.sampled_from([8, 14, 16, 28]), st.sampled_from([3, 16, 64]),
       st.booleans())
def test_random_networks(layers: list[str], size: int, chans: int, head: bool) -> None:
    body = "\n".join(layers) + ("\nglobal_avgpool -> flatten -> dropout(0.5) -> linear(10)" if head else "")
    text = f"network r\ninput {chans}x{size}x{size}\n{body}\n"
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.arch"
        path.write_text(text, encoding="utf-8")
        res = analyze(path)
        if not res.ok:
            return
        found = lint(res, RuleRequest(use_pyproject=False))
        assert not [f for f in found if f.code == "R000"], (text, [f.message for f in found if f.code == "R000"])
        for f in found:
            assert f.loc.line >= 1 and f.message and f.severity in ("warning", "info")
        try:
            result = transform(str(path), parse_kinds("5x5,7x7,asym"))
        except TransformError as exc:   # only a failed verification raises: that would be a bug
            raise AssertionError(f"{exc}\n{text}") from None
        assert result.after.graph.total_params() <= result.before.graph.total_params() + 10_000
