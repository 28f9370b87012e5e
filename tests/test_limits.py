"""Resource limits (archdsl/limits.py, docs/robustness.md): each one just under and just over, with
the exact code and location; ``--limit`` and ``ARCHDSL_LIMITS``; parameter memory refused before
anything is allocated; import confinement (symbolic links, cycles); hostile nesting and YAML
aliases; how spec bytes are decoded.

Limits are set small (``limits.scoped``) so every case is fast.
"""

from __future__ import annotations

import os
import sys
import textwrap
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import run

from archdsl import limits
from archdsl.cli import build_parser
from archdsl.diagnostics import Diagnostic, DiagnosticError, Loc
from archdsl.frontend.loader import decode_spec_bytes
from archdsl.pipeline import analyze


@pytest.fixture(autouse=True)
def _limits_restored() -> Iterator[None]:
    """Every test leaves the defaults in force (a leak would change other tests' results)."""
    yield
    assert limits.current() == limits.DEFAULT


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def check(path: Path, **lims: int) -> list[tuple[str, int, int]]:
    """(code, line, column) of every diagnostic of ``path`` analyzed under ``lims``."""
    with limits.scoped(lims):
        return [(d.code, d.loc.line, d.loc.col) for d in analyze(path).diags.sorted() if d.is_error]


def diags(path: Path, **lims: int) -> list[Diagnostic]:
    with limits.scoped(lims):
        return [d for d in analyze(path).diags.sorted() if d.is_error]


# ---------------------------------------------------------------------------------------- each limit


