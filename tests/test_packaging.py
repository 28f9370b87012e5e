"""The grammar ships inside the built wheel, and a non-editable install can parse specs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0 and "hatchling" in (proc.stderr + proc.stdout):
        pytest.skip("hatchling not installed (tools/test.sh installs it)")
    assert proc.returncode == 0, proc.stderr
    (whl,) = out.glob("archdsl-*.whl")
    return whl


def test_wheel_contains_grammar(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "archdsl/grammar/archdsl.lark" in names
    assert (ROOT / "grammar" / "archdsl.lark").read_bytes() == zipfile.ZipFile(wheel).read("archdsl/grammar/archdsl.lark")


def test_installed_copy_parses_a_spec(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True)
    code = (
        "import archdsl.frontend.text as t, sys;"
        "assert str(t.grammar_path()).startswith(sys.argv[1]), t.grammar_path();"
        "from archdsl.pipeline import analyze;"
        "r = analyze(sys.argv[2]); assert r.ok; print(r.graph.total_params())"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(target), str(ROOT / "specs" / "inception_v3.arch")],
                          capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == 27_161_264
