"""``archdsl convert`` writes a spec that imports the same files from its new folder: relative ``use``
paths are rewritten for the output's folder (text -> YAML, YAML -> text, text -> text), and the
converted file checks from any working directory (with ``--search-path`` when an import leaves its
folder, since imports are confined to the importing file's directory tree)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from cli_support import run

from archdsl.frontend.loader import load_spec_file

LIB = textwrap.dedent("""
    # shared blocks
    block Stage(c) {
        conv: conv2d(c, 3, padding = 1, bias = false)
        bn: batchnorm
        relu
    }
""").lstrip("\n")

NET = textwrap.dedent("""
    # a network that imports its blocks
    network n(num_classes = 10)
    input 3x16x16
    use "lib/blocks.arch"   # relative to this file

    s1: Stage(8)            # first stage
    s2: Stage(16)
    global_avgpool -> flatten -> fc: linear(num_classes)
""").lstrip("\n")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """``project/specs/net.arch`` importing ``project/specs/lib/blocks.arch``; an empty ``project/out``."""
    specs = tmp_path / "project" / "specs"
    (specs / "lib").mkdir(parents=True)
    (specs / "lib" / "blocks.arch").write_text(LIB)
    (specs / "net.arch").write_text(NET)
    (tmp_path / "project" / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    return tmp_path / "project"


def _uses(path: Path) -> list[str]:
    return [u.path for u in load_spec_file(path).uses]


def _params(path: Path | str, *flags: str) -> int:
    """Check ``path`` (exit 0 required) and return its parameter count from ``summary``."""
    import json

    rc, _, err = run("check", str(path), *flags)
    assert rc == 0, err
    rc, out, err = run("summary", str(path), "--format", "json", *flags)
    assert rc == 0, err
    return json.loads(out)["params"]


def test_text_to_yaml_in_a_sibling_folder(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, out = project / "specs" / "net.arch", project / "out" / "net.yaml"
    rc, stdout, err = run("convert", str(src), "-o", str(out))
    assert (rc, stdout) == (0, "")
    assert _uses(out) == ["../specs/lib/blocks.arch"]
    lib = (project / "specs" / "lib").resolve()
    assert err == (f"note: {out} imports from outside its folder: check or compile it with --search-path {lib}\n"
                   f"wrote {out} (use lib/blocks.arch -> ../specs/lib/blocks.arch)\n")
    # from another working directory, by a relative path, with the search path the note names
    monkeypatch.chdir(project.parent / "elsewhere")
    rel = os.path.relpath(out)
    assert _params(rel, "--search-path", str(lib)) == _params(src)
    # without it the import is refused as escaping the folder, not "not found": the path is right
    rc, _, err = run("check", rel)
    assert rc == 1 and "error[E109]: import '../specs/lib/blocks.arch' escapes the spec's directory" in err


def test_text_to_yaml_in_an_ancestor_folder_checks_without_flags(project: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's ``convert specs/resnet50.arch -o resnet50.yaml``, run from the project root."""
    monkeypatch.chdir(project)
    rc, _, err = run("convert", "specs/net.arch", "-o", "net.yaml")
    assert (rc, err) == (0, "wrote net.yaml (use lib/blocks.arch -> specs/lib/blocks.arch)\n")
    assert _uses(project / "net.yaml") == ["specs/lib/blocks.arch"]
    monkeypatch.chdir(project.parent / "elsewhere")
    assert _params("../project/net.yaml") == _params(project / "specs" / "net.arch")


