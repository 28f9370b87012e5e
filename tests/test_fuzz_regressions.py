"""Regression tests for what fuzzing found (``fuzz/fuzz_specs.py`` and the property tests).

Each test holds the minimized input and checks what the fixed code does with it; see the
"Fuzzing" section of docs/robustness.md for the runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_support import assert_located, run_everything

from archdsl.frontend.loader import parse_source
from archdsl.frontend.printer import to_yaml


@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029"], ids=["U+0085", "U+2028", "U+2029"])
def test_yaml_printer_escapes_yaml11_line_breaks(char: str, tmp_path: Path) -> None:
    """A text spec may hold U+0085/U+2028/U+2029 in a string; PyYAML wrote them raw, which the YAML
    front end (rightly) refuses, so ``convert`` produced YAML that did not load.  The printer now
    double-quotes such strings, where YAML escapes them (\\N, \\L, \\P)."""
    text = f'network n(s = "a{char}b")\ninput 3x8x8\nconv2d(4, 3, padding = "{char}") -> relu\n'
    spec = parse_source(text, "t.arch")
    printed = to_yaml(spec)
    assert char not in printed
    assert parse_source(printed, "t.yaml", yaml=True) == spec
    path = tmp_path / "t.yaml"
    path.write_text(printed, encoding="utf-8")
    res = run_everything(path)
    assert [d.code for d in res.diags.sorted() if d.is_error] == ["E106"]  # the bad padding, located:
    assert_located(res.diags.sorted(), {str(path): printed})


def test_yaml_printer_keeps_a_block_defined_twice(tmp_path: Path) -> None:
    """Found by atheris (a zoo spec with its blocks duplicated): the YAML printer keyed ``blocks:`` by
    header, so the second of two same-named blocks vanished and the YAML form analyzed clean where
    the text form has E111.  The later header is now spelled differently (``B`` -> ``B()``)."""
    text = "network n\ninput 3x8x8\nblock B { relu }\nblock B { relu }\nblock C(a) {}\nblock C(a) {}\nB\n"
    spec = parse_source(text, "t.arch")
    printed = to_yaml(spec)
    assert parse_source(printed, "t.yaml", yaml=True) == spec
    codes = {}
    for name, src in (("t.arch", text), ("t.yaml", printed)):
        path = tmp_path / name
        path.write_text(src, encoding="utf-8")
        res = run_everything(path)
        assert_located(res.diags.sorted(), {str(path): src})
        codes[name] = sorted(d.code for d in res.diags.sorted() if d.is_error)
    assert codes["t.arch"] == codes["t.yaml"] == ["E111", "E111"]


@pytest.mark.parametrize("body", [
    "residual { }",                          # x + x: body and identity shortcut
    "residual { } -> residual { }",          # the minimized grammar-fuzz input: codegen IndexError
    "residual { {} } shortcut s { }",
    "concat { {} {} }",                      # cat([x, x])
    "x: concat { a: {} b: { } } -> relu",
    "dense(2) { }",                          # every layer the identity
])
def test_merge_of_a_tensor_with_itself_is_an_error(body: str, tmp_path: Path) -> None:
    """Found by the grammar fuzz test: ``network relu input 1x1x1 residual { } -> residual { }``
    crashed the code generator (IndexError in ``_sum``).  The IR (a DiGraph) kept one edge for the
    two identical inputs of the add, so x + x became x — in the analysis too, and cat([x, x])
    silently lost half its channels.  Such merges are now an error (E117) at the construct."""
    text = f"network n\ninput 2x4x4\n{body}\n"
    path = tmp_path / "t.arch"
    path.write_text(text, encoding="utf-8")
    res = run_everything(path)
    errors = [d for d in res.diags.sorted() if d.is_error]
    assert errors and {d.code for d in errors} == {"E117"}, [f"{d.code} {d.message}" for d in errors]
    assert_located(errors, {str(path): text})
    assert all(d.loc.line == 3 for d in errors)


@pytest.mark.parametrize("body", ["concat { {} relu }", "residual { relu } shortcut s { }", "concat { {} }",
                                  "residual { relu }"])
def test_merges_with_one_identity_input_stay_valid(body: str, tmp_path: Path) -> None:
    path = tmp_path / "t.arch"
    path.write_text(f"network n\ninput 2x4x4\n{body}\n", encoding="utf-8")
    res = run_everything(path)
    assert res.ok, [f"{d.code} {d.message}" for d in res.diags.sorted()]
