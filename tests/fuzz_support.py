"""Shared checks of the fuzz tests: a spec goes through every stage and only diagnostics come out.

``run_everything`` is the in-process counterpart of ``fuzz/fuzz_specs.py``: analysis with the design
rules, diagnostic formatting, both printers (each printed form must re-parse to the same AST) and,
for a clean network, the summary reports, the DOT renderer (source only) and the code generator.
"""

from __future__ import annotations

from pathlib import Path

from archdsl import report
from archdsl.backends import render
from archdsl.backends.codegen import CodegenError, generate
from archdsl.diagnostics import Diagnostic, format_json, format_text
from archdsl.frontend.loader import parse_source
from archdsl.frontend.printer import to_text, to_yaml
from archdsl.pipeline import Analysis, analyze

#: Diagnostics that report archdsl's own bugs (a design rule that raised; generated code that does
#: not parse or calls a forbidden builtin): for a fuzz test they are failures, like an exception.
INTERNAL_ERRORS = frozenset({"R000", "E399"})


def assert_located(diags: list[Diagnostic], files: dict[str, str], what: str = "") -> None:
    """Every diagnostic points into one of ``files`` (name -> text): a real line, a column on it."""
    for d in diags:
        assert d.loc.file in files, f"{what}: {d.code} {d.message!r} is located in {d.loc.file!r}, not a spec file"
        lines = files[d.loc.file].split("\n")
        assert 1 <= d.loc.line <= len(lines), f"{what}: {d.code} {d.message!r} at line {d.loc.line} of {len(lines)}"
        width = len(lines[d.loc.line - 1])
        assert 1 <= d.loc.col <= width + 1, f"{what}: {d.code} {d.message!r} at {d.loc} (line has {width} chars)"


def run_everything(path: Path, rules: bool = True) -> Analysis:
    """Analyze ``path`` and push the result through every consumer; returns the analysis."""
    res = analyze(path, rules=rules)
    diags = res.diags.sorted()
    assert not [d for d in diags if d.code in INTERNAL_ERRORS], [f"{d.code} {d.message}" for d in diags]
    for d in diags:
        format_text(d, res.sources)
    format_json(diags)
    if res.spec is not None:
        text, yaml = to_text(res.spec), to_yaml(res.spec)
        assert parse_source(text, "<printed>") == res.spec, f"printed text does not re-parse equal:\n{text}"
        assert parse_source(yaml, "<printed>", yaml=True) == res.spec, f"printed YAML does not re-parse equal:\n{yaml}"
    if res.ok and res.graph is not None and res.graph.input_shape is not None:
        graph = res.graph
        report.render_text(graph)
        report.render_json(graph, depth=1)
        model = render.build_model(graph, res.diags, frozenset(render.SHOW_KEYS), res.file)
        for depth in (None, 1):
            render.to_dot(model, render.initial_open(model, depth))
        try:
            generate(graph, source_name=str(path))
        except CodegenError as exc:  # a located refusal is an answer
            assert exc.diagnostics and all(d.is_error for d in exc.diagnostics)
            assert not [d for d in exc.diagnostics if d.code in INTERNAL_ERRORS], exc.diagnostics
    return res