def test_file_bytes(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.arch", "network n\ninput 3x8x8\nrelu\n")
    size = spec.stat().st_size
    assert check(spec, file_bytes=size) == []
    assert check(spec, file_bytes=size - 1) == [("E005", 1, 1)]
    assert f"the limit is {size - 1}" in diags(spec, file_bytes=size - 1)[0].message


def test_file_bytes_reads_no_more_than_the_limit(tmp_path: Path) -> None:
    """A device that reports size 0 and never ends (/dev/zero) is cut at the limit, not read forever."""
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with limits.scoped({"file_bytes": 1000}):
        found = analyze("/dev/zero").diags.sorted()
    assert [(d.code, d.loc.line, d.loc.col) for d in found] == [("E005", 1, 1)]
    assert "more than 1,000 bytes" in found[0].message


@pytest.mark.parametrize("depth, expect", [(5, []), (6, [("E152", 3, 19)])])
def test_nesting_text_brackets(tmp_path: Path, depth: int, expect: list) -> None:
    # every kind of bracket counts: '{' for groups, '(' of a call, '[' of a list
    spec = write(tmp_path / "x.arch", "network n\ninput 3x8x8\n" + "{ " * (depth - 2)
                 + "conv2d(4, [1, 1]) }" + " }" * (depth - 3) + "\n")
    assert check(spec, nesting=5) == expect


def test_nesting_text_ignores_brackets_in_strings_and_comments(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.arch", 'network n\ninput 3x8x8\n# ((((((((\nlet s = "((((" + \'[[[[\'\nrelu\n')
    assert check(spec, nesting=2) == []


@pytest.mark.parametrize("terms, expect", [(6, []), (7, [("E152", 3, 31)])])
def test_nesting_expression(tmp_path: Path, terms: int, expect: list) -> None:
    # 1 + 1 + ... nests left to right without brackets: the 6th '+' is the 6th level
    spec = write(tmp_path / "x.arch", "network n\ninput 3x8x8\nlet x = " + " + ".join(["1"] * terms) + "\nrelu\n")
    assert check(spec, nesting=5) == expect


@pytest.mark.parametrize("limit, expect", [(7, []), (6, [("E152", 4, 9)])])
def test_nesting_yaml(tmp_path: Path, limit: int, expect: list) -> None:
    # document 1, 'let' list 2, its mapping 3, the lists 4-6, and the 1 at level 7
    spec = write(tmp_path / "x.yaml", "network: n\ninput: 3x8x8\nlet:\n- x: [[[1]]]\nlayers: [relu]\n")
    assert check(spec, nesting=limit) == expect


def test_nesting_yaml_block_style(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.yaml", "network: n\ninput: 3x8x8\nlayers:\n" + "- " * 10 + "relu\n")
    # document 1, 'layers' 2, nine nested lists 3-11, relu 12.  Within the limit the walker sees it (and
    # says a bare nested list is no layer); one level less, the composer stops at relu
    assert check(spec, nesting=12) == [("E004", 4, 3)]
    assert check(spec, nesting=11) == [("E152", 4, 21)]


def test_yaml_nodes(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.yaml", """
        network: n
        input: 3x8x8
        layers:
        - g: &g [relu, relu, relu]
        - h: *g
        """)
    # document 1 + three keys + two values + layers list 1 + two items of (mapping, key, list of 4)
    assert check(spec, yaml_nodes=19) == []
    assert check(spec, yaml_nodes=18) == [("E150", 1, 1)]
    # g's list has 4 nodes, each item 6, the layers list 13: the first over 11
    assert check(spec, yaml_nodes=11) == [("E150", 4, 1)]


def test_repeat(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.arch", "network n\ninput 3x8x8\nstem: relu\nrepeat(5) { relu }\n")
    assert check(spec, repeat=5) == []
    assert check(spec, repeat=4) == [("E150", 4, 1)]
    assert "--limit repeat=N" in diags(spec, repeat=4)[0].hint


def test_nodes(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.arch", "network n\ninput 3x8x8\nrelu -> tanh -> relu\n")
    # the input node and three layers (the output node is not counted against the limit)
    assert check(spec, nodes=4) == []
    assert check(spec, nodes=3) == [("E150", 3, 17)]


@pytest.mark.parametrize("text, expect", [
    ("let x = 1000", []),
    ("let x = 1001", [("E151", 3, 9)]),
    ("let x = 00001000", []),                  # leading zeros are not magnitude
    ("let x = 10001", [("E151", 3, 9)]),      # refused as a literal (more digits than could fit)
    ("let x = 500 * 2", []),
    ("let x = 500 * 3", [("E151", 3, 13)]),
    ("let x = 2 ** 11", [("E151", 3, 11)]),
    ("let x = -1000", []),
])
def test_int_digits(tmp_path: Path, text: str, expect: list) -> None:
    spec = write(tmp_path / "x.arch", f"network n\ninput 3x8x8\n{text}\nrelu\n")
    assert check(spec, int_digits=3) == expect


def test_int_digits_yaml(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.yaml", "network: n\ninput: 3x8x8\nlet:\n- x: 1001\nlayers: [relu]\n")
    assert check(spec, int_digits=4) == []
    assert check(spec, int_digits=3) == [("E151", 4, 6)]


def test_channels(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.arch", "network n\ninput 3x8x8\nstem: conv2d(8, 1)\nwide: conv2d(9, 1) -> relu\n")
    assert check(spec, channels=9) == []
    found = diags(spec, channels=8)
    assert [(d.code, d.loc.line, d.loc.col, d.path) for d in found] == [("E153", 4, 7, "wide")]
    assert "--limit channels=N" in found[0].hint


def test_spatial_input_and_inferred(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.arch", "network n\ninput 3x9x8\nconv2d(4, 1, padding = 1)\n")
    assert check(spec, spatial=11) == []
    assert check(spec, spatial=10) == [("E153", 3, 1)]   # the padded conv's 11x10 output
    assert check(spec, spatial=8) == [("E153", 2, 7)]    # the input itself


def test_spatial_input_override(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.arch", "network n\ninput 3x8x8\nrelu\n")
    with limits.scoped({"spatial": 16}):
        found = analyze(spec, input_shape=(3, 17, 8)).diags.sorted()
    assert [(d.code, d.loc) for d in found] == [("E153", Loc("<command line>", 1, 1))]


def test_import_depth(tmp_path: Path) -> None:
    for i in range(3):
        write(tmp_path / f"l{i}.arch", f'use "l{i + 1}.arch"\nblock B{i} {{ relu }}\n')
    write(tmp_path / "l3.arch", "block B3 { relu }\n")
    spec = write(tmp_path / "m.arch", 'network n\ninput 3x8x8\nuse "l0.arch"\nB0 -> B1 -> B2 -> B3\n')
    assert check(spec, import_depth=4) == []
    found = diags(spec, import_depth=3)
    # (B3, in the library not read, is unknown at the call)
    assert [(d.code, d.loc.line, d.loc.col) for d in found] == [("E152", 1, 5), ("E101", 4, 19)]
    assert found[0].loc.file.endswith("l2.arch")
    assert "imports nested more than 3 deep" in found[0].message


def test_call_depth(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.arch", "network n\ninput 3x8x8\nblock A { B }\nblock B { C }\nblock C { relu }\nA\n")
    assert check(spec, call_depth=3) == []
    assert check(spec, call_depth=2) == [("E152", 4, 11)]


def test_memory_bytes(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.arch", "network n\ninput 10x1x1\nflatten\nfc: linear(10)\n")
    assert check(spec, memory_bytes=440) == []          # 110 float32 parameters
    found = diags(spec, memory_bytes=439)
    assert [(d.code, d.loc.line, d.loc.col, d.path) for d in found] == [("E154", 4, 5, "fc")]


def test_memory_defaults_to_this_machine(tmp_path: Path) -> None:
    if not limits.machine_memory_bytes():
        pytest.skip("physical memory unknown here")
    # 2**40 parameters (4 TiB): the channel limit is raised so that only memory is in the way
    spec = write(tmp_path / "x.arch", "network n\ninput 2097152x1x1\nflatten\nfc: linear(2097152)\n")
    found = diags(spec, channels=1 << 22)
    assert [(d.code, d.loc.line, d.loc.col) for d in found] == [("E154", 4, 5)]
    assert "this machine's memory" in found[0].message
    assert "16.0 TiB" in found[0].message


def test_limit_values_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown limit 'nodez'; limits: call_depth, channels"):
        limits.make({"nodez": 1})
    with pytest.raises(ValueError, match="nesting must be an integer from 1"):
        limits.make({"nesting": 0})
    with pytest.raises(ValueError, match="int_digits must be an integer from 1 to 4,000"):
        limits.make({"int_digits": 5000})
    assert limits.make({"memory_bytes": 0}).memory_bytes == 0
    assert limits.parse_limit_pairs(["nodes = 1_000", "repeat=5"]) == {"nodes": 1000, "repeat": 5}
    for bad in ("nodes", "nodes=", "nodes=-1", "nodes=1e3", "=5"):
        with pytest.raises(ValueError):
            limits.parse_limit_pairs([bad])


def test_scoped_restores_and_configure_resets() -> None:
    with limits.scoped({"nodes": 7}) as inner:
        assert limits.current().nodes == 7 == inner.nodes
        with limits.scoped({"repeat": 3}):
            assert limits.current().nodes == limits.DEFAULT.nodes  # relative to the defaults
        assert limits.current().nodes == 7
    try:
        limits.configure({"nesting": 9})
        assert limits.current().nesting == 9
    finally:
        limits.reset()


# ---------------------------------------------------------------------------------------- command line


SPEC = "network n\ninput 3x8x8\nrepeat(3) { relu }\n"


def test_cli_limit_option_after_and_before_the_subcommand(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.arch", SPEC)
    assert run("check", str(spec))[0] == 0
    rc, _, err = run("check", "--limit", "repeat=2", str(spec))
    assert rc == 1 and f"{spec}:3:1: error[E150]: repeat count 3 exceeds the limit of 2" in err
    rc, _, err = run("--limit", "repeat=2", "check", str(spec))
    assert rc == 1 and "error[E150]" in err
    # the last one given wins, the subcommand's after the global one
    assert run("--limit", "repeat=2", "check", "--limit", "repeat=3", str(spec))[0] == 0


def test_cli_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write(tmp_path / "x.arch", SPEC)
    monkeypatch.setenv("ARCHDSL_LIMITS", "nodes=100, repeat=2")
    rc, _, err = run("check", str(spec))
    assert rc == 1 and "error[E150]: repeat count 3 exceeds the limit of 2" in err
    assert run("check", "--limit", "repeat=3", str(spec))[0] == 0  # the option overrides the environment
    monkeypatch.setenv("ARCHDSL_LIMITS", "repeat=two")
    rc, _, err = run("check", str(spec))
    assert rc == 2
    assert err.startswith("archdsl: error: ARCHDSL_LIMITS: bad limit 'repeat=two'")
    assert "Traceback" not in err


@pytest.mark.parametrize("pair, message", [
    ("nodez=5", "unknown limit 'nodez'; limits: call_depth, channels, dot_seconds, file_bytes, import_depth, "
                "int_digits, memory_bytes, nesting, nodes, render_nodes, repeat, spatial, yaml_nodes"),
    ("nodes=x", "bad limit 'nodes=x': write NAME=INTEGER"),
    ("nodes", "bad limit 'nodes': write NAME=INTEGER"),
    ("nesting=0", "limit nesting must be an integer from 1"),
])
def test_cli_bad_limit_is_a_usage_error(tmp_path: Path, pair: str, message: str) -> None:
    spec = write(tmp_path / "x.arch", SPEC)
    rc, _, err = run("check", "--limit", pair, str(spec))
    assert rc == 2
    assert message in err and "argument --limit" in err
    assert "Traceback" not in err


def test_every_subcommand_accepts_limit() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, subparser in sub.choices.items():
        assert any("--limit" in a.option_strings for a in subparser._actions), name


def test_cli_limits_do_not_leak_between_runs(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.arch", SPEC)
    assert run("check", "--limit", "repeat=1", str(spec))[0] == 1
    assert limits.current() == limits.DEFAULT
    assert run("check", str(spec))[0] == 0


def test_cli_limits_apply_to_convert_and_compile(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.arch", SPEC)
    rc, _, err = run("convert", "--limit", "file_bytes=10", str(spec), "-o", str(tmp_path / "x.yaml"))
    assert rc == 1 and "error[E005]" in err and not (tmp_path / "x.yaml").exists()
    rc, out, err = run("compile", "--limit", "repeat=2", str(spec))
    assert rc == 1 and "error[E150]" in err and out == ""


# ---------------------------------------------------------------------------------------- memory before allocation


BIG = "network big\ninput 1048576x1x1\nflatten\nfc: linear(1048576)\n"   # 2**40 parameters: 4 TiB


def test_build_refuses_before_allocating(tmp_path: Path) -> None:
    import archdsl

    spec = write(tmp_path / "big.arch", BIG)
    tracemalloc.start()
    try:
        with pytest.raises(archdsl.BuildError) as info:
            archdsl.build(spec, )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(d.code, d.loc.line, d.loc.col, d.path) for d in info.value.diagnostics] == [("E154", 4, 5, "fc")]
    assert peak < 64 * 1024 * 1024  # the weights alone would be 4 TiB


def test_loaded_spec_rechecks_memory_at_build(tmp_path: Path) -> None:
    """A spec analyzed under a generous limit is still refused when built under a stricter one."""
    import archdsl
    from archdsl.backends.runtime import load_spec

    spec = write(tmp_path / "small.arch", "network n\ninput 10x1x1\nflatten\nfc: linear(10)\n")
    loaded = load_spec(spec)
    with limits.scoped({"memory_bytes": 100}):
        with pytest.raises(archdsl.BuildError) as info:
            loaded.build()
        assert [d.code for d in info.value.diagnostics] == ["E154"]
        # ... and the analysis cache does not hand back the result made under other limits
        with pytest.raises(archdsl.BuildError):
            archdsl.build(spec)
    assert loaded.build() is not None


def test_check_and_compile_report_memory(tmp_path: Path) -> None:
    spec = write(tmp_path / "big.arch", BIG)
    for argv in (["check", str(spec)], ["compile", str(spec)], ["summary", str(spec)]):
        rc, out, err = run(*argv)
        assert rc == 1, argv
        assert f"{spec}:4:5: error[E154]: parameters need 4.0 TiB" in err
        assert "= hint: this layer alone holds 1,099,512,676,352 parameters" in err


# ---------------------------------------------------------------------------------------- imports


LIB = "block B { relu }\n"
USER = 'network n\ninput 3x8x8\nuse "{}"\nB\n'


def test_symlinked_file_escaping_the_tree_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "outside" / "lib.arch", LIB)
    (tmp_path / "proj").mkdir()
    os.symlink(tmp_path / "outside" / "lib.arch", tmp_path / "proj" / "lib.arch")
    spec = write(tmp_path / "proj" / "m.arch", USER.format("lib.arch"))
    found = diags(spec)
    assert [(d.code, d.loc.line, d.loc.col) for d in found][:1] == [("E109", 3, 5)]
    assert "escapes the spec's directory" in found[0].message
    assert str(tmp_path / "outside" / "lib.arch") in found[0].message
    # an explicit search path allows it
    with limits.scoped({}):
        assert analyze(spec, search_paths=(str(tmp_path / "outside"),)).diags.sorted() == []


def test_symlinked_directory_escaping_the_tree_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "outside" / "lib.arch", LIB)
    (tmp_path / "proj").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "proj" / "vendor", target_is_directory=True)
    spec = write(tmp_path / "proj" / "m.arch", USER.format("vendor/lib.arch"))
    assert check(spec)[:1] == [("E109", 3, 5)]


def test_symlink_inside_the_tree_is_fine(tmp_path: Path) -> None:
    write(tmp_path / "proj" / "real" / "lib.arch", LIB)
    os.symlink(tmp_path / "proj" / "real", tmp_path / "proj" / "alias", target_is_directory=True)
    spec = write(tmp_path / "proj" / "m.arch", USER.format("alias/lib.arch"))
    assert check(spec) == []


def test_symlink_loop_is_a_diagnostic(tmp_path: Path) -> None:
    os.symlink(tmp_path / "b.arch", tmp_path / "a.arch")
    os.symlink(tmp_path / "a.arch", tmp_path / "b.arch")
    spec = write(tmp_path / "m.arch", USER.format("a.arch"))
    found = diags(spec)
    assert [(d.code, d.loc.line, d.loc.col) for d in found][:1] == [("E109", 3, 5)]


def test_imports_of_special_files_are_not_read(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(tmp_path / "pipe.arch")  # reading it would block forever
    spec = write(tmp_path / "m.arch", USER.format("pipe.arch"))
    found = diags(spec)
    assert [(d.code, d.loc.line, d.loc.col) for d in found][:1] == [("E109", 3, 5)]
    assert "not found" in found[0].message


def test_import_cycle_names_the_chain(tmp_path: Path) -> None:
    write(tmp_path / "a.arch", 'use "b.arch"\nblock A { relu }\n')
    write(tmp_path / "b.arch", 'use "c.arch"\nblock Bb { relu }\n')
    write(tmp_path / "c.arch", 'use "a.arch"\nblock C { relu }\n')
    spec = write(tmp_path / "m.arch", 'network n\ninput 3x8x8\nuse "a.arch"\nA -> Bb -> C\n')
    found = diags(spec)
    assert [(d.code, d.loc.line, d.loc.col) for d in found] == [("E110", 1, 5)]
    assert found[0].message == "import cycle: a.arch -> b.arch -> c.arch -> a.arch"
    assert found[0].loc.file.endswith("c.arch")


def test_import_diamonds_are_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each library imports the next four times: re-reading along every path would be 4**12 reads."""
    from archdsl import pipeline

    for i in range(12):
        write(tmp_path / f"l{i}.arch", "".join(f'use "l{i + 1}.arch"\n' for _ in range(4)) + f"block B{i} {{ relu }}\n")
    write(tmp_path / "l12.arch", "block B12 { relu }\n")
    spec = write(tmp_path / "m.arch", 'network n\ninput 3x8x8\nuse "l0.arch"\nB0 -> B12\n')
    reads: list[str] = []
    real = pipeline.load_spec_file
    monkeypatch.setattr(pipeline, "load_spec_file", lambda p, *a, **k: reads.append(str(p)) or real(p, *a, **k))
    assert check(spec) == []
    assert len(reads) == 14  # the spec and its 13 libraries, once each


# ---------------------------------------------------------------------------------------- hostile nesting and aliases


def test_billion_laughs_yaml_fails_fast_with_default_limits(tmp_path: Path) -> None:
    lines = ["network: n", "input: 3x8x8", "layers:", "- g0: &a0 [relu, relu, relu, relu, relu, relu, relu, relu, relu]"]
    for i in range(1, 10):
        lines.append(f"- g{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    spec = tmp_path / "laughs.yaml"
    spec.write_text("\n".join(lines) + "\n")
    found = diags(spec)  # 10**9 relus once expanded: measured without expanding
    assert [d.code for d in found] == ["E150"]
    assert "more than 1,000,000 nodes" in found[0].message


def test_recursive_yaml_alias(tmp_path: Path) -> None:
    spec = write(tmp_path / "x.yaml", "network: n\ninput: 3x8x8\nlayers: &x [relu, *x]\n")
    found = diags(spec)
    assert [(d.code, d.loc.line, d.loc.col) for d in found] == [("E150", 3, 9)]
    assert "contains it" in found[0].message


@pytest.mark.parametrize("name, text, loc", [
    ("braces.arch", "network n\ninput 3x8x8\n" + "{ " * 5000 + "relu" + " }" * 5000 + "\n", (3, 401)),
    ("parens.arch", "network n\ninput 3x8x8\nlet x = " + "(" * 5000 + "1" + ")" * 5000 + "\nrelu\n", (3, 209)),
    ("sum.arch", "network n\ninput 3x8x8\nlet x = " + "+".join(["1"] * 5000) + "\nrelu\n", (3, 410)),
    ("unary.arch", "network n\ninput 3x8x8\nlet x = " + "-" * 5000 + "1\nrelu\n", (3, 4808)),
    ("else-if.arch", "network n(k = 0)\ninput 3x8x8\n" + "if k == 1 { relu } else " * 5000 + "{ tanh }\n", (3, 115177)),
    ("flow.yaml", "network: n\ninput: 3x8x8\nlayers: " + "[" * 5000 + "]" * 5000 + "\n", (3, 208)),
    ("mappings.yaml", "network: n\ninput: 3x8x8\nlayers: " + "{a: " * 5000 + "relu" + "}" * 5000 + "\n", (3, 802)),
    ("block.yaml", "network: n\ninput: 3x8x8\nlayers:\n" + "- " * 5000 + "relu\n", (4, 399)),
    ("fragment.yaml", "network: n\ninput: 3x8x8\nlayers:\n- conv2d(" + "(" * 5000 + "4" + ")" * 5000 + ", 1)\n", (4, 209)),
])
def test_5000_deep_nesting_is_a_located_E152(tmp_path: Path, name: str, text: str, loc: tuple) -> None:
    spec = tmp_path / name
    spec.write_text(text)
    found = diags(spec)
    assert [(d.code, d.loc.line, d.loc.col) for d in found] == [("E152", *loc)], [d.message for d in found]
    rc, _, err = run("check", str(spec))
    assert rc == 1 and f"{spec}:{loc[0]}:{loc[1]}: error[E152]" in err and "Traceback" not in err


@pytest.mark.parametrize("name, text", [
    ("braces.arch", "network n\ninput 3x8x8\n" + "{ " * 20000 + "relu" + " }" * 20000 + "\n"),
    ("sum.arch", "network n\ninput 3x8x8\nlet x = " + "+".join(["1"] * 20000) + "\nrelu\n"),
    # (block style: PyYAML's scanner is quadratic in the depth of flow collections)
    ("block.yaml", "network: n\ninput: 3x8x8\nlayers:\n" + "- " * 4000 + "relu\n"),
])
@pytest.mark.parametrize("command", ["check", "convert", "compile"])
def test_nesting_beyond_the_stack_is_still_a_diagnostic(tmp_path: Path, name: str, text: str, command: str) -> None:
    """With the nesting limit raised past what the interpreter's stack allows, the safety nets
    report E152 at the file instead of a RecursionError (or a crash)."""
    spec = tmp_path / name
    spec.write_text(text)
    extra = ["-o", str(tmp_path / ("out.yaml" if name.endswith(".arch") else "out.arch"))] \
        if command == "convert" else []
    before = sys.getrecursionlimit()
    rc, _, err = run(command, "--limit", "nesting=1000000", str(spec), *extra)
    assert rc == 1
    assert f"{spec}:1:1: error[E152]" in err and "Traceback" not in err
    assert sys.getrecursionlimit() == before


def test_nesting_just_under_the_limit_works_end_to_end(tmp_path: Path) -> None:
    """The deepest spec the default limits accept: 199 brackets, a 200-deep expression."""
    spec = write(tmp_path / "deep.arch", "network n\ninput 3x8x8\nlet x = " + " + ".join(["0"] * 201) + "\n"
                 + "{ " * 150 + "conv2d(4, 1, padding = " + "(" * 48 + "x" + " + 0" * 199 + ")" * 48 + ") -> relu"
                 + " }" * 150 + "\n")
    assert check(spec) == []
    for argv in (["summary", str(spec)], ["compile", str(spec), "-o", str(tmp_path / "deep.py")],
                 ["render", str(spec), "-o", str(tmp_path / "deep.dot")],
                 ["convert", str(spec), "-o", str(tmp_path / "back.arch")]):
        rc, _, err = run(*argv)
        assert rc == 0, (argv, err)
    assert check(tmp_path / "back.arch") == []


# ---------------------------------------------------------------------------------------- bytes


def located(data: bytes) -> tuple[str, int, int]:
    with pytest.raises(DiagnosticError) as info:
        decode_spec_bytes(data, "x.arch")
    d = info.value.diagnostic
    return d.code, d.loc.line, d.loc.col


def test_bytes_bom_is_stripped_and_columns_unchanged(tmp_path: Path) -> None:
    assert decode_spec_bytes(b"\xef\xbb\xbfnetwork n\n", "x.arch") == "network n\n"
    spec = tmp_path / "x.arch"
    spec.write_bytes(b"\xef\xbb\xbfnetwork n\ninput 3x8x8\nconv2d(4, 3) $ relu\n")
    assert check(spec) == [("E002", 3, 14)]


def test_bytes_crlf_and_lone_cr_are_line_breaks(tmp_path: Path) -> None:
    assert decode_spec_bytes(b"a\r\nb\rc\n", "x.arch") == "a\nb\nc\n"
    spec = tmp_path / "x.arch"
    spec.write_bytes(b"network n\r\ninput 3x8x8\r\nconv2d(4, 3) $ relu\r\n")
    assert check(spec) == [("E002", 3, 14)]
    yspec = tmp_path / "x.yaml"
    yspec.write_bytes(b"network: n\r\ninput: 3x8x8\r\nlayers:\r\n- conv2d(4, 3) $ relu\r\n")
    assert check(yspec) == [("E002", 4, 16)]


def test_bytes_tabs_are_whitespace_in_text_and_errors_in_yaml_indentation(tmp_path: Path) -> None:
    spec = tmp_path / "x.arch"
    spec.write_bytes(b"network n\ninput 3x8x8\n\tconv2d(4,\t3)\t$ relu\n")
    assert check(spec) == [("E002", 3, 15)]   # a tab is one column
    yspec = tmp_path / "x.yaml"
    yspec.write_bytes(b"network: n\ninput: 3x8x8\nlayers:\n\t- relu\n")
    assert [c for c, _, _ in check(yspec)] == ["E003"]


def test_bytes_invalid_utf8_and_nul_are_located() -> None:
    assert located(b"network n\ninput 3x8x8\nconv2d(4, \xff3)\n") == ("E006", 3, 11)
    assert located("network n\n# é é\n".encode() + b"\xc3(") == ("E006", 3, 1)
    assert located("# é é \xc3(".encode("latin-1")) == ("E006", 1, 3)   # Latin-1 é: columns in characters
    assert located("# é\nab".encode() + b"\xff") == ("E006", 2, 3)
    assert located(b"network n\r\ninput 3x8x8\r\nrelu(\x00)\r\n") == ("E002", 3, 6)
    assert located(b"\xef\xbb\xbf\xfe") == ("E006", 1, 1)
