"""Every command that writes a file ends with exactly one ``wrote PATH`` line (detail in parentheses
optional) on stderr; stdout carries only what a command prints as its output; commands that write
nothing say nothing of the kind."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from cli_support import run

NET = textwrap.dedent("""
    network t
    input 16x28x28
    c: conv2d(32, 5, padding = 2) -> relu
    r: residual(post = "relu") { conv2d(32, 3, padding = 1) -> batchnorm }
    global_avgpool -> flatten -> fc: linear(10)
""").lstrip("\n")


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    p = tmp_path / "t.arch"
    p.write_text(NET)
    return p


def wrote_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("wrote ")]


def assert_wrote_once(rc: int, err: str, out: Path, detail: str | None = "") -> None:
    """Exit 0, ``out`` exists, and stderr's only ``wrote`` line is its last line and names ``out``
    (with ``detail`` in parentheses; ``None``: any detail)."""
    assert rc == 0, err
    assert out.exists()
    lines = wrote_lines(err)
    assert lines == [err.splitlines()[-1]], err
    if detail is None:
        assert lines[0] == f"wrote {out}" or lines[0].startswith(f"wrote {out} (")
    else:
        assert lines[0] == f"wrote {out}" + (f" ({detail})" if detail else "")


def test_compile(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.py"
    rc, stdout, err = run("compile", str(spec), "-o", str(out))
    assert stdout == ""
    assert_wrote_once(rc, err, out)


def test_compile_to_stdout_writes_no_file_and_says_nothing(spec: Path) -> None:
    rc, stdout, err = run("compile", str(spec))
    assert rc == 0 and "import torch" in stdout
    assert wrote_lines(err) == [] and "wrote" not in stdout


def test_compile_onnx(spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ONNX export goes through the same line, its verification as the detail (the exporter is
    faked: this tests the message, test_runtime.py the export)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from archdsl.backends import onnx_export

    monkeypatch.setattr(onnx_export, "export_onnx",
                        lambda model, shape, **kw: onnx_export.OnnxResult(b"x" * 12345, True, 3e-7))
    out = tmp_path / "model.onnx"
    rc, stdout, err = run("compile", str(spec), "--target", "onnx", "-o", str(out))
    assert stdout == ""
    assert_wrote_once(rc, err, out, "12,345 bytes; onnx.checker ok; onnxruntime vs PyTorch max |diff| 3e-07")


def test_convert(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.yaml"
    rc, stdout, err = run("convert", str(spec), "-o", str(out))
    assert (stdout, err) == ("", f"wrote {out}\n")
    assert_wrote_once(rc, err, out)


def test_render(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.dot"
    rc, stdout, err = run("render", str(spec), "-o", str(out))
    assert stdout == ""
    assert_wrote_once(rc, err, out, None)


def test_transform_table_on_stdout_wrote_on_stderr(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "new.arch"
    rc, stdout, err = run("transform", str(spec), "--factorize=5x5", "-o", str(out))
    assert stdout.splitlines()[0].split() == ["module", "rewrite", "params", "MACs"]
    assert "wrote" not in stdout
    assert_wrote_once(rc, err, out)


@pytest.mark.parametrize("argv", [["check"], ["check", "--format", "json"], ["summary"],
                                  ["summary", "--format", "json"], ["summary", "--format", "csv"]])
def test_readers_write_nothing_and_say_nothing(spec: Path, argv: list[str]) -> None:
    rc, stdout, err = run(argv[0], str(spec), *argv[1:])
    assert rc == 0 and wrote_lines(err) == [] and "wrote" not in stdout
    if "json" in argv:
        json.loads(stdout)   # machine-readable stdout stays clean


def test_a_path_with_control_characters_is_escaped(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "a\x1b[31mb.yaml"
    rc, _, err = run("convert", str(spec), "-o", str(out))
    assert rc == 0 and out.exists()
    assert "\x1b" not in err and err == f"wrote {tmp_path}/a\\x1b[31mb.yaml\n"
