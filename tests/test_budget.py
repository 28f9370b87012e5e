"""Budgets (``budget(params <= 5.5M, ...)`` in a spec, ``--budget`` on the command line): each figure
passing and failing in both front ends, located errors, units, bad clauses, the command line, and
conversion between the front ends."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from cli_support import run

from archdsl import ast as A
from archdsl import metrics, report
from archdsl.budget import VERDICT_CODES, Bound, check_budgets, measure, parse_cli_budgets
from archdsl.diagnostics import DiagnosticError, Loc
from archdsl.frontend.loader import parse_source
from archdsl.frontend.printer import to_text, to_yaml
from archdsl.metrics import longest_path
from archdsl.pipeline import analyze

ROOT = Path(__file__).resolve().parents[1]

#: A small network; the budget line is substituted for BUDGET (text, line 3) or BUDGET (YAML, line 3).
TEXT = textwrap.dedent("""
    network tiny(width = 8)
    input 3x32x32
    BUDGET
    conv1: conv2d(width, 3, padding = 1) -> relu
    conv2: conv2d(2 * width, 3, padding = 1) -> relu
    head: { global_avgpool -> flatten -> fc: linear(10) }
""").lstrip("\n")

YAML = textwrap.dedent("""
    network: tiny(width = 8)
    input: 3x32x32
    BUDGET
    layers:
    - 'conv1: conv2d(width, 3, padding = 1) -> relu'
    - 'conv2: conv2d(2 * width, 3, padding = 1) -> relu'
    - head:
      - 'global_avgpool -> flatten -> fc: linear(10)'
""").lstrip("\n")


def _write(tmp_path: Path, budget: str, yaml: bool = False) -> Path:
    path = tmp_path / ("net.yaml" if yaml else "net.arch")
    path.write_text((YAML if yaml else TEXT).replace("BUDGET", budget), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """The tiny network's figures, measured the ways summary and the metrics module report them."""
    path = _write(tmp_path_factory.mktemp("fig"), "")
    res = analyze(path)
    assert res.ok
    doc = report.summary_json(res.graph)
    return {"params": doc["params"], "macs": doc["macs"], "depth": metrics.depth(res.graph),
            "activations": sum(n["activations"] for n in doc["nodes"])}


def _budget_diags(path: Path, **kw) -> list:
    return [d for d in analyze(path, **kw).diags.sorted() if d.code[1:3] == "40"]


# ---------------------------------------------------------------------------------------- each figure


@pytest.mark.parametrize("yaml", [False, True], ids=["text", "yaml"])
@pytest.mark.parametrize("figure", ["params", "macs", "depth", "activations"])
def test_each_figure_fails_above_and_passes_at_its_value(tmp_path: Path, figures: dict, figure: str,
                                                         yaml: bool) -> None:
    value = figures[figure]
    # one below the value: exceeded by exactly 1, located at the figure's name
    line = f"budget: {{{figure}: {value - 1}}}" if yaml else f"budget({figure} <= {value - 1})"
    diags = _budget_diags(_write(tmp_path, line, yaml))
    col = 10 if yaml else 8
    assert [(d.code, d.severity, d.loc.line, d.loc.col) for d in diags] == [("E401", "error", 3, col)]
    verb = "exceeds" if figure == "depth" else "exceed"
    ratio = f"{value / (value - 1):.2f}x"
    assert diags[0].message == f"{figure} {value:,} {verb} the budget {value - 1} by 1 ({ratio})"
    assert diags[0].evidence == {"figure": figure, "value": value, "budget": value - 1}
    # at the value itself: met, an info with a zero margin
    line = f"budget: {{{figure}: {value}}}" if yaml else f"budget({figure} <= {value})"
    diags = _budget_diags(_write(tmp_path, line, yaml))
    assert [(d.code, d.severity, d.loc.line, d.loc.col) for d in diags] == [("I406", "info", 3, col)]
    assert diags[0].message == f"{figure} {value:,} within the budget {value}, 100% of it (margin 0)"


def test_measure_matches_summary_and_metrics(tmp_path: Path, figures: dict) -> None:
    res = analyze(_write(tmp_path, ""))
    assert measure(res.graph) == figures
    # the hand-checkable ones: three weight layers in a row; 8*(3*9)+8 + 16*(8*9)+16 + 16*10+10 params
    assert figures["depth"] == 3
    assert figures["params"] == 224 + 1168 + 170


