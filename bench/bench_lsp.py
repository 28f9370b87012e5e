"""Benchmark: what ``archdsl lsp`` does after a one-line edit of a ~700-node spec, against references
measured in the same run.

For each spec, alternating one-line edits of the open document (a layer's argument changed back and
forth, so every analysis sees new text), ``--repeats`` times:

- ``edit``: the server's work for one keystroke once the debounce fires: analysis of the in-memory
  text (design rules included) with the imported library's parse taken from the cache, and the
  conversion of the diagnostics to LSP;
- ``edit+hover``: that, then the first hover on a layer of the new analysis (which builds the
  per-analysis indexes);
- ``cold analyze``: ``pipeline.analyze(path, rules=True)`` in this process, every file read and parsed;
- ``check``: an ``archdsl check`` subprocess (interpreter start-up included), what an editor
  integration without a server would run per save;
- ``imports parse``: parsing the imported files alone, the part of a cold analysis the cache saves;
- ``round trip`` (``--round-trip``): through a real ``archdsl lsp`` subprocess with a 0 ms debounce, from
  sending ``didChange`` to receiving its ``publishDiagnostics`` (JSON-RPC both ways included).

Medians; the ratios are cold analyze / edit and check / edit.  The graph node count is printed so the
"700-node" claim can be checked (densenet201 has 709 nodes with its input and output).

Run: ``python bench/bench_lsp.py [--specs densenet201,inception_resnet_v2] [--repeats 30]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archdsl.frontend.loader import is_yaml, parse_source  # noqa: E402
from archdsl.lsp import convert, hover  # noqa: E402
from archdsl.lsp.documents import Workspace  # noqa: E402
from archdsl.pipeline import analyze  # noqa: E402


def _ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _edits(text: str) -> tuple[str, str, int]:
    """Two versions of ``text`` differing in one line, and that line's 0-based number: the last
    ``num_classes = N`` default (a one-line edit that changes the network) or an appended comment."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if "num_classes = 1000" in line:
            other = lines[:i] + [line.replace("num_classes = 1000", "num_classes = 999")] + lines[i + 1:]
            return text, "\n".join(other), i
    return text, text + "\n# edited\n", len(lines)


def _hover_position(da) -> tuple[int, int]:
    """A layer call written in the document itself (the zoo's specs call into their libraries: the first
    call of the document, a block call then)."""
    spec = da.res.spec
    from archdsl.lsp import index

    calls = [c for c in index.calls(spec) if c.loc.file == da.path]
    if not calls:
        return 0, 0
    return calls[0].loc.line - 1, calls[0].loc.col - 1


def bench_spec(name: str, repeats: int) -> dict[str, float]:
    """Medians (ms) of the edit, edit+hover, cold analyze and check for ``specs/NAME.arch``."""
    path = ROOT / "specs" / f"{name}.arch"
    a, b, _ = _edits(path.read_text(encoding="utf-8"))
    ws = Workspace()
    uri = path.as_uri()
    ws.open(uri, str(path), a, 0)
    first = ws.analysis(uri)
    nodes = first.res.graph.g.number_of_nodes() if first.res.graph is not None else 0
    line, char = _hover_position(first)
    edit, edit_hover, cold, check, parse = [], [], [], [], []
    imported = [Path(f) for f in first.imports]
    for i in range(repeats):  # edit and cold analysis alternate, so that drift affects both alike
        ws.change(uri, b if i % 2 == 0 else a, i + 1)
        t = time.perf_counter()
        da = ws.analyze(uri)
        convert.document_diagnostics(da.res.diags.sorted(), da.path, convert.Positions(da.res.sources.line), str)
        edit.append(time.perf_counter() - t)
        hover.hover(da, line, char)
        edit_hover.append(time.perf_counter() - t)
        t = time.perf_counter()
        analyze(str(path), rules=True)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        for f in imported:
            parse_source(f.read_text(encoding="utf-8"), str(f), yaml=is_yaml(f))
        parse.append(time.perf_counter() - t)
    for _ in range(max(3, repeats // 5)):  # a subprocess costs ~0.4 s: fewer samples suffice
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "archdsl", "check", str(path)], capture_output=True, check=False)
        check.append(time.perf_counter() - t)
    return {"nodes": nodes, "edit": _ms(edit), "edit+hover": _ms(edit_hover), "cold analyze": _ms(cold),
            "check": _ms(check), "imports parse": _ms(parse), "cache hits": ws.cache.hits,
            "cache misses": ws.cache.misses}


async def _round_trip(name: str, repeats: int) -> float:
    """Median ms from didChange to the publishDiagnostics of that version, over a real server."""
    import asyncio

    from lsprotocol import types
    from pygls.lsp.client import LanguageClient

    path = ROOT / "specs" / f"{name}.arch"
    a, b, _ = _edits(path.read_text(encoding="utf-8"))
    uri = path.as_uri()
    client = LanguageClient("bench", "1")
    got: dict[int, asyncio.Future] = {}

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def published(params: types.PublishDiagnosticsParams) -> None:
        fut = got.get(params.version or 0)
        if fut is not None and not fut.done():
            fut.set_result(time.perf_counter())

    await client.start_io(sys.executable, "-m", "archdsl", "lsp", "-q", "--debounce", "0")
    await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities()))
    client.initialized(types.InitializedParams())
    loop = asyncio.get_running_loop()
    got[1] = loop.create_future()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="archdsl", version=1, text=a)))
    await got[1]
    samples = []
    for i in range(repeats):
        version = i + 2
        got[version] = loop.create_future()
        t = time.perf_counter()
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=b if i % 2 == 0 else a)]))
        samples.append(await got[version] - t)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return _ms(samples)


def main() -> None:
    """Print one row per spec."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--specs", default="densenet201,inception_resnet_v2")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--round-trip", action="store_true", help="also time didChange -> publishDiagnostics over a "
                                                               "real server (needs pygls)")
    args = ap.parse_args()
    print(f"{'spec':<22}{'nodes':>6}{'edit ms':>10}{'+hover ms':>11}{'cold ms':>10}{'check ms':>10}"
          f"{'imports ms':>12}{'cold/edit':>11}{'check/edit':>12}{'cache hit/miss':>16}")
    for name in args.specs.split(","):
        r = bench_spec(name.strip(), args.repeats)
        print(f"{name:<22}{r['nodes']:>6}{r['edit']:>10.1f}{r['edit+hover']:>11.1f}{r['cold analyze']:>10.1f}"
              f"{r['check']:>10.1f}{r['imports parse']:>12.1f}{r['cold analyze'] / r['edit']:>11.2f}"
              f"{r['check'] / r['edit']:>12.1f}{r['cache hits']:>9}/{r['cache misses']}")
    if args.round_trip:
        import asyncio

        for name in args.specs.split(","):
            ms = asyncio.run(_round_trip(name.strip(), args.repeats))
            print(f"{name}: didChange -> publishDiagnostics over stdio, median {ms:.1f} ms")


if __name__ == "__main__":
    main()
