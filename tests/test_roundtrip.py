"""Text <-> YAML conversion keeps the AST (locations aside) and the summary, for every spec.

Every file under ``specs/`` present when the tests are collected is converted to the other form
and back; both conversions must give an AST equal to the original and the converted network must
summarize identically (node line numbers aside, since the two forms lay lines out differently).
"""

from __future__ import annotations

import io
import json
import shutil
import textwrap
from contextlib import redirect_stderr
from pathlib import Path

import pytest
from golden import assert_golden
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archdsl import ast as A
from archdsl import report
from archdsl.cli import main
from archdsl.frontend.loader import is_yaml, load_spec_file, parse_source
from archdsl.frontend.printer import to_text, to_yaml
from archdsl.frontend.text import RESERVED_NAMES
from archdsl.pipeline import analyze

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
ALL_SPECS = sorted(SPECS.rglob("*.arch")) + sorted([*SPECS.rglob("*.yaml"), *SPECS.rglob("*.yml")])


def _id(p: Path) -> str:
    return str(p.relative_to(SPECS))


def _summary(path: Path) -> dict | None:
    res = analyze(path)
    assert res.ok, [f"{d.loc} {d.code} {d.message}" for d in res.diags]
    if res.graph is None:
        return None  # a library of blocks
    doc = report.summary_json(res.graph)
    for node in doc["nodes"]:
        node.pop("line")
    return doc