def test_all_four_in_one_statement_and_split_statements(tmp_path: Path, figures: dict) -> None:
    line = "budget(params <= 1K, macs <= 2.5M,\n       depth <= 2, activations <= 20K)"
    diags = _budget_diags(_write(tmp_path, line))
    assert [(d.code, d.loc.line, d.loc.col) for d in diags] == [
        ("E401", 3, 8), ("I406", 3, 22), ("E401", 4, 8), ("E401", 4, 20)]
    assert diags[0].message.startswith(f"params {figures['params']:,} exceed the budget 1K by "
                                       f"{figures['params'] - 1000:,} (")
    # two statements add up
    split = _budget_diags(_write(tmp_path, "budget(params <= 1K)\nbudget(depth <= 2)"))
    assert [(d.code, d.loc.line, d.loc.col) for d in split] == [("E401", 3, 8), ("E401", 4, 8)]


def test_hints_name_where_the_figure_comes_from(tmp_path: Path) -> None:
    path = _write(tmp_path, "budget(params <= 1K, depth <= 1)")
    params, depth = _budget_diags(path)
    # conv2 holds 16 * (8 * 9) + 16 = 1,168 of 1,562 parameters
    assert params.hint == "the largest share is conv2: 1,168 (75%)"
    assert depth.hint == "the longest path has 3 weight layers (conv2d, linear): conv1 1, conv2 1, head 1"


def test_resnet50_over_budget_message_and_hint() -> None:
    res = analyze(ROOT / "specs" / "resnet50.arch", budget=parse_cli_budgets(["params<=5.5M"]))
    (d,) = [d for d in res.diags.sorted() if d.code == "E401"]
    params = res.graph.total_params()
    excess = params - 5_500_000
    assert d.message == f"params {params:,} exceed the budget 5.5M by {excess:,} ({params / 5.5e6:.2f}x)"
    assert d.loc == Loc("<command line>", 1, 1)
    assert d.hint.startswith("the largest share is layer4: ")


def test_hint_looks_inside_a_scope_that_holds_most_of_it() -> None:
    # VGG-16's classifier holds most parameters, and its first linear layer most of those
    res = analyze(ROOT / "specs" / "vgg16.arch", budget=parse_cli_budgets(["params<=1M"]))
    (d,) = [d for d in res.diags.sorted() if d.code == "E401"]
    graph, total = res.graph, res.graph.total_params()
    classifier = sum(graph.node(n)["costs"].params for n in graph.g.nodes
                     if graph.node(n)["path"].startswith("classifier."))
    fc = graph.node(graph.by_path("classifier.0"))["costs"].params
    assert classifier >= 0.8 * total
    assert d.hint == (f"the largest share is classifier: {classifier:,} ({classifier / total:.0%}); "
                      f"within it, classifier.0: {fc:,} ({fc / total:.0%})")


# ---------------------------------------------------------------------------------------- depth


@pytest.mark.parametrize(("spec", "layers"), [
    ("resnet18", 18), ("resnet50", 50), ("vgg16", 16),
    ("googlenet", 22),  # Szegedy et al. 2014: "22 layers deep when counting only layers with parameters"
    ("densenet121", 121),
])
def test_depth_counts_as_the_model_names_do(spec: str, layers: int) -> None:
    res = analyze(ROOT / "specs" / f"{spec}.arch")
    assert measure(res.graph)["depth"] == layers
    path = longest_path(res.graph)
    assert len(path) == layers
    assert {res.graph.node(n)["op"] for n in path} <= {"conv2d", "linear"}


def test_depth_ignores_aux_heads_and_residual_shortcuts() -> None:
    # googlenet with its aux heads on: they are not on the path to the main output
    res = analyze(ROOT / "specs" / "googlenet.arch", {"aux_logits": True})
    assert measure(res.graph)["depth"] == 22
    # resnet50's projection shortcuts (one conv) run beside three convs: the path goes through the body
    graph = analyze(ROOT / "specs" / "resnet50.arch").graph
    paths = [graph.node(n)["path"] for n in longest_path(graph)]
    assert paths[0] == "conv1" and paths[-1] == "fc"
    assert not any("downsample" in p for p in paths)


# ---------------------------------------------------------------------------------------- units and bounds


