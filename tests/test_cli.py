"""The command line: check, summary (every format, --depth), convert, -p, --input, exit codes,
and that check/summary/convert never import torch."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_support import run

from archdsl.frontend.loader import load_spec_file

ROOT = Path(__file__).resolve().parents[1]

NET = textwrap.dedent("""
    network tiny(num_classes = 10, width = 16)
    input 3x32x32
    block ConvBN(out, k, stride = 1) {
        conv: conv2d(out, k, stride = stride, padding = k // 2, bias = false)
        bn: batchnorm
        relu
    }
    stem: ConvBN(width, 3)
    mixed: concat {
        a: ConvBN(8, 1)
        b: { ConvBN(8, 1) -> ConvBN(8, 3) }
    }
    layer: repeat(2) as i {
        residual(post = "relu") {
            ConvBN(16, 3, stride = if i == 0 then 2 else 1)
        } shortcut down if i == 0 {
            conv2d(16, 1, stride = 2, bias = false) -> batchnorm
        }
    }
    global_avgpool -> flatten
    fc: linear(num_classes)
""").lstrip("\n")

# Hand-computed figures for NET at 3x32x32 (conv: out*in*k*k, no bias; BN: 2*C; linear: in*out + out).
STEM = 16 * 3 * 9 + 32
MIXED = (8 * 16 + 16) + (8 * 16 + 16) + (8 * 8 * 9 + 16)
LAYER0 = 16 * 16 * 9 + 32 + 16 * 16 + 32
LAYER1 = 16 * 16 * 9 + 32
FC = 16 * 10 + 10
PARAMS = STEM + MIXED + LAYER0 + LAYER1 + FC
MACS = (16 * 32 * 32 * 27 + 8 * 32 * 32 * 16 * 2 + 8 * 32 * 32 * 72 + 16 * 16 * 16 * 144 + 16 * 16 * 16 * 16
        + 16 * 16 * 16 * 144 + 160)


@pytest.fixture
def net(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.arch"
    p.write_text(NET, encoding="utf-8")
    return p


# ------------------------------------------------------------------------------------------ check


def _no_problems(err: str) -> bool:
    # informational notes (design rules) may be printed; errors and warnings may not
    return "error[" not in err and "warning[" not in err and "Traceback" not in err


def test_check_clean(net: Path) -> None:
    rc, out, err = run("check", str(net))
    assert (rc, out) == (0, "")
    assert _no_problems(err) and "info[" not in err   # infos are counted, not listed, by default
    assert err.endswith("ok: 1 spec checked\n") or re.search(r"\n0 errors, 0 warnings, \d+ infos?\n\Z", "\n" + err)


def test_check_several_specs(net: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("network: o\ninput: 1x4x4\nlayers: [relu]\n")
    rc, out, err = run("check", str(net), str(other))
    assert (rc, out) == (0, "") and _no_problems(err)
    rc, out, err = run("check", str(other))
    assert (rc, out, err) == (0, "", "ok: 1 spec checked\n")


def test_check_errors_text(net: Path) -> None:
    net.write_text(NET.replace("ConvBN(8, 3)", "ConvBN(8, 3, stride = 2)"))
    rc, out, err = run("check", str(net))
    assert rc == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"{net}:9:8: error[E201]: concat inputs differ in spatial size: branch `a` is 32x32, " \
                       "branch `b` is 16x16"
    assert lines[1] == "    mixed: concat {"
    assert lines[2] == "           ^"
    assert lines[-1] == "1 error, 0 warnings, 0 infos"


def test_check_json(net: Path) -> None:
    net.write_text(NET.replace("fc: linear(num_classes)", "fc: linear(num_clases)"))
    rc, out, err = run("check", str(net), "--format", "json")
    assert rc == 1 and err == ""
    doc = json.loads(out)
    assert doc == {"diagnostics": [{
        "code": "E105", "severity": "error", "message": "undefined name 'num_clases'", "file": str(net),
        "line": 21, "column": 12, "path": "", "hint": "did you mean 'num_classes'?"}]}


def test_check_param_and_input_overrides(net: Path) -> None:
    assert run("check", str(net), "-p", "num_classes=5", "-p", "width=8", "--input", "3x64x48")[0] == 0
    rc, _, err = run("check", str(net), "-p", "nope=1")
    assert rc == 1 and "<command line>:1:1: error[E113]: network has no parameter 'nope'" in err
    rc, _, err = run("check", str(net), "-p", "width=")
    assert rc == 1 and "error[E001]" in err
    assert run("check", str(net), "--input", "3x4x4")[0] == 0
    rc, _, err = run("check", str(net), "--input", "3x1x1", "-p", "width=0")
    assert rc == 1 and "error[E106]" in err


@pytest.mark.parametrize("argv", [
    [], ["check"], ["bogus"], ["check", "x.arch", "--format", "xml"], ["check", "x.arch", "--input", "3x8"],
    ["check", "x.arch", "--input", "0x8x8"], ["summary"], ["summary", "x.arch", "--depth", "one"],
    ["summary", "x.arch", "--format", "html"], ["convert", "x.arch"], ["check", "x.arch", "--nope"],
    ["summary", "x.arch", "--depth", "0"], ["summary", "x.arch", "--depth", "-1"],
])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    rc, out, err = run(*argv)
    assert rc == 2
    assert "usage:" in err


def test_version_and_help() -> None:
    rc, out, _ = run("--version")
    assert rc == 0 and out.startswith("archdsl ")
    rc, out, _ = run("--help")
    assert rc == 0 and "check" in out and "summary" in out and "convert" in out


# ------------------------------------------------------------------------------------------ summary


def test_summary_json(net: Path) -> None:
    rc, out, err = run("summary", str(net), "--format", "json")
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert doc["params"] == PARAMS
    assert doc["macs"] == MACS
    assert doc["output"] == [10]
    assert doc["outputs"] == {"main": [10]}
    assert doc["input"] == [3, 32, 32]
    paths = [n["path"] for n in doc["nodes"]]
    assert paths[:4] == ["stem.conv", "stem.bn", "stem.2", "mixed.a.conv"]
    assert "layer.0.down.0" in paths and "layer.1.down.0" not in paths
    node = doc["nodes"][0]
    assert node == {"path": "stem.conv", "op": "conv2d", "shape": [16, 32, 32], "params": 432,
                    "macs": 16 * 32 * 32 * 27, "activations": 16 * 32 * 32, "receptive_field": [3, 3],
                    "stride": [1, 1], "line": 4}
    assert sum(n["params"] for n in doc["nodes"]) == PARAMS


def test_summary_overrides(net: Path) -> None:
    rc, out, _ = run("summary", str(net), "--format", "json", "-p", "num_classes=7", "--input", "3x16x16")
    doc = json.loads(out)
    assert doc["output"] == [7] and doc["input"] == [3, 16, 16]
    assert doc["params"] == PARAMS - FC + 16 * 7 + 7


def test_summary_depth(net: Path) -> None:
    full = json.loads(run("summary", str(net), "--format", "json")[1])
    rc, out, _ = run("summary", str(net), "--format", "json", "--depth", "1")
    assert rc == 0
    doc = json.loads(out)
    rows = {n["path"]: n for n in doc["nodes"]}
    assert list(rows) == ["stem", "mixed", "layer", "3", "4", "fc"]
    assert rows["stem"]["op"] == "ConvBN" and rows["stem"]["params"] == STEM
    assert rows["mixed"]["op"] == "concat" and rows["mixed"]["shape"] == [16, 32, 32]
    assert rows["mixed"]["params"] == MIXED
    assert rows["layer"]["op"] == "repeat" and rows["layer"]["params"] == LAYER0 + LAYER1
    assert rows["layer"]["shape"] == [16, 16, 16]
    # collapsing never changes totals
    assert doc["params"] == full["params"] and doc["macs"] == full["macs"]
    assert sum(n["macs"] for n in doc["nodes"]) == sum(n["macs"] for n in full["nodes"])
    two = [n["path"] for n in json.loads(run("summary", str(net), "--format", "json", "--depth", "2")[1])["nodes"]]
    assert two[:6] == ["stem.conv", "stem.bn", "stem.2", "mixed.a", "mixed.b", "mixed.<concat>"]
    assert "layer.0" in two and "layer.1" in two


def test_summary_text(net: Path) -> None:
    rc, out, err = run("summary", str(net))
    assert (rc, err) == (0, "")
    assert "tiny" in out and "input 3x32x32" in out
    for cell in ("stem.conv", "conv2d", "16x32x32", "432", "mixed.<concat>", "fc", "linear"):
        assert cell in out
    assert f"params: {PARAMS:,}" in out and f"MACs (eval): {MACS:,}" in out and "outputs: main 10" in out
    rc, out, _ = run("summary", str(net), "--depth", "1")
    assert "ConvBN" in out and "stem.conv" not in out


def test_summary_text_never_truncates_cells() -> None:
    rc, out, _ = run("summary", str(ROOT / "specs" / "inception_v3.arch"))
    assert rc == 0 and "…" not in out
    assert "│ avgpool                       │ adaptive_avgpool │ 2048x1x1   │" in out
    assert "1535x1535 │" in out
    widths = {len(line) for line in out.splitlines()[1:-1]}
    assert len(widths) == 1  # every row of the box has the same width


def test_summary_markdown(net: Path) -> None:
    rc, out, _ = run("summary", str(net), "--format", "md", "--depth", "1")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "| module | op | output | params | MACs | RF |"
    assert lines[1] == "|---|---|---|---|---|---|"
    assert lines[2] == f"| stem | ConvBN | 16x32x32 | {STEM:,} | {16 * 32 * 32 * 27:,} | 3x3 |"
    assert lines[-1].startswith(f"params: {PARAMS:,}")


def test_summary_csv(net: Path) -> None:
    rc, out, _ = run("summary", str(net), "--format", "csv")
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["module", "op", "output", "params", "macs", "activations", "rf_h", "rf_w"]
    assert rows[0] == {"module": "stem.conv", "op": "conv2d", "output": "16x32x32", "params": "432",
                       "macs": str(16 * 32 * 32 * 27), "activations": str(16 * 32 * 32), "rf_h": "3", "rf_w": "3"}
    assert sum(int(r["params"]) for r in rows) == PARAMS
    assert rows[-1]["module"] == "fc" and rows[-1]["output"] == "10"


def test_summary_with_aux_heads(tmp_path: Path) -> None:
    p = tmp_path / "aux.arch"
    p.write_text("network a\ninput 2x4x4\nc: conv2d(4, 1)\naux side: { flatten -> linear(3) }\n"
                 "global_avgpool -> flatten -> fc: linear(5)\n")
    doc = json.loads(run("summary", str(p), "--format", "json")[1])
    assert doc["outputs"] == {"main": [5], "side": [3]}
    assert doc["params"] == (4 * 2 + 4) + (64 * 3 + 3) + (4 * 5 + 5)
    assert doc["macs"] == 4 * 16 * 2 + 4 * 5


def test_summary_errors_and_library(net: Path, tmp_path: Path) -> None:
    net.write_text(NET.replace("relu\n", "relu(x = 1)\n", 1))
    rc, out, err = run("summary", str(net))
    assert rc == 1 and out == "" and "error[E102]" in err
    lib = tmp_path / "lib.arch"
    lib.write_text("block B { relu }\n")
    rc, out, err = run("summary", str(lib))
    assert rc == 1 and "error[E114]: not a network" in err
    assert run("check", str(lib))[0] == 0  # a library checks clean


def test_summary_warnings_go_to_stderr(tmp_path: Path) -> None:
    p = tmp_path / "w.arch"
    p.write_text("network w\ninput 1x2x2\nblock Unused { relu }\nrelu\n")
    rc, out, err = run("summary", str(p), "--format", "json")
    assert rc == 0 and json.loads(out)["output"] == [1, 2, 2]
    assert "warning[W122]" in err


# ------------------------------------------------------------------------------------------ convert


def test_convert_both_ways(net: Path, tmp_path: Path) -> None:
    y = tmp_path / "tiny.yaml"
    assert run("convert", str(net), "-o", str(y)) == (0, "", f"wrote {y}\n")
    assert load_spec_file(y) == load_spec_file(net)
    back = tmp_path / "back.arch"
    assert run("convert", str(y), "--output", str(back))[0] == 0
    assert load_spec_file(back) == load_spec_file(net)
    assert json.loads(run("summary", str(y), "--format", "json")[1])["params"] == PARAMS
    yml = tmp_path / "tiny.yml"
    assert run("convert", str(back), "-o", str(yml))[0] == 0
    assert load_spec_file(yml) == load_spec_file(net)


def test_convert_refuses_broken_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("network: n\nlayers: [relu\n")
    out = tmp_path / "out.arch"
    out.write_text("precious")
    rc, _, err = run("convert", str(bad), "-o", str(out))
    assert rc == 1 and "error[E003]" in err
    assert out.read_text() == "precious"  # never clobbered by a failed conversion


# ------------------------------------------------------------------------------------------ subprocess


def _py(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("argv", [
    ["check", "{net}"],
    ["check", "{net}", "--format", "json"],
    ["summary", "{net}", "--format", "json"],
    ["summary", "{net}"],
    ["summary", "{net}", "--format", "md", "--depth", "1"],
    ["convert", "{net}", "-o", "{out}"],
    ["sweep", "{net}", "--format", "json"],
], ids=lambda a: " ".join(a[:1] + a[2:]))
def test_commands_do_not_import_torch(argv: list[str], net: Path, tmp_path: Path) -> None:
    args = [a.format(net=net, out=tmp_path / "o.yaml") for a in argv]
    code = (f"import sys; from archdsl.cli import main; rc = main({args!r}); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    proc = _py(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def test_python_dash_m(net: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ok = subprocess.run([sys.executable, "-m", "archdsl", "check", str(net)], env=env, capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0
    net.write_text("network n\ninput 3x8x8\nconvd(3, 1)\n")
    bad = subprocess.run([sys.executable, "-m", "archdsl", "check", str(net)], env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 1 and "error[E101]" in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "archdsl", "check"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert usage.returncode == 2
