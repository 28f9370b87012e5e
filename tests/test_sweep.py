"""``archdsl sweep`` (archdsl/sweep.py, archdsl/sweep_cli.py, archdsl/backends/sweep_plot.py).

Every figure a sweep prints is checked against ``archdsl summary --format json`` run on the same
point; the Pareto marking against a constructed case; the orders, formats, plot and errors directly.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cli_support import run

from archdsl import sweep
from archdsl.backends import sweep_plot
from archdsl.diagnostics import DiagnosticError

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
MOBILENET = str(SPECS / "mobilenet_v2.arch")
SVG = "{http://www.w3.org/2000/svg}"

#: A network exposing lib/resnet.arch's widths (resnet50 and wide_resnet50_2 fix them).
RESNET_WIDTHS = """\
network resnet_widths(depth = 50, groups = 1, width_per_group = 64, num_classes = 1000)
input 3x224x224
use "lib/resnet.arch"
inline ResNet(depth, num_classes, groups = groups, width_per_group = width_per_group)
"""


def _summary(spec: str, *params: str, extra: tuple[str, ...] = ()) -> dict:
    rc, out, err = run("summary", spec, "--format", "json", *(a for p in params for a in ("-p", p)), *extra)
    assert rc == 0, err
    return json.loads(out)


def _sweep_json(*argv: str) -> tuple[int, dict, str]:
    rc, out, err = run("sweep", *argv, "--format", "json")
    return rc, json.loads(out), err


def _assert_matches_summary(point: dict, summary: dict) -> None:
    assert point["ok"] and point["errors"] == []
    assert point["params"] == summary["params"]
    assert point["macs"] == summary["macs"]
    assert point["activations"] == sum(n["activations"] for n in summary["nodes"])


@pytest.fixture
def resnet_widths(tmp_path: Path) -> Path:
    spec = tmp_path / "resnet_widths.arch"
    spec.write_text(RESNET_WIDTHS, encoding="utf-8")
    return spec


# ---------------------------------------------------------------------------------------- acceptance


def test_mobilenet_width_multiplier_equals_summary() -> None:
    widths = ["0.35", "0.5", "0.75", "1.0", "1.4"]
    rc, doc, err = _sweep_json(MOBILENET, "-p", "width_mult=" + ",".join(widths), "-j", "1")
    assert rc == 0, err
    assert [p["parameters"] for p in doc["points"]] == [{"width_mult": float(w)} for w in widths]
    for point, w in zip(doc["points"], widths):
        _assert_matches_summary(point, _summary(MOBILENET, f"width_mult={w}"))
        assert point["depth"] == 53  # 52 convolutions and the classifier, at every width
    params = [p["params"] for p in doc["points"]]
    assert params == sorted(params) and len(set(params)) == len(params)
    # wider costs more of both: only the narrowest point is on the front
    assert [p["pareto"] for p in doc["points"]] == [True, False, False, False, False]


def test_resnet_width_per_group_equals_summary(resnet_widths: Path) -> None:
    search = ("--search-path", str(SPECS))
    rc, doc, err = _sweep_json(str(resnet_widths), "-p", "width_per_group=32,64,128", *search)
    assert rc == 0, err
    for point, w in zip(doc["points"], (32, 64, 128)):
        _assert_matches_summary(point, _summary(str(resnet_widths), f"width_per_group={w}", extra=search))
        assert point["depth"] == 50
    # width 64 is resnet50, 128 is wide_resnet50_2: the zoo specs held exact against torchvision
    _assert_matches_summary(doc["points"][1], _summary(str(SPECS / "resnet50.arch")))
    _assert_matches_summary(doc["points"][2], _summary(str(SPECS / "wide_resnet50_2.arch")))


def test_resnet_zip_gives_resnext_and_wide(resnet_widths: Path) -> None:
    rc, doc, err = _sweep_json(str(resnet_widths), "--zip", "-p", "groups=32,1", "-p", "width_per_group=4,128",
                               "--search-path", str(SPECS))
    assert rc == 0, err
    assert [p["parameters"] for p in doc["points"]] == [{"groups": 32, "width_per_group": 4},
                                                        {"groups": 1, "width_per_group": 128}]
    _assert_matches_summary(doc["points"][0], _summary(str(SPECS / "resnext50_32x4d.arch")))
    _assert_matches_summary(doc["points"][1], _summary(str(SPECS / "wide_resnet50_2.arch")))


def test_resnet_depths_swept(resnet_widths: Path) -> None:
    rc, doc, err = _sweep_json(str(resnet_widths), "-p", "depth=18,34,50", "--search-path", str(SPECS))
    assert rc == 0, err
    assert [p["parameters"]["depth"] for p in doc["points"]] == [18, 34, 50]
    assert [p["depth"] for p in doc["points"]] == [18, 34, 50]
    for point, name in zip(doc["points"], ("resnet18", "resnet34", "resnet50")):
        _assert_matches_summary(point, _summary(str(SPECS / f"{name}.arch")))


def test_parameter_named_like_a_figure_gets_its_own_column(resnet_widths: Path) -> None:
    rc, out, err = run("sweep", str(resnet_widths), "-p", "depth=18,34", "--search-path", str(SPECS), "--format",
                       "csv")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["depth (-p)"], r["depth"]) for r in rows] == [("18", "18"), ("34", "34")]


# ---------------------------------------------------------------------------------------- points


def test_split_values_keeps_lists_and_strings_whole() -> None:
    assert [p for p, _ in sweep.split_values('[1,2],[3, 4]')] == ["[1,2]", "[3, 4]"]
    assert [p for p, _ in sweep.split_values('"a,b","c\\",d",max(1,2)')] == ['"a,b"', '"c\\",d"', "max(1,2)"]
    assert sweep.split_values("1, 2") == [("1", 0), (" 2", 2)]


def test_parse_axis_values() -> None:
    axis = sweep.parse_axis('strides=[1,2],[2, 2],"x,y",2*3,true')
    assert axis.name == "strides"
    assert axis.values == ((1, 2), (2, 2), "x,y", 6, True)


@pytest.mark.parametrize(("pair", "col"), [("w=1,,2", 5), ("w=1,(2", 7), ("w=1,2 +", 8)])
def test_bad_value_is_located_in_the_option(pair: str, col: int) -> None:
    with pytest.raises(DiagnosticError) as info:
        sweep.parse_axis(pair)
    assert info.value.diagnostic.loc.col == col
    rc, out, err = run("sweep", MOBILENET, "-p", pair)
    assert rc == 1 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"<command line>:1:{col}: error[")
    assert lines[1].strip() == pair and lines[2].index("^") - lines[1].index(pair[0]) == col - 1


def test_cartesian_product_first_parameter_slowest() -> None:
    axes = [sweep.Axis("a", (1, 2)), sweep.Axis("b", ("x", "y", "z"))]
    pts = sweep.make_points(axes)
    assert [p.index for p in pts] == [1, 2, 3, 4, 5, 6]
    assert [tuple(v for _, v in p.values) for p in pts] == [(1, "x"), (1, "y"), (1, "z"), (2, "x"), (2, "y"),
                                                           (2, "z")]
    assert pts[0].describe() == 'a=1 b="x"'


def test_zip_pairs_positionally_and_needs_equal_lengths() -> None:
    axes = [sweep.Axis("a", (1, 2)), sweep.Axis("b", (3, 4))]
    assert [tuple(v for _, v in p.values) for p in sweep.make_points(axes, zipped=True)] == [(1, 3), (2, 4)]
    with pytest.raises(sweep.SweepUsageError, match="a has 2, c has 3"):
        sweep.make_points([axes[0], sweep.Axis("c", (1, 2, 3))], zipped=True)
    rc, out, err = run("sweep", MOBILENET, "--zip", "-p", "width_mult=0.5,1.0", "-p", "num_classes=10,100,1000")
    assert rc == 2 and out == "" and "--zip needs the same number of values" in err


def test_parameter_given_twice_is_a_usage_error() -> None:
    rc, out, err = run("sweep", MOBILENET, "-p", "width_mult=0.5", "-p", "width_mult=1.0")
    assert rc == 2 and "given twice" in err


def test_list_valued_parameter(tmp_path: Path) -> None:
    spec = tmp_path / "lists.arch"
    spec.write_text("network lists(widths = [4, 8])\ninput 3x16x16\n"
                    "repeat(len(widths)) as i { conv2d(widths[i], 3, padding = 1) -> relu }\n"
                    "global_avgpool -> flatten -> linear(10)\n", encoding="utf-8")
    rc, doc, err = _sweep_json(str(spec), "-p", "widths=[4,8],[8,8,8],[2]")
    assert rc == 0, err
    assert [p["parameters"]["widths"] for p in doc["points"]] == [[4, 8], [8, 8, 8], [2]]
    assert [p["depth"] for p in doc["points"]] == [3, 4, 2]
    for point, w in zip(doc["points"], ("[4,8]", "[8,8,8]", "[2]")):
        _assert_matches_summary(point, _summary(str(spec), f"widths={w}"))


# ---------------------------------------------------------------------------------------- pareto


def _result(i: int, params: int | None, macs: int | None, failed: bool = False) -> sweep.Result:
    point = sweep.Point(i, (("w", i),))
    if failed:
        from archdsl.diagnostics import Diagnostic

        return sweep.Result(point, errors=(Diagnostic("E106", "bad"),))
    return sweep.Result(point, params, macs, 0, 1)


def test_pareto_front_on_a_constructed_case() -> None:
    results = [
        _result(1, 10, 100),   # fewest params
        _result(2, 20, 50),    # fewest MACs
        _result(3, 15, 100),   # dominated by 1 (more params, same MACs)
        _result(4, 20, 60),    # dominated by 2 (same params, more MACs)
        _result(5, 12, 80),    # between 1 and 2: on the front
        _result(6, 12, 80),    # the same figures as 5: neither dominates the other
        _result(7, 30, 200),   # dominated by all the front
        _result(8, 0, 0, failed=True),  # a failed point is on no front, whatever it holds
    ]
    assert sweep.pareto_front(results) == {1, 2, 5, 6}
    assert sweep.pareto_front([_result(1, 5, 5)]) == {1}
    assert sweep.pareto_front([]) == set()


# ---------------------------------------------------------------------------------------- formats


def test_text_table() -> None:
    rc, out, err = run("sweep", MOBILENET, "-p", "width_mult=0.5,1.0", "-p", "num_classes=10,1000")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["#", "width_mult", "num_classes", "params", "macs", "activations", "depth",
                                "pareto", "status"]
    assert len(lines) == 2 + 4 and all(line.rstrip().endswith("ok") for line in lines[2:])
    first = _summary(MOBILENET, "width_mult=0.5", "num_classes=10")
    assert f"{first['params']:,}" in lines[2] and "yes" in lines[2]
    assert "4 points, 0 failed; Pareto front (params, MACs): point 1" in err


def test_csv_format() -> None:
    rc, out, err = run("sweep", MOBILENET, "-p", "width_mult=0.5,1.0", "--format", "csv")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["width_mult"] for r in rows] == ["0.5", "1.0"]
    for row, w in zip(rows, ("0.5", "1.0")):
        s = _summary(MOBILENET, f"width_mult={w}")
        assert (int(row["params"]), int(row["macs"])) == (s["params"], s["macs"])
        assert row["status"] == "ok" and row["depth"] == "53"
    assert [r["pareto"] for r in rows] == ["yes", ""]


def test_json_format_document() -> None:
    rc, doc, _ = _sweep_json(MOBILENET, "-p", "width_mult=0.5")
    assert rc == 0
    assert doc["spec"] == MOBILENET and doc["parameters"] == ["width_mult"]
    assert doc["objectives"] == ["params", "macs"]
    assert set(doc["points"][0]) == {"index", "parameters", "ok", "params", "macs", "activations", "depth",
                                     "pareto", "errors"}


def test_markdown_format() -> None:
    rc, out, _ = run("sweep", MOBILENET, "-p", "width_mult=0.5,1.0", "--format", "md")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith("| # | width_mult | params |") and lines[1].startswith("| ---: | --- | ---: |")
    assert len(lines) == 4 and all(line.startswith("| ") and line.endswith(" |") for line in lines)


def test_no_parameters_is_one_point_with_the_defaults() -> None:
    rc, doc, _ = _sweep_json(MOBILENET)
    assert rc == 0 and len(doc["points"]) == 1 and doc["points"][0]["parameters"] == {}
    _assert_matches_summary(doc["points"][0], _summary(MOBILENET))


def test_a_symbolic_input_gives_the_figures_as_expressions(tmp_path: Path) -> None:
    """With ``input 3xHxW`` (or ``--input 3xHxW``) MACs, activations and a free classifier's params
    depend on the size: each point gives the expressions summary --format json gives, evaluated equal
    to the concrete analysis, not the counts at the one size the concrete passes ran at."""
    import sympy

    from archdsl.pipeline import analyze

    spec = tmp_path / "free.arch"
    spec.write_text("network free(c = 8)\ninput 3xHxW\nconv2d(c, 3, stride = 2) -> relu -> flatten -> linear(10)\n")
    rc, doc, _ = _sweep_json(str(spec), "-p", "c=4,8")
    assert rc == 0
    H, W = sympy.Symbol("H", integer=True, positive=True), sympy.Symbol("W", integer=True, positive=True)
    for point, c in zip(doc["points"], (4, 8)):
        summary = _summary(str(spec), f"c={c}")
        assert (point["params"], point["macs"]) == (summary["params"], summary["macs"])
        assert isinstance(point["params"], str) and not point["pareto"]
        for h, w in ((3, 3), (31, 20)):
            g = analyze(spec, {"c": c}, (3, h, w)).graph
            for key, want in (("params", g.total_params()), ("macs", g.eval_macs()),
                              ("activations", sum(n["activations"] for n in _summary(
                                  str(spec), f"c={c}", extra=("--input", f"3x{h}x{w}"))["nodes"]))):
                assert int(sympy.sympify(point[key], locals={"H": H, "W": W}).subs({H: h, W: w})) == want
    rc, doc, _ = _sweep_json(MOBILENET, "--input", "3xHxW", "-p", "width_mult=0.5")
    assert rc == 0 and doc["points"][0]["params"] == 1_968_680 and "floor(H" in doc["points"][0]["macs"]


def test_parallel_output_equals_serial() -> None:
    argv = (MOBILENET, "-p", "width_mult=0.25,0.5,0.75,1.0", "-p", "num_classes=10,100", "--format", "json")
    serial, parallel = run("sweep", *argv, "-j", "1"), run("sweep", *argv, "-j", "2")
    assert serial[0] == parallel[0] == 0
    assert serial[1] == parallel[1]
    assert "2 workers" in parallel[2] and "workers" not in serial[2]


_ANALYZE = sweep.analyze_point


def _dies_at_point_3(task: sweep.Task) -> sweep.Result:
    if task.point.index == 3:
        os._exit(9)  # as the out-of-memory killer would end the worker
    return _ANALYZE(task)


def test_a_worker_that_dies_fails_its_points_not_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "analyze_point", _dies_at_point_3)
    rc, doc, err = _sweep_json(MOBILENET, "-p", "width_mult=0.25,0.5,0.75,1.0", "-j", "2")
    assert rc == 1 and "Traceback" not in err
    assert "error[E150]: a worker process died before this point was analyzed" in err and "-j 1" in err
    assert doc["points"][0]["ok"]  # the first point runs in this process, before the workers
    assert not doc["points"][2]["ok"] and doc["points"][2]["errors"][0]["code"] == "E150"


def test_workers_start_only_when_the_rest_looks_long_enough() -> None:
    points = sweep.make_points([sweep.Axis("width_mult", (0.25, 0.5, 0.75, 1.0, 1.4))])
    never = sweep.run(MOBILENET, points, jobs=2, min_parallel_seconds=float("inf"))
    always = sweep.run(MOBILENET, points, jobs=2, min_parallel_seconds=0.0)
    forced = sweep.run(MOBILENET, points, jobs=2)
    assert (never.workers, always.workers, forced.workers) == (0, 2, 2)
    assert never.results == always.results == forced.results
    assert [r.point.index for r in never.results] == [1, 2, 3, 4, 5]
    assert sweep.run(MOBILENET, points[:2], jobs=2).workers == 0  # one point left: no pool for it
    assert sweep.cpu_count() >= 1


# ---------------------------------------------------------------------------------------- errors


def test_failed_points_are_marked_and_each_error_listed_once() -> None:
    rc, out, err = run("sweep", MOBILENET, "-p", "width_mult=0.5,1.0,2.0", "-p", "num_classes=10,0")
    assert rc == 1
    rows = out.splitlines()[2:]
    assert [r.split()[-1] for r in rows] == ["ok", "failed"] * 3
    assert err.count("error[E106]") == 1  # one error, met in three points
    assert "= note: in points 2, 4, 6 of 6 (width_mult=0.5 num_classes=0; width_mult=1.0 num_classes=0; " \
           "width_mult=2.0 num_classes=0)" in err
    assert "linear(num_classes)" in err and "^" in err  # located, with the source line
    assert "6 points, 3 failed" in err


def test_error_in_every_point() -> None:
    rc, doc, err = _sweep_json(MOBILENET, "-p", "widht_mult=0.5,1.0")
    assert rc == 1
    assert err.count("error[E113]") == 1 and "in all 2 points" in err and "did you mean 'width_mult'" in err
    assert [p["ok"] for p in doc["points"]] == [False, False]
    assert doc["points"][0]["errors"][0]["code"] == "E113"
    assert doc["points"][0]["params"] is None and not doc["points"][0]["pareto"]


def test_missing_spec() -> None:
    rc, out, err = run("sweep", str(SPECS / "no_such.arch"), "-p", "x=1")
    assert rc == 1 and "error[E005]" in err and "in point 1 of 1 (x=1)" in err


def test_library_is_not_a_network() -> None:
    rc, _, err = run("sweep", str(SPECS / "lib" / "resnet.arch"))
    assert rc == 1 and "error[E114]" in err


# ---------------------------------------------------------------------------------------- plot


def test_svg_plot_is_well_formed_and_deterministic(tmp_path: Path) -> None:
    out = tmp_path / "sweep.svg"
    argv = ("sweep", MOBILENET, "-p", "width_mult=0.5,0.75,1.0", "-p", "num_classes=10,1000", "--plot", str(out))
    rc, table, err = run(*argv, "--format", "json")
    assert rc == 0, err
    assert f"wrote {out}" in err
    doc = json.loads(table)
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    assert root.tag == f"{SVG}svg"
    circles = root.findall(f"{SVG}circle")
    assert len(circles) == len(doc["points"]) == 6
    front = [c for c in circles if c.get("fill") == sweep_plot.FRONT_COLOR]
    assert len(front) == sum(p["pareto"] for p in doc["points"]) >= 1
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "0.5, 10" in texts and "parameters" in texts
    assert any(t.endswith("labels: width_mult, num_classes") for t in texts)
    first = out.read_bytes()
    assert run(*argv)[0] == 0 and out.read_bytes() == first


def test_svg_plot_escapes_labels(tmp_path: Path) -> None:
    dots = [sweep_plot.Dot(1, 2, 'name="<a&b>"\x1b', True), sweep_plot.Dot(3, 1, "x", True)]
    svg = sweep_plot.to_svg(sweep_plot.layout(dots, "t<&>"))
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert 'name="<a&b>"' in texts and "t<&>" in texts


def test_nice_ticks_cover_the_range() -> None:
    ticks = sweep_plot.nice_ticks(1_968_680, 6_108_776)
    assert ticks[0] <= 1_968_680 and ticks[-1] >= 6_108_776 and 4 <= len(ticks) <= 8
    steps = {round(b - a) for a, b in zip(ticks, ticks[1:])}
    assert steps == {1_000_000}
    assert sweep_plot.nice_ticks(5, 5)[0] <= 5 <= sweep_plot.nice_ticks(5, 5)[-1]


def test_plot_needs_a_known_extension(tmp_path: Path) -> None:
    rc, out, err = run("sweep", MOBILENET, "-p", "width_mult=0.5", "--plot", str(tmp_path / "p.jpg"))
    assert rc == 2 and "must end in .svg or .png" in err and out == ""


def test_png_without_pillow_is_a_located_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL raises ImportError
    out = tmp_path / "p.png"
    rc, table, err = run("sweep", MOBILENET, "-p", "width_mult=0.5", "--plot", str(out))
    assert rc == 1 and table == "" and not out.exists()
    assert "<command line>:1:1: error[E506]: --plot OUT.png needs Pillow" in err
    assert "hint: pip install pillow" in err


def test_png_plot(tmp_path: Path) -> None:
    pytest.importorskip("PIL", reason="Pillow is optional: pip install pillow")
    out = tmp_path / "p.png"
    rc, _, err = run("sweep", MOBILENET, "-p", "width_mult=0.5,1.0", "--plot", str(out))
    assert rc == 0, err
    from PIL import Image

    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (sweep_plot.WIDTH * 2, sweep_plot.HEIGHT * 2)


# ---------------------------------------------------------------------------------------- process


def test_sweep_imports_no_torch_and_shows_no_progress_off_a_terminal(tmp_path: Path) -> None:
    code = ("import sys; from archdsl.cli import main; "
            f"rc = main(['sweep', {MOBILENET!r}, '-p', 'width_mult=0.5,0.75,1.0', '--plot', 'p.svg', '-j', '2']); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["wrote p.svg", "3 points, 0 failed; Pareto front (params, MACs): point 1; "
                                        "2 workers"]


def test_quiet_prints_only_the_table() -> None:
    rc, out, err = run("sweep", MOBILENET, "-p", "width_mult=0.5,1.0", "-q")
    assert rc == 0 and err == "" and len(out.splitlines()) == 4


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import threading

    from archdsl.cli import main

    argv = ["sweep", MOBILENET, "-p", "width_mult=0.25,0.5,0.75", "-j", "1"]
    threads: list[int] = []
    baseline = threading.active_count()  # pytest-xdist runs a thread of its own
    original = sweep.analyze_point
    monkeypatch.setattr(sweep, "analyze_point", lambda t: (threads.append(threading.active_count()), original(t))[1])
    for quiet, drawn in (([], True), (["-q"], False)):
        err, out = _Terminal(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            assert main([*argv, *quiet]) == 0
        assert ("3/3" in err.getvalue()) == drawn
        assert len(out.getvalue().splitlines()) == 5
    assert max(threads) == baseline  # no refresh thread while points run (workers are forked then)
