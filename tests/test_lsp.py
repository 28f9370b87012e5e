"""End to end: the real ``archdsl lsp`` subprocess driven over stdio by pytest-lsp's client.

One server for the module (start-up is the slow part); each test opens its own documents.  The
debounce is set to 20 ms through initializationOptions so that edits are analysed at once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

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
    a: ConvBN(c)
    b: ConvBN(c)
}

stem: conv2d(width, 3, padding = 1)
p1: Pair(wide)
pool: global_avgpol
flat: flatten
fc: linear(num_classes)
"""

FACT = """\
# a 5x5 conv that two 3x3 convs replace
network fact(num_classes = 10)
input 3x32x32
stem: conv2d(16, 3, padding = 1)
relu
big: conv2d(32, 5, padding = 2)
bn: batchnorm
relu
pool: global_avgpool
flat: flatten
fc: linear(num_classes)
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lsp")
    (root / "lib").mkdir()
    (root / "lib" / "blocks.arch").write_text(LIB, encoding="utf-8")
    (root / "net.arch").write_text(NET, encoding="utf-8")
    (root / "fact.arch").write_text(FACT, encoding="utf-8")
    return root


@pytest_lsp.fixture(scope="module",
                    config=ClientServerConfig(server_command=[sys.executable, "-m", "archdsl", "lsp"]))
async def client(lsp_client: LanguageClient, tree: Path):
    # kept for the tests that read the server's capabilities
    lsp_client.initialize_result = await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        root_uri=tree.as_uri(), initialization_options={"debounce": 20}))
    yield
    await lsp_client.shutdown_session()


async def _open(client: LanguageClient, path: Path, text: str | None = None) -> str:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="archdsl", version=1, text=path.read_text(encoding="utf-8") if text is None else text)))
    await _diagnostics(client, uri)
    return uri


async def _diagnostics(client: LanguageClient, uri: str) -> list[types.Diagnostic]:
    """Wait for the next publishDiagnostics of ``uri`` and return its diagnostics."""
    client.diagnostics.pop(uri, None)
    while uri not in client.diagnostics:
        await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return list(client.diagnostics[uri])


def _pos(line: int, char: int) -> types.Position:
    return types.Position(line=line, character=char)


@pytest.mark.asyncio(loop_scope="module")
async def test_diagnostic_hover_definition_completion_and_fix(client: LanguageClient, tree: Path) -> None:
    uri = await _open(client, tree / "net.arch")
    diags = client.diagnostics[uri]
    assert [(d.code, d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character)
            for d in diags] == [("E101", 12, 6, 12, 19)]
    (d,) = diags
    assert d.severity == types.DiagnosticSeverity.Error and d.source == "archdsl"
    assert d.message.startswith("unknown op or block 'global_avgpol'")
    assert "hint: did you mean 'global_avgpool'?" in d.message

    doc = types.TextDocumentIdentifier(uri=uri)
    hover = await client.text_document_hover_async(types.HoverParams(text_document=doc, position=_pos(10, 8)))
    assert hover is not None and "output `16x32x32`" in hover.contents.value
    assert "params 448" in hover.contents.value

    # a block imported through `use`, then a local one
    loc = await client.text_document_definition_async(types.DefinitionParams(text_document=doc, position=_pos(6, 9)))
    assert loc.uri == (tree / "lib" / "blocks.arch").as_uri()
    assert (loc.range.start.line, loc.range.start.character, loc.range.end.character) == (1, 6, 12)
    loc = await client.text_document_definition_async(types.DefinitionParams(text_document=doc, position=_pos(11, 5)))
    assert loc.uri == uri and (loc.range.start.line, loc.range.start.character) == (5, 6)

    got = await client.text_document_completion_async(types.CompletionParams(text_document=doc,
                                                                             position=_pos(10, 10)))
    labels = [item.label for item in got.items]
    assert "conv2d" in labels and "relu" not in labels
    assert next(i for i in got.items if i.label == "conv2d").detail.startswith("conv2d(out, kernel, stride = 1")

    # fix the typo: the error clears
    fixed = NET.replace("global_avgpol", "global_avgpool")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=fixed)]))
    assert await _diagnostics(client, uri) == []


@pytest.mark.asyncio(loop_scope="module")
async def test_garbage_keeps_the_server_alive(client: LanguageClient, tree: Path) -> None:
    uri = await _open(client, tree / "garbage.arch", "block {{{ ((( -> \x00 network")
    doc = types.TextDocumentIdentifier(uri=uri)
    assert client.diagnostics[uri] and client.diagnostics[uri][0].code == "E002"
    for line, char in ((0, 0), (0, 7), (5, 3)):
        await client.text_document_hover_async(types.HoverParams(text_document=doc, position=_pos(line, char)))
        await client.text_document_completion_async(types.CompletionParams(text_document=doc,
                                                                           position=_pos(line, char)))
        await client.text_document_definition_async(types.DefinitionParams(text_document=doc,
                                                                           position=_pos(line, char)))
    await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=doc))
    # still answering: a real document analyses
    net = await _open(client, tree / "net.arch", NET.replace("global_avgpol", "global_avgpool"))
    assert list(client.diagnostics[net]) == []


@pytest.mark.asyncio(loop_scope="module")
async def test_the_line_after_the_final_newline_is_empty(client: LanguageClient, tree: Path) -> None:
    # the cursor there is on no layer: no hover of the line above, and a layer can be completed
    text = FACT.replace("fc: linear(num_classes)\n", "fc: linear(num_classes) -> relu\n")
    uri = await _open(client, tree / "end.arch", text)
    doc = types.TextDocumentIdentifier(uri=uri)
    last = text.count("\n")
    assert await client.text_document_hover_async(types.HoverParams(text_document=doc, position=_pos(last, 0))) \
        is None
    above = await client.text_document_hover_async(types.HoverParams(text_document=doc, position=_pos(last - 1, 4)))
    assert above is not None and "**linear**" in above.contents.value
    got = await client.text_document_completion_async(types.CompletionParams(text_document=doc,
                                                                             position=_pos(last, 0)))
    labels = [item.label for item in got.items]
    assert "conv2d" in labels and "relu" in labels and "batchnorm" in labels


@pytest.mark.asyncio(loop_scope="module")
async def test_a_half_typed_line_does_not_shift_hovers(client: LanguageClient, tree: Path) -> None:
    # the last analysis that parsed answers only for the lines that are still where it read them
    text = FACT
    uri = await _open(client, tree / "typing.arch", text)
    doc = types.TextDocumentIdentifier(uri=uri)
    typed = text.replace("big: conv2d", "x: conv2d(\nbig: conv2d")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=typed)]))
    assert [d.code for d in await _diagnostics(client, uri)] == ["E001"]
    lines = typed.split("\n")

    async def hover(line: int) -> str | None:
        got = await client.text_document_hover_async(types.HoverParams(text_document=doc, position=_pos(line, 1)))
        return got.contents.value.split("\n")[0] if got else None

    assert await hover(lines.index("stem: conv2d(16, 3, padding = 1)")) == "**conv2d** `stem`"  # above: unmoved
    assert await hover(lines.index("bn: batchnorm")) is None  # the last analysis that parsed has relu there


@pytest.mark.asyncio(loop_scope="module")
async def test_only_lsp_line_breaks_count(client: LanguageClient, tree: Path) -> None:
    # a form feed or U+2028 in a comment ends no line (str.splitlines and pygls' Document.lines say it
    # does): definition and completion after it look at the line the editor means, and the server takes
    # whole-document changes, which pygls cannot apply to the wrong line
    sync = client.initialize_result.capabilities.text_document_sync
    assert sync.change == types.TextDocumentSyncKind.Full
    text = FACT.replace("# a 5x5 conv", "# a\x0c5x5\u2028conv")
    uri = await _open(client, tree / "breaks.arch", text)
    doc = types.TextDocumentIdentifier(uri=uri)
    fc = text.split("\n").index("fc: linear(num_classes)")
    loc = await client.text_document_definition_async(types.DefinitionParams(text_document=doc,
                                                                             position=_pos(fc, 14)))
    assert loc is not None and (loc.range.start.line, loc.range.start.character) == (1, 13)
    got = await client.text_document_completion_async(types.CompletionParams(text_document=doc,
                                                                             position=_pos(fc, 4)))
    assert "linear" in [item.label for item in got.items]


@pytest.mark.asyncio(loop_scope="module")
async def test_factorize_quick_fix(client: LanguageClient, tree: Path) -> None:
    uri = await _open(client, tree / "fact.arch")
    r301 = [d for d in client.diagnostics[uri] if d.code == "R301"]
    assert [(d.range.start.line, d.range.start.character) for d in r301] == [(5, 5)]
    got = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=r301[0].range,
        context=types.CodeActionContext(diagnostics=r301)))
    (action,) = got
    assert action.title.startswith("Factorize 5x5 convs (1 conv;")
    (edit,) = action.edit.changes[uri]
    assert "big_1: conv2d(21, 3, padding = 1, bias = false) -> bn_1: batchnorm -> relu -> " \
           "big_2: conv2d(32, 3, padding = 1)" in edit.new_text
    assert edit.new_text.startswith("# a 5x5 conv that two 3x3 convs replace\n")


@pytest.mark.asyncio(loop_scope="module")
async def test_editing_an_open_library_rechecks_its_importers(client: LanguageClient, tree: Path) -> None:
    net = await _open(client, tree / "net.arch", NET.replace("global_avgpol", "global_avgpool"))
    assert list(client.diagnostics[net]) == []
    lib = await _open(client, tree / "lib" / "blocks.arch")
    client.diagnostics.pop(net, None)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=lib, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=LIB.replace("ConvBN", "CBR"))]))
    diags = await _diagnostics(client, net)  # the unsaved library text is what net.arch imports
    assert [(d.code, d.range.start.line, d.range.start.character) for d in diags] == [("E101", 6, 7), ("E101", 7, 7)]


def test_no_pygls_is_a_located_error(tmp_path: Path) -> None:
    import subprocess

    code = ("import sys; sys.modules['pygls'] = None; sys.modules['pygls.lsp'] = None; "
            "from archdsl.cli import main; sys.exit(main(['lsp']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    assert out.stderr.startswith("<command line>:1:1: error[E345]: archdsl lsp needs pygls, which is not installed")
    assert "= hint: pip install 'archdsl[lsp]'" in out.stderr
    assert out.stdout == ""