@pytest.mark.parametrize(("bound", "value", "unit"), [
    ("5.5M", 5.5, "M"), ("600M", 600, "M"), ("20K", 20, "K"), ("1G", 1, "G"), (".5K", 0.5, "K"), ("60", 60, ""),
])
def test_units_are_powers_of_1000(bound: str, value: float, unit: str) -> None:
    spec = parse_source(f"budget(params <= {bound})\n", "u.arch")
    (item,) = spec.budget
    assert (item.figure, item.value, item.unit) == ("params", A.Num(value), unit)
    (cli,) = parse_cli_budgets([f"params<={bound}"])
    assert (cli.value, cli.unit) == (A.Num(value), unit)


def test_bound_values_in_full(tmp_path: Path, figures: dict) -> None:
    res = analyze(_write(tmp_path, "budget(params <= 5.5M, macs <= 2G, depth <= 60, activations <= 0.02M)"))
    assert [(b.figure, b.limit) for b in res.budget] == [
        ("params", 5_500_000), ("macs", 2_000_000_000), ("depth", 60), ("activations", 20_000)]
    assert all(isinstance(b.limit, int) for b in res.budget)
    # the decimal as written, scaled: 8.2M is 8,200,000 although 8.2 * 10**6 is not, in binary floating point
    assert 8.2 * 10**6 != 8_200_000
    res = analyze(_write(tmp_path, "budget(params <= 8.2M, depth <= 0.0035K)"))
    assert [(b.figure, b.limit) for b in res.budget] == [("params", 8_200_000), ("depth", 3.5)]


def test_bound_may_be_an_expression_of_network_parameters(tmp_path: Path, figures: dict) -> None:
    path = _write(tmp_path, "budget(params <= 200 * width)")  # 1,600 at width 8
    (met,) = _budget_diags(path)
    assert met.code == "I406" and "within the budget 200 * width (= 1,600)" in met.message
    (over,) = _budget_diags(path, overrides={"width": 16})
    # at width 16 the bound is 3,200 and the network holds more
    assert over.code == "E401" and "the budget 200 * width (= 3,200)" in over.message


# ---------------------------------------------------------------------------------------- bad clauses


@pytest.mark.parametrize(("budget", "yaml", "expect", "text"), [
    ("budget(parms <= 5M)", False, ("E402", 3, 8), "did you mean 'params'?"),
    ("budget: {parms: 5M}", True, ("E402", 3, 10), "did you mean 'params'?"),
    ("budget(depth >= 10)", False, ("E402", 3, 14), "write 'depth <= ...'"),
    ("budget(params < 5M)", False, ("E402", 3, 15), "write 'params <= ...'"),
    ("budget(params <= 5Mi)", False, ("E403", 3, 19), "units are K (10**3), M (10**6) and G (10**9)"),
    ("budget(params <= 5k)", False, ("E403", 3, 19), "units are K"),
    ("budget: {params: 5Mi}", True, ("E403", 3, 19), "units are K"),
    ("budget: {params: '5Mi'}", True, ("E403", 3, 20), "units are K"),
    ("budget(depth <= -1)", False, ("E403", 3, 17), "0 or more"),
    ("budget: {depth: -1}", True, ("E403", 3, 17), "0 or more"),
    ("budget(macs <= \"1G\")", False, ("E403", 3, 16), "write a count"),
    ("budget(macs <= true)", False, ("E403", 3, 16), "write a count"),
    ("budget(params <= 5M, params <= 6M)", False, ("E404", 3, 22), "first given at "),
    ("budget(params <= 5M)\nbudget(params <= 6M)", False, ("E404", 4, 8), "first given at "),
    ("budget(depth <= nope)", False, ("E105", 3, 17), ""),
    # a negative number with a unit: E403 at the sign, in both front ends
    ("budget(params <= -5M)", False, ("E403", 3, 18), "0 or more"),
    ("budget(params <= - 1.5K)", False, ("E403", 3, 18), "0 or more"),
    ("budget: {params: -5M}", True, ("E403", 3, 18), "0 or more"),
    ("budget: {params: '-5M'}", True, ("E403", 3, 19), "0 or more"),
    # a number with a unit is a whole bound, not an expression atom: E403 at the number
    ("budget(params <= width * 1M)", False, ("E403", 3, 26), "1000000 for 1M"),
    ("budget(params <= width*1.5K)", False, ("E403", 3, 24), "1500 for 1.5K"),
    ("budget(params <= 5M + 1)", False, ("E403", 3, 18), "5000000 for 5M"),
    ("budget(params <= (5M))", False, ("E403", 3, 19), "5000000 for 5M"),
    ("budget(depth <= 60, params <= 2 - 5M)", False, ("E403", 3, 35), "5000000 for 5M"),
    ("budget(params <= 2 * 5Mi)", False, ("E403", 3, 23), "units are K"),
    ("budget: {params: 'width * 1M'}", True, ("E403", 3, 27), "1000000 for 1M"),
])
def test_bad_clauses_are_located(tmp_path: Path, budget: str, yaml: bool, expect: tuple, text: str) -> None:
    path = _write(tmp_path, budget, yaml)
    diags = [d for d in analyze(path).diags.sorted() if d.is_error]
    assert [(d.code, d.loc.line, d.loc.col) for d in diags] == [expect], [str(d.loc) + d.message for d in diags]
    assert text in diags[0].hint
    assert diags[0].loc.file == str(path)