@pytest.fixture
def spec_tree(tmp_path: Path) -> Path:
    """A private copy of specs/ so converted files sit next to the libraries they import."""
    dst = tmp_path / "specs"
    shutil.copytree(SPECS, dst, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    return dst


@pytest.mark.parametrize("spec", ALL_SPECS, ids=[_id(p) for p in ALL_SPECS])
def test_spec_round_trips(spec: Path, spec_tree: Path) -> None:
    copy = spec_tree / spec.relative_to(SPECS)
    original = load_spec_file(copy)
    yaml_first = is_yaml(copy)
    other_suffix, same_suffix = (".arch", ".yaml") if yaml_first else (".yaml", ".arch")
    printers = {".arch": to_text, ".yaml": to_yaml}

    # one way: the other form ...
    there = copy.with_name(copy.stem + ".rt1" + other_suffix)
    there.write_text(printers[other_suffix](original), encoding="utf-8")
    converted = load_spec_file(there)
    assert converted == original
    # ... and back to the original form
    back = copy.with_name(copy.stem + ".rt2" + same_suffix)
    back.write_text(printers[same_suffix](converted), encoding="utf-8")
    assert load_spec_file(back) == original

    expected = _summary(copy)
    assert _summary(there) == expected
    assert _summary(back) == expected
    if expected is not None:
        assert json.dumps(_summary(there), sort_keys=True) == json.dumps(expected, sort_keys=True)


@pytest.mark.parametrize("spec", ALL_SPECS[:1] + [p for p in ALL_SPECS if is_yaml(p)][:1],
                         ids=lambda p: _id(p))
def test_convert_command(spec: Path, spec_tree: Path) -> None:
    copy = spec_tree / spec.relative_to(SPECS)
    target = copy.with_name(copy.stem + ".cli" + (".arch" if is_yaml(copy) else ".yaml"))
    assert main(["convert", str(copy), "-o", str(target)]) == 0
    assert load_spec_file(target) == load_spec_file(copy)
    # converting is deterministic: a second conversion writes the same bytes
    first = target.read_bytes()
    assert main(["convert", str(copy), "-o", str(target)]) == 0
    assert target.read_bytes() == first


def test_convert_failure_leaves_no_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.arch"
    bad.write_text("network n\ninput 3x8x8\nrelu(\n")
    out = tmp_path / "out.yaml"
    with redirect_stderr(io.StringIO()) as err:
        assert main(["convert", str(bad), "-o", str(out)]) == 1
    assert "error[E001]" in err.getvalue()
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.arch"]


# ------------------------------------------------------------------------------------------ printer

EVERY_CONSTRUCT = textwrap.dedent("""
    # a comment is not part of the AST
    network everything(num_classes = 10, width = 16, aux_on = true, drop = 0.25, name = "x\\"y", eps = 1e-05)
    input [3, 32, 2 * 16]
    use "lib.arch"
    let half = width // 2
    let sizes = [1, -2, 3]
    let mixed = -(half + 1) * 2 ** -1 % 3 - sizes[0]
    let cond = not (aux_on and half > 2) or half != 3
    let pick = if half >= 8 then max(half, 2) else make_divisible(half * 1.5, 8)
    loss cross_entropy(label_smoothing = 0.1)
    init conv2d: kaiming_normal(mode = "fan_out", nonlinearity = "relu")
    rules(ignore = ["R301"])

    block Unit(c, stride = 1, k = 3, padding = k // 2) {
        conv: conv2d(c, k, stride = stride, padding = padding, bias = false)
        bn: batchnorm(eps = eps)
        relu
    }

    block Empty {
    }

    stem: Unit(width, stride = 2) -> maxpool(3, stride = 1, padding = 1, ceil_mode = true)
    inline Unit(width, k = 1)
    mixed: concat {
        a: Unit(half, k = 1)
        b: { Unit(half, k = 1) -> Unit(half) }
        let q = half
        if q > 100 { c: Unit(q) }
        d: avgpool(3, stride = 1, padding = 1, count_include_pad = false) -> Unit(half, k = 1)
    }
    stage: repeat(2, prefix = "block", start = 1) as i {
        r: residual(scale = 0.5, post = "relu") {
            Unit(16, stride = if i == 0 then 2 else 1) -> conv2d(16, 3, padding = "same")
        } shortcut down if i == 0 {
            conv2d(16, 1, stride = 2, bias = false) -> batchnorm
        }
    }
    residual { identity }
    residual { relu } shortcut { }
    dense1: dense(2, prefix = "l") as j { Unit(4) }
    repeat(0) { }
    if aux_on {
        aux(weight = 0.4) side: { global_avgpool -> flatten -> linear(num_classes) }
    } else if width > 100 {
        aux side: identity
    } else {
        identity
    }
    { let z = 1  conv2d(z, 1) }
    global_avgpool -> flatten -> dropout(drop)
    fc: linear(num_classes)
""")


def test_printer_every_construct(tmp_path: Path) -> None:
    spec = parse_source(EVERY_CONSTRUCT, "every.arch")
    text = to_text(spec)
    yaml = to_yaml(spec)
    assert parse_source(text, "p.arch") == spec
    assert parse_source(yaml, "p.yaml", yaml=True) == spec
    # printing is a fixpoint, and YAML -> text gives exactly the text printing
    assert to_text(parse_source(text, "p.arch")) == text
    assert to_yaml(parse_source(yaml, "p.yaml", yaml=True)) == yaml
    assert to_text(parse_source(yaml, "p.yaml", yaml=True)) == text
    assert_golden("printer/every_construct.arch", text)
    assert_golden("printer/every_construct.yaml", yaml)


def test_every_construct_spec_analyzes_identically_in_both_forms(tmp_path: Path) -> None:
    (tmp_path / "lib.arch").write_text("block Unused2 { relu }\n")
    (tmp_path / "e.arch").write_text(EVERY_CONSTRUCT)
    (tmp_path / "e.yaml").write_text(to_yaml(parse_source(EVERY_CONSTRUCT, "e.arch")))
    a, b = analyze(tmp_path / "e.arch"), analyze(tmp_path / "e.yaml")
    strip = [(d.code, d.message) for d in a.diags.sorted()]
    assert strip == [(d.code, d.message) for d in b.diags.sorted()]
    assert strip == [("W122", "block 'Empty' is defined but never used")]
    ja, jb = report.summary_json(a.graph), report.summary_json(b.graph)
    for doc in (ja, jb):
        for n in doc["nodes"]:
            n.pop("line")
    assert ja == jb
    assert ja["outputs"] == {"main": [10], "side": [10]}


# ------------------------------------------------------------------------------------------ expressions

NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(lambda s: s not in RESERVED_NAMES)
OPS = ["or", "and", "==", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "//", "%", "**"]
LEAVES = st.one_of(
    st.integers(0, 10**18).map(A.Num),  # literals are limited to 10**int_digits (E151)
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(A.Num),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"), max_size=6).map(A.Str),
    st.sampled_from([True, False, None]).map(A.Const),
    NAMES.map(A.Name),
)


def _extend(children):
    return st.one_of(
        st.builds(A.BinOp, st.sampled_from(OPS), children, children),
        st.builds(A.UnaryOp, st.sampled_from(["-", "+", "not"]), children),
        st.builds(A.IfExp, children, children, children),
        st.builds(A.FuncCall, NAMES, st.lists(children, max_size=3).map(tuple)),
        st.builds(A.Index, children, children),
        st.lists(children, max_size=3).map(lambda xs: A.ListExpr(tuple(xs))),
    )


EXPRS = st.recursive(LEAVES, _extend, max_leaves=12)


@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRS)
def test_printed_expressions_parse_back(e) -> None:
    spec = A.SpecFile(None, None, (), (A.Let("x", e),), (), (), ())
    text = to_text(spec)
    assert parse_source(text, "e.arch").lets[0].value == e, text
    yaml = to_yaml(spec)
    assert parse_source(yaml, "e.yaml", yaml=True).lets[0].value == e, yaml
