"""The language server's features as functions of an analysed document (archdsl/lsp), without a client."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("lsprotocol")

from lsprotocol import types  # noqa: E402

from archdsl import report  # noqa: E402
from archdsl.diagnostics import Loc  # noqa: E402
from archdsl.lsp import actions, completion, convert, definition, hover, symbols  # noqa: E402
from archdsl.lsp.documents import Workspace  # noqa: E402
from archdsl.pipeline import analyze  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

LIB = """\
# a library
block ConvBN(c, k = 3) {
    conv: conv2d(c, k, padding = k // 2, bias = false)
    bn: batchnorm
    relu
}
"""

NET = """\
network tiny(width = 16, num_classes = 10)
input 3x32x32
use "lib/blocks.arch"
let wide = width * 2

block Pair(c) {
    let half = c // 2
    a: ConvBN(half)
    b: ConvBN(c, k = 5)
}

stem: conv2d(width, 3, padding = 1)
p1: Pair(wide)
p2: Pair(wide)
pool: global_avgpool
flat: flatten
fc: linear(num_classes)
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.arch").write_text(LIB, encoding="utf-8")
    (tmp_path / "net.arch").write_text(NET, encoding="utf-8")
    return tmp_path


def _open(ws: Workspace, path: Path, text: str | None = None, version: int = 1) -> str:
    uri = path.as_uri()
    ws.open(uri, str(path), path.read_text(encoding="utf-8") if text is None else text, version)
    return uri


def _positions(da) -> convert.Positions:
    return convert.Positions(da.res.sources.line)


# ------------------------------------------------------------------------------------------ documents


def test_analysis_reads_the_open_text_not_the_file(tree: Path) -> None:
    ws = Workspace()
    uri = _open(ws, tree / "net.arch", NET.replace("global_avgpool", "global_avgpol"))
    assert [d.code for d in ws.analysis(uri).res.diags if d.is_error] == ["E101"]
    ws.change(uri, NET, 2)
    assert not ws.analysis(uri).res.diags.has_errors
    # the same diagnostics as `archdsl check` (rules included) for the same text
    assert [(d.code, d.loc, d.message, d.hint) for d in ws.analysis(uri).res.diags.sorted()] == \
        [(d.code, d.loc, d.message, d.hint) for d in analyze(str(tree / "net.arch"), rules=True).diags.sorted()]


def test_imports_come_from_open_documents_first(tree: Path) -> None:
    ws = Workspace()
    uri = _open(ws, tree / "net.arch")
    lib = _open(ws, tree / "lib" / "blocks.arch", LIB.replace("ConvBN", "CBR"))
    diags = ws.analyze(uri).res.diags.sorted()
    assert [(d.code, d.loc.line) for d in diags if d.is_error] == [("E101", 8), ("E101", 9)]
    assert ws.dependents(lib) == [uri]
    ws.close(lib)  # back to the file on disk
    assert not ws.analyze(uri).res.diags.has_errors


def test_imported_parse_is_cached_across_edits(tree: Path) -> None:
    ws = Workspace()
    uri = _open(ws, tree / "net.arch")
    ws.analysis(uri)
    misses = ws.cache.misses
    ws.change(uri, NET.replace("fc: linear", "fc:  linear"), 2)
    ws.analysis(uri)
    assert ws.cache.misses == misses + 1  # only the edited document was parsed again
    (tree / "lib" / "blocks.arch").write_text(LIB + "\n# touched\n", encoding="utf-8")
    ws.change(uri, NET, 3)
    ws.analysis(uri)
    assert ws.cache.misses == misses + 3  # the library changed on disk (size): parsed again


def test_half_typed_file_keeps_the_last_parsed_analysis(tree: Path) -> None:
    ws = Workspace()
    uri = _open(ws, tree / "net.arch")
    good = ws.analysis(uri)
    ws.change(uri, NET + "x: conv2d(4,", 2)
    now = ws.analysis(uri)
    assert not now.parsed and [d.code for d in now.res.diags][:1] == ["E001"]
    assert ws.usable(uri) is good


# ------------------------------------------------------------------------------------------ diagnostics


def test_diagnostic_range_code_and_hint(tree: Path) -> None:
    ws = Workspace()
    uri = _open(ws, tree / "net.arch", NET.replace("global_avgpool", "global_avgpol"))
    da = ws.analysis(uri)
    (d,) = convert.document_diagnostics([x for x in da.res.diags.sorted() if x.is_error], da.path,
                                        _positions(da), lambda f: Path(f).as_uri())
    assert (d.code, d.source, d.severity) == ("E101", "archdsl", types.DiagnosticSeverity.Error)
    assert (d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character) == (14, 6, 14, 19)
    assert d.message == "unknown op or block 'global_avgpol'\nhint: did you mean 'global_avgpool'?"
    assert d.code_description.href.endswith("/docs/diagnostics.md")


def test_labels_become_related_information(tmp_path: Path) -> None:
    spec = tmp_path / "mix.arch"
    spec.write_text(textwrap.dedent("""\
        network n
        input 3x32x32
        mix: concat {
            a: conv2d(4, 3, stride = 2, padding = 1)
            b: conv2d(4, 1)
        }
        """), encoding="utf-8")
    ws = Workspace()
    da = ws.analysis(_open(ws, spec))
    e201 = [d for d in da.res.diags.sorted() if d.code == "E201"]
    (d,) = convert.document_diagnostics(e201, da.path, _positions(da), lambda f: Path(f).as_uri())
    assert (d.range.start.line, d.range.start.character) == (2, 5)
    assert [(r.location.range.start.line, r.location.uri) for r in d.related_information] == \
        [(lb.loc.line - 1, spec.as_uri()) for lb in e201[0].labels]
    assert d.related_information


def test_a_broken_import_is_shown_at_the_use_line(tree: Path) -> None:
    (tree / "lib" / "blocks.arch").write_text(LIB.replace("bn: batchnorm", "bn: batchnorm("), encoding="utf-8")
    ws = Workspace()
    da = ws.analysis(_open(ws, tree / "net.arch"))
    out = convert.document_diagnostics(da.res.diags.sorted(), da.path, _positions(da), lambda f: Path(f).as_uri(),
                                       da.res.spec.uses[0].loc)
    first = out[0]
    assert first.code == "E001" and (first.range.start.line, first.range.start.character) == (2, 4)
    assert first.related_information[0].location.uri == (tree / "lib" / "blocks.arch").as_uri()


def test_a_syntax_error_is_ranged_at_its_column(tree: Path) -> None:
    # a file that does not parse still lends its text to the ranges: the token, not the line's start
    ws = Workspace()
    text = NET.replace("stem: conv2d(width, 3, padding = 1)", 'stem: conv2d(width, 3, padding = 1)) # "é"')
    da = ws.analysis(_open(ws, tree / "net.arch", text))
    (d,) = convert.document_diagnostics(da.res.diags.sorted(), da.path, _positions(da), lambda f: Path(f).as_uri())
    assert (d.code, d.range.start.line, d.range.start.character, d.range.end.character) == ("E001", 11, 35, 36)
    # and a library that does not parse: its location, shown as related information, keeps its column
    (tree / "lib" / "blocks.arch").write_text(LIB.replace("bn: batchnorm", "bn: batchnorm )"), encoding="utf-8")
    ws = Workspace()
    da = ws.analysis(_open(ws, tree / "net.arch"))
    d = convert.document_diagnostics(da.res.diags.sorted(), da.path, _positions(da), lambda f: Path(f).as_uri(),
                                     da.res.spec.uses[0].loc)[0]
    where = d.related_information[0].location.range
    assert (d.code, where.start.line, where.start.character, where.end.character) == ("E001", 3, 18, 19)


def test_positions_count_utf16_units() -> None:
    line = 'let s = "\U0001F600é" + x'
    pos = convert.Positions(lambda f, n: line)
    r = pos.range(Loc("f", 1, line.index("x") + 1))
    assert (r.start.character, r.end.character) == (line.index("x") + 1, line.index("x") + 2)  # one surrogate pair
    utf8 = convert.Positions(lambda f, n: line, types.PositionEncodingKind.Utf8)
    assert utf8.position("f", 1, line.index("x") + 1).character == len(line[:line.index("x")].encode())
    assert convert.from_units(line, line.index("x") + 1, types.PositionEncodingKind.Utf16) == line.index("x")


# ------------------------------------------------------------------------------------------ hover


def test_hover_on_a_layer_shows_shape_costs_and_receptive_field(tree: Path) -> None:
    ws = Workspace()
    da = ws.analysis(_open(ws, tree / "net.arch"))
    row = next(r for r in report.rows(da.res.graph) if r.path == "stem")
    text = hover.hover(da, 11, 8).contents.value
    assert text.startswith("**conv2d** `stem`")
    assert f"output `16x32x32` · params {row.params:,} · MACs {row.macs:,} · receptive field 3x3 (stride 1)" in text


def test_hover_on_a_block_call_sums_its_scope(tree: Path) -> None:
    ws = Workspace()
    da = ws.analysis(_open(ws, tree / "net.arch"))
    rows = [r for r in report.rows(da.res.graph) if r.path.startswith("p2.")]
    text = hover.hover(da, 13, 5).contents.value
    assert text.startswith("```archdsl\nblock Pair(c)\n```")
    assert f"- `p2`: output `32x32x32` · params {sum(r.params for r in rows):,} · " \
           f"MACs {sum(r.macs for r in rows):,} · 6 nodes" in text


def test_hover_in_a_block_lists_every_instance(tree: Path) -> None:
    ws = Workspace()
    da = ws.analysis(_open(ws, tree / "net.arch"))
    text = hover.hover(da, 7, 8).contents.value   # a: ConvBN(half) inside Pair
    assert "block ConvBN(c, k = 3)" in text and f"defined at {tree / 'lib' / 'blocks.arch'}:2:7" in text
    assert "- `p1.a`: output `16x32x32`" in text and "- `p2.a`: output `16x32x32`" in text
    assert hover.hover(da, 5, 7).contents.value == "```archdsl\nblock Pair(c)\n```"
    assert hover.hover(da, 0, 3) is None


def test_hover_on_a_yaml_spec() -> None:
    ws = Workspace()
    path = ROOT / "specs" / "googlenet.yaml"
    da = ws.analysis(_open(ws, path))
    line = next(i for i, t in enumerate(path.read_text().split("\n")) if t.strip().startswith("- maxpool1:"))
    assert "output `64x56x56`" in hover.hover(da, line, 16).contents.value


# ------------------------------------------------------------------------------------------ definition


def test_definitions(tree: Path) -> None:
    ws = Workspace()
    da = ws.analysis(_open(ws, tree / "net.arch"))
    lines = NET.split("\n")
    lib = str(tree / "lib" / "blocks.arch")

    def at(line: int, word: str, nth: int = 0) -> tuple[str, int, int] | None:
        char = lines[line].index(word) + 1 if nth == 0 else lines[line].rindex(word) + 1
        t = definition.definition(da, lines[line], line, char)
        return None if t is None else (t.file, t.loc.line, t.loc.col)

    assert at(7, "ConvBN") == (lib, 2, 7)                        # imported block
    assert at(12, "Pair") == (str(tree / "net.arch"), 6, 7)       # local block
    assert at(2, "lib/") == (lib, 1, 1)                           # the use string -> the file
    assert at(12, "wide") == (str(tree / "net.arch"), 4, 5)       # let
    assert at(7, "half") == (str(tree / "net.arch"), 7, 9)        # a let in the block
    assert at(8, "c", nth=1) == (str(tree / "net.arch"), 6, 12)   # the block's parameter
    assert at(16, "num_classes") == (str(tree / "net.arch"), 1, 26)  # network parameter
    assert at(11, "padding") is None


# ------------------------------------------------------------------------------------------ completion


def _labels(text: str, da=None) -> list[str]:
    return [i.label for i in completion.complete(text, len(text), da)]


def test_completion_contexts_on_a_half_typed_file(tree: Path) -> None:
    ws = Workspace()
    uri = _open(ws, tree / "net.arch")
    good = ws.analysis(uri)
    head = NET + "x: "
    assert _labels(head + "conv", good) == ["conv2d", "ConvBN"]   # case-insensitive prefix
    assert "ConvBN" in _labels(head + "Con", good)           # imported, from the last analysis
    assert _labels(head + "conv2d(8, 3, pad", good) == ["padding"]
    params = completion.complete(head + "conv2d(8, ", len(head) + 10, good)
    assert [i.label for i in params[:7]] == ["out", "kernel", "stride", "padding", "dilation", "groups", "bias"]
    assert params[0].insert_text == "out = "
    assert _labels(head + "linear(out = num", good) == ["num_classes"]
    assert _labels(head + "ConvBN(", good)[:2] == ["c", "k"]
    assert _labels(NET + "let y = wi", good) == ["wide", "width"]   # lets, then network parameters
    assert _labels(NET + "stem2: conv2d(wi", good) == ["wide", "width"]  # a positional value
    inside = NET + "block Q(zeta, eta = 2) {\n    conv2d(ze"
    assert _labels(inside, good) == ["zeta"]
    assert _labels(NET + "# conv") == [] and _labels(NET + 'use "li') == []
    item = next(i for i in completion.complete(head + "conv", len(head) + 4, None) if i.label == "conv2d")
    assert item.detail.startswith("conv2d(out, kernel, stride = 1")


@pytest.mark.parametrize("above", ["input 3x32x32", "flat: flatten", "let y = wide * 2", "    let h = c // 2"])
def test_completion_at_the_start_of_a_line_offers_layers(tree: Path, above: str) -> None:
    # the word ending the line above is no prefix, and a finished let/input line does not continue
    text = NET + above + "\n"
    labels = _labels(text)
    assert "conv2d" in labels and "relu" in labels and "concat" in labels
    assert _labels(text + "ba") == ["batchnorm"]
    assert "wide" in _labels(NET + "let y = wide or\n    ")   # an operator at the end continues it


def test_completion_in_a_yaml_list_item_offers_layers() -> None:
    # a YAML sequence's "- " is where a layer goes, not a minus before an operand
    head = "network: n(width = 8)\ninput: 3x32x32\nlayers:\n  - conv1: conv2d(width, 3)\n  - "
    assert "conv2d" in _labels(head) and "relu" in _labels(head)
    assert _labels(head + "co") == ["conv2d", "concat"]
    assert "width" in _labels("network n(width = 8)\nlet y = width - ")   # still a minus in an expression


# ------------------------------------------------------------------------------------------ symbols, actions


def test_document_symbols(tree: Path) -> None:
    ws = Workspace()
    da = ws.analysis(_open(ws, tree / "net.arch"))
    syms = symbols.document_symbols(da.res.spec, da.path, _positions(da).range)
    assert [(s.name, s.detail) for s in syms] == [
        ("tiny", "network(width, num_classes)"), ("wide", "let"), ("Pair", "block Pair(c)"), ("stem", "conv2d"),
        ("p1", "Pair"), ("p2", "Pair"), ("pool", "global_avgpool"), ("flat", "flatten"), ("fc", "linear")]
    assert [c.name for c in syms[2].children] == ["a", "b"]
    assert (syms[2].range.start.line, syms[2].range.start.character) == (5, 6)


def test_no_quick_fix_where_the_transform_leaves_the_conv_alone(tree: Path) -> None:
    ws = Workspace()
    uri = _open(ws, tree / "net.arch")
    da = ws.analysis(uri)
    assert [d.code for d in da.res.diags.sorted() if d.code == "R301"] == ["R301"]  # in the imported ConvBN
    with ws.reading():
        assert actions.code_actions(da, uri, 20, 0, 20, (), lambda d: None) == []


def test_quick_fix_rewrites_the_in_memory_text(tmp_path: Path) -> None:
    spec = tmp_path / "fact.arch"
    text = textwrap.dedent("""\
        # keep me
        network fact
        input 3x32x32
        stem: conv2d(16, 3, padding = 1)  # and me
        big: conv2d(32, 5, padding = 2)
        bn: batchnorm
        """)
    spec.write_text("network stale\ninput 3x8x8\nrelu\n", encoding="utf-8")  # the disk copy is not used
    ws = Workspace()
    uri = _open(ws, spec, text)
    da = ws.analysis(uri)
    with ws.reading():
        (fix,) = actions.code_actions(da, uri, 7, 4, 4, (), lambda d: d.code)
    (edit,) = fix.edit.changes[uri]
    assert fix.diagnostics == ["R301"] and fix.kind == types.CodeActionKind.QuickFix
    assert edit.new_text == text.replace(
        "big: conv2d(32, 5, padding = 2)",
        "big_1: conv2d(21, 3, padding = 1, bias = false) -> bn_1: batchnorm -> relu -> "
        "big_2: conv2d(32, 3, padding = 1)")
    after = tmp_path / "after.arch"
    after.write_text(edit.new_text, encoding="utf-8")
    assert not [d for d in analyze(after, rules=True).diags if d.code == "R301"]


def test_settings_take_only_valid_values() -> None:
    server = pytest.importorskip("archdsl.lsp.server")
    s = server.Settings()
    s.update({"debounce": 50, "rules": False, "searchPaths": ["a"], "severity": "info"})
    assert (s.debounce_ms, s.rules, s.search_paths, s.severity) == (50, False, ("a",), "info")
    s.update({"debounce": -1, "rules": "no", "searchPaths": [1], "severity": "loud"})
    assert (s.debounce_ms, s.rules, s.search_paths, s.severity) == (50, False, ("a",), "info")
    s.update(None)
    assert server.path_of("untitled:Untitled-1").endswith("Untitled-1.arch")
    assert server.path_of("file:///tmp/x.yaml") == "/tmp/x.yaml"


def test_zoo_spec_analyses_in_the_workspace_as_on_the_command_line(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    ws = Workspace()
    path = tmp_path / "specs" / "resnet18.arch"
    da = ws.analysis(_open(ws, path))
    cold = analyze(str(path), rules=True)
    assert da.res.graph.total_params() == cold.graph.total_params()
    assert [d.code for d in da.res.diags.sorted()] == [d.code for d in cold.diags.sorted()]


def test_other_commands_do_not_import_pygls(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from archdsl.cli import main; rc = main(['check', sys.argv[1]]); "
            "print(sorted(m for m in ('pygls', 'lsprotocol', 'archdsl.lsp.server') if m in sys.modules), rc)")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "specs" / "resnet18.arch")], capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[] 0"


def test_hover_shows_what_summary_shows_for_a_symbolic_input(tmp_path: Path) -> None:
    spec = tmp_path / "sym.arch"
    spec.write_text("network s\ninput 3xHxW\nstem: conv2d(16, 3, stride = 2, padding = 1)\nrelu\n", encoding="utf-8")
    ws = Workspace()
    da = ws.analysis(_open(ws, spec))
    if da.res.graph is None:
        pytest.skip("no symbolic input sizes (input 3xHxW) in this tree")
    header, stem = report.summary_table(da.res.graph)[:2]
    cells = dict(zip(header, stem, strict=True))
    text = hover.hover(da, 2, 8).contents.value
    assert f"output `{cells['output']}` · params {cells['params']} · MACs {cells['MACs']}" in text