@pytest.mark.parametrize("source", ["let x = [3M]\n", "conv2d(8, 3M)\n", "rules(grid = [-5M])\n"])
def test_a_number_with_a_unit_outside_a_budget_stays_a_syntax_error(source: str) -> None:
    with pytest.raises(DiagnosticError) as exc:
        parse_source(source, "r.arch")
    assert exc.value.diagnostic.code == "E001" and "unexpected 'M'" in exc.value.diagnostic.message


def test_budget_is_a_reserved_word(tmp_path: Path) -> None:
    with pytest.raises(DiagnosticError) as exc:
        parse_source("let budget = 3\n", "r.arch")
    assert exc.value.diagnostic.code == "E001"
    # as a label it takes the backtick escape, like every keyword
    spec = parse_source("`budget`: relu\n", "r.arch")
    assert spec.body[0].elements[0].label == "budget"


def test_a_budget_with_errors_elsewhere_is_not_measured(tmp_path: Path) -> None:
    path = tmp_path / "bad.arch"
    path.write_text("network n\ninput 3x8x8\nbudget(params <= 1)\nconv2d(4, 3) -> conv2d(4, 9)\n")
    codes = [d.code for d in analyze(path).diags.sorted()]
    assert codes == ["E204"]  # the kernel error; no budget verdict on a half-analyzed network


# ---------------------------------------------------------------------------------------- command line


def test_cli_budget_adds_and_replaces(tmp_path: Path, figures: dict) -> None:
    path = _write(tmp_path, "budget(params <= 1K, depth <= 2)")
    # --budget replaces the spec's params bound and adds a macs bound; depth <= 2 stays, and fails
    rc, _, err = run("check", str(path), "--budget", "params<=5K", "--budget", "macs<=1K", "--show", "info")
    assert rc == 1
    assert f"<command line>:1:1: info[I406]: params {figures['params']:,} within the budget 5K" in err
    assert f"{path}:3:8" not in err  # the spec's params bound is replaced, not checked
    assert f"<command line>:1:1: error[E401]: macs {figures['macs']:,} exceed the budget 1K by " in err
    assert f"{path}:3:22: error[E401]: depth 3 exceeds the budget 2 by 1 (1.50x)" in err
    rc, _, err = run("check", str(path), "--budget", "params<=5K", "--budget", "depth<=3")
    assert rc == 0, err


@pytest.mark.parametrize(("arg", "expect", "text"), [
    ("prams<=5M", ("E402", 1), "unknown budget figure 'prams'"),
    ("params<5M", ("E402", 7), "not one"),
    ("params", ("E402", 1), "bad budget 'params'"),
    ("params<=5Mi", ("E403", 10), "unknown unit 'Mi'"),
    ("params<=-5", ("E403", 9), "cannot be negative"),
    ("params<=-5M", ("E403", 9), "cannot be negative, got -5M"),
    ("params<=width*1M", ("E403", 15), "is a whole bound, not part of an expression"),
    ("params<=", ("E001", 9), "syntax error"),
])
def test_cli_budget_errors_are_located_on_the_command_line(tmp_path: Path, arg: str, expect: tuple,
                                                           text: str) -> None:
    path = _write(tmp_path, "")
    rc, _, err = run("check", str(path), "--budget", arg)
    assert rc == 1
    head = err.splitlines()[0]
    assert head.startswith(f"<command line>:1:{expect[1]}: error[{expect[0]}]: "), head
    assert text in err
    assert "Traceback" not in err