def test_yaml_to_text_in_another_folder(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    there = project / "net.yaml"
    assert run("convert", str(project / "specs" / "net.arch"), "-o", str(there))[0] == 0
    back = project / "specs" / "sub" / "back.arch"
    back.parent.mkdir()
    rc, _, err = run("convert", str(there), "-o", str(back))
    assert rc == 0 and err.endswith(f"wrote {back} (use specs/lib/blocks.arch -> ../lib/blocks.arch)\n")
    assert _uses(back) == ["../lib/blocks.arch"]
    # back in the spec's own folder, the path is the original one and the AST the original AST
    home = project / "specs" / "home.arch"
    assert run("convert", str(there), "-o", str(home))[2] == f"wrote {home} (use specs/lib/blocks.arch -> " \
                                                            "lib/blocks.arch)\n"
    assert load_spec_file(home) == load_spec_file(project / "specs" / "net.arch")
    monkeypatch.chdir(project.parent / "elsewhere")
    assert _params(back, "--search-path", str(project / "specs" / "lib")) == _params(home)


def test_text_to_text_elsewhere_keeps_every_comment(project: Path) -> None:
    out = project / "out" / "copy.arch"
    rc, _, err = run("convert", str(project / "specs" / "net.arch"), "-o", str(out))
    assert rc == 0 and err.endswith("(use lib/blocks.arch -> ../specs/lib/blocks.arch)\n")
    # the source as written, but for the one import
    assert out.read_text() == NET.replace('use "lib/blocks.arch"', 'use "../specs/lib/blocks.arch"')


def test_same_folder_changes_nothing(project: Path) -> None:
    src = project / "specs" / "net.arch"
    copy, yml = project / "specs" / "copy.arch", project / "specs" / "net.yaml"
    assert run("convert", str(src), "-o", str(copy)) == (0, "", f"wrote {copy}\n")
    assert copy.read_text() == NET
    assert run("convert", str(src), "-o", str(yml)) == (0, "", f"wrote {yml}\n")
    assert _uses(yml) == ["lib/blocks.arch"]


def test_imports_outside_the_spec_s_tree_stay_as_written(project: Path) -> None:
    """An absolute path (refused by ``check`` anyway), one found only through ``--search-path`` and
    one that climbs out of the spec's folder (valid only with ``--search-path``) resolve the same, or
    fail the same, from any folder: convert leaves them alone and suggests no search path."""
    shared = project / "shared"
    shared.mkdir()
    (shared / "extra.arch").write_text("block Extra { relu }\n")
    spec = project / "specs" / "odd.arch"
    absolute = str(project / "specs" / "lib" / "blocks.arch")
    spec.write_text(NET.replace('use "lib/blocks.arch"',
                                f'use "{absolute}"\nuse "extra.arch"\nuse "../shared/extra.arch"'))
    out = project / "out" / "odd.yaml"
    assert run("convert", str(spec), "-o", str(out)) == (0, "", f"wrote {out}\n")
    assert _uses(out) == [absolute, "extra.arch", "../shared/extra.arch"]


def test_an_output_folder_reached_through_a_symlink(project: Path, tmp_path: Path) -> None:
    """Imports resolve against the importing file's real folder, so the path is computed from it."""
    real = project / "out" / "deep"
    real.mkdir()
    link = tmp_path / "link"
    try:
        link.symlink_to(real, target_is_directory=True)
    except OSError:
        pytest.skip("no symbolic links here")
    out = link / "net.yaml"
    assert run("convert", str(project / "specs" / "net.arch"), "-o", str(out))[0] == 0
    assert _uses(out) == ["../../specs/lib/blocks.arch"]
    assert _params(out, "--search-path", str(project / "specs")) == _params(project / "specs" / "net.arch")


def test_a_path_with_a_quote_is_written_as_a_valid_literal(tmp_path: Path) -> None:
    odd = tmp_path / 'we"ird dir'
    odd.mkdir()
    (odd / "b.arch").write_text(LIB)
    spec = odd / "n.arch"
    spec.write_text(NET.replace("lib/blocks.arch", "b.arch"))
    out = tmp_path / "n.arch"
    assert run("convert", str(spec), "-o", str(out))[0] == 0
    assert _uses(out) == ['we"ird dir/b.arch']
    assert _params(out) == _params(spec)