def test_cli_budget_columns_count_blanks() -> None:
    (item,) = parse_cli_budgets(["  depth <= 5M"])
    assert (item.figure, item.value, item.unit) == ("depth", A.Num(5), "M")
    assert item.loc == Loc("<command line>", 1, 3) and item.value.loc == Loc("<command line>", 1, 12)


def test_cli_budget_twice_is_e404(tmp_path: Path) -> None:
    rc, _, err = run("check", str(_write(tmp_path, "")), "--budget", "depth<=3", "--budget", "depth<=4")
    assert rc == 1
    assert "<command line>:1:1: error[E404]: budget for depth given twice" in err
    assert "first given earlier on the command line" in err


def test_summary_prints_its_table_over_budget_and_exits_1(tmp_path: Path) -> None:
    rc, out, err = run("summary", str(_write(tmp_path, "budget(params <= 1K)")))
    assert rc == 1
    assert "conv2" in out and "params: 1,562" in out
    assert "error[E401]" in err


def test_rules_still_run_when_over_budget(tmp_path: Path) -> None:
    rc, _, err = run("check", str(ROOT / "specs" / "resnet18.arch"), "--budget", "depth<=10", "--show", "info")
    assert rc == 1
    assert "error[E401]: depth 18 exceeds the budget 10 by 8 (1.80x)" in err
    assert "info[R602]" in err  # the design rules' findings are still listed


@pytest.mark.parametrize("command", ["summary", "render"])
def test_other_analyzing_commands_take_budget(tmp_path: Path, command: str) -> None:
    argv = [command, str(_write(tmp_path, "")), "--budget", "depth<=1"]
    if command == "render":
        argv += ["-o", str(tmp_path / "net.dot")]
    rc, _, err = run(*argv)
    assert rc == 1 and "error[E401]: depth 3 exceeds the budget 1 by 2 (3.00x)" in err


# ---------------------------------------------------------------------------------------- unmeasurable


def test_unknown_shape_is_w405(tmp_path: Path) -> None:
    res = analyze(_write(tmp_path, ""))
    graph = res.graph
    fc = graph.by_path("head.fc")
    graph.node(fc)["shape"] = None  # as after a layer whose shape could not be inferred
    bounds = [Bound("params", 10, "10", Loc("x", 1, 1)), Bound("depth", 10, "10", Loc("x", 2, 1))]
    diags = check_budgets(graph, bounds)
    assert [(d.code, d.severity) for d in diags] == [("W405", "warning"), ("I406", "info")]
    assert diags[0].message == "the params budget cannot be checked: the input size is not known"
    assert "--input 3x224x224" in diags[0].hint


def _as_symbolic(graph, sympy) -> None:
    """Annotate ``graph`` as a symbolic analysis does: input (3, "H", "W"), every node with its shape
    and costs as expressions (here: each spatial size n as n * H / 32, the MACs scaled by H * W / 1024)."""
    from archdsl.ops import Costs

    h, w = sympy.Symbol("H", positive=True, integer=True), sympy.Symbol("W", positive=True, integer=True)
    graph.input_shape = (3, "H", "W")
    for _, d in graph.g.nodes(data=True):
        shape = d["shape"]
        d["sym_shape"] = (shape[0], shape[1] * h / 32, shape[2] * w / 32) if len(shape) == 3 else shape
        d["sym_costs"] = Costs(d["costs"].params, d["costs"].macs * h * w / 1024)


def test_symbolic_figure_is_w405(tmp_path: Path) -> None:
    sympy = pytest.importorskip("sympy")
    res = analyze(_write(tmp_path, ""))
    params = res.graph.total_params()
    _as_symbolic(res.graph, sympy)
    m = measure(res.graph)
    # parameters and depth do not depend on the size; MACs and activations do
    assert m == {"params": params, "macs": None, "depth": 3, "activations": None}
    bounds = [Bound(f, 10, "10", Loc("x", i + 1, 1)) for i, f in enumerate(("params", "macs", "depth", "activations"))]
    diags = check_budgets(res.graph, bounds)
    assert [d.code for d in diags] == ["E401", "W405", "I406", "W405"]
    assert diags[1].message == "the macs budget cannot be checked: it depends on the symbolic input size"
    assert diags[1].hint == "pass a concrete input size, e.g. --input 3x224x224"


def test_symbolic_input_from_the_command_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "budget(macs <= 600M, depth <= 60)")
    rc, _, err = run("check", str(path), "--input", "3xHxW")
    if rc == 2 and "expected CxHxW" in err:
        pytest.skip("--input 3xHxW (symbolic sizes) is not available in this build")
    assert f"{path}:3:8: warning[W405]: the macs budget cannot be checked: it depends on the symbolic input size" \
        in err
    assert "Traceback" not in err


def test_check_budgets_without_bounds_is_empty(tmp_path: Path) -> None:
    assert check_budgets(analyze(_write(tmp_path, "")).graph, []) == []


def test_verdicts_leave_the_analysis_whole(tmp_path: Path, figures: dict) -> None:
    # what sweep and summary rely on: over budget, the graph is complete and every other finding absent
    res = analyze(_write(tmp_path, "budget(params <= 1, macs <= 1G)"))
    assert [d.code for d in res.diags.sorted()] == ["E401", "I406"]
    assert {d.code for d in res.diags.sorted()} <= VERDICT_CODES
    assert measure(res.graph) == figures
    assert [(b.figure, b.limit) for b in res.budget] == [("params", 1), ("macs", 10**9)]


# ---------------------------------------------------------------------------------------- conversion


def test_convert_round_trip_keeps_the_budget_as_written(tmp_path: Path) -> None:
    line = "budget(params <= 5.5M, macs <= 600M, depth <= 60, activations <= 200 * width)"
    src = _write(tmp_path, line)
    rc, _, err = run("convert", str(src), "-o", str(tmp_path / "net.yaml"))
    assert rc == 0, err
    yaml_text = (tmp_path / "net.yaml").read_text()
    assert "budget:\n  params: 5.5M\n  macs: 600M\n  depth: 60\n  activations: 200 * width\n" in yaml_text
    rc, _, err = run("convert", str(tmp_path / "net.yaml"), "-o", str(tmp_path / "back.arch"))
    assert rc == 0, err
    back = (tmp_path / "back.arch").read_text()
    assert line in back.splitlines()
    original = parse_source(src.read_text(), "a.arch")
    assert parse_source(back, "b.arch") == original
    assert parse_source(yaml_text, "c.yaml", yaml=True) == original
    # and both analyze the same
    assert [(b.figure, b.limit) for b in analyze(src).budget] == \
        [(b.figure, b.limit) for b in analyze(tmp_path / "net.yaml").budget]


@pytest.mark.parametrize("line", [
    "budget(params <= 5.5M)",
    "budget(depth <= 60, params <= 2.0G)",
    "budget(params <= 5500000.0)",
    "budget(macs <= -3)",
    "budget(activations <= true)",
    "budget(params <= 1K, params <= 2K)",   # an error when analyzed, but it converts both ways
    "budget()",
])
def test_printers_round_trip(line: str) -> None:
    spec = parse_source(TEXT.replace("BUDGET", line), "p.arch")
    text, yaml = to_text(spec), to_yaml(spec)
    assert parse_source(text, "q.arch") == spec
    assert parse_source(yaml, "q.yaml", yaml=True) == spec
    assert to_text(parse_source(yaml, "q.yaml", yaml=True)) == text


def test_yaml_budget_may_be_a_list_of_mappings(tmp_path: Path) -> None:
    spec = parse_source(YAML.replace("BUDGET", "budget:\n- params: 1K\n- params: 2K"), "l.yaml", yaml=True)
    assert [(b.figure, b.value, b.unit) for b in spec.budget] == [("params", A.Num(1), "K"), ("params", A.Num(2), "K")]


def test_yaml_budget_key_must_be_a_name() -> None:
    with pytest.raises(DiagnosticError) as exc:
        parse_source(YAML.replace("BUDGET", "budget: {'par ams': 5}"), "k.yaml", yaml=True)
    assert (exc.value.diagnostic.code, exc.value.diagnostic.loc.line, exc.value.diagnostic.loc.col) == ("E001", 3, 10)
