"""The language server's features never raise on a broken or half-typed spec: the mutation corpus of
tests/test_mutations.py (deleted, duplicated, swapped tokens, truncations) and typing prefixes of zoo
specs, each fed to the diagnostics, hover, definition, completion, symbols and code-action handlers
at many positions."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

pytest.importorskip("lsprotocol")

from test_mutations import SEED, ZOO, mutate  # noqa: E402

from archdsl.lsp import actions, completion, convert, definition, hover, symbols  # noqa: E402
from archdsl.lsp.documents import Workspace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: Mutants driven through every feature (of the corpus's 200, a seeded sample keeps the test quick).
MUTANTS = 48
#: Positions tried per mutant.
POSITIONS = 60


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of specs/, so mutated files resolve their imports like the originals."""
    dst = tmp_path_factory.mktemp("lspfuzz") / "specs"
    shutil.copytree(ROOT / "specs", dst, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    return dst


def _positions(text: str, rng: random.Random) -> list[tuple[int, int]]:
    lines = text.split("\n")
    out = [(0, 0), (len(lines) - 1, len(lines[-1])), (len(lines) + 3, 0), (0, 10_000)]
    for _ in range(POSITIONS):
        i = rng.randrange(len(lines))
        out.append((i, rng.randrange(len(lines[i]) + 2)))
    return out


def drive(ws: Workspace, uri: str, text: str, rng: random.Random) -> None:
    """Every feature at many positions of the document's current text; any exception fails the test."""
    ws.change(uri, text, (ws.docs[uri].version or 0) + 1)
    da = ws.analyze(uri)
    pos = convert.Positions(da.res.sources.line)
    home = da.res.spec.uses[0].loc if da.res.spec is not None and da.res.spec.uses else None
    published = convert.document_diagnostics(da.res.diags.sorted(), da.path, pos, lambda f: f, home)
    assert len(published) == len(da.res.diags)
    for d in published:
        assert d.range.start.line >= 0 and d.range.start.character >= 0 and d.code
    usable = ws.usable(uri)
    lines = text.split("\n")
    for line, char in _positions(text, rng):
        line_text = lines[line] if line < len(lines) else ""
        hover.hover(usable, line, char)
        definition.definition(usable, line_text, line, char)
        offset = min(sum(len(x) + 1 for x in lines[:line]) + char, len(text))
        completion.complete(text, offset, ws.good.get(uri))
    if usable.res.spec is not None:
        symbols.document_symbols(usable.res.spec, usable.path, convert.Positions(usable.res.sources.line).range)
    if da.parsed:
        with ws.reading():
            actions.code_actions(da, uri, len(lines), 0, len(lines), (), lambda d: d.code)


def _mutants() -> list[tuple[str, str, str]]:
    rng = random.Random(SEED + 14)
    out = []
    for n in range(MUTANTS):
        spec = ZOO[(n * 7) % len(ZOO)]
        text = spec.read_text(encoding="utf-8")
        mutated, desc = mutate(text, rng)
        out.append((str(spec.relative_to(ROOT / "specs")), mutated, desc))
    return out


@pytest.mark.parametrize("chunk", range(4))
def test_mutants_never_raise_in_a_feature(chunk: int, tree: Path) -> None:
    ws = Workspace()
    rng = random.Random(chunk)
    for rel, text, desc in _mutants()[chunk::4]:
        path = tree / rel
        uri = path.as_uri()
        ws.open(uri, str(path), path.read_text(encoding="utf-8"), 0)
        ws.analyze(uri)  # a last good analysis, as an editor has before the edit
        try:
            drive(ws, uri, text, rng)
        except Exception as exc:  # noqa: BLE001 - report which mutant
            raise AssertionError(f"{rel}: {desc}: {type(exc).__name__}: {exc}") from exc
        ws.close(uri)


@pytest.mark.parametrize("name", ["resnet18.arch", "googlenet.yaml", "lib/resnet.arch"])
def test_typing_a_spec_never_raises(name: str, tree: Path) -> None:
    """Each prefix of a spec at 40 cut points, as if typed from the start."""
    path = tree / name
    full = path.read_text(encoding="utf-8")
    ws = Workspace()
    uri = path.as_uri()
    ws.open(uri, str(path), "", 0)
    rng = random.Random(name)
    for k in sorted(rng.sample(range(len(full) + 1), min(40, len(full) + 1))):
        drive(ws, uri, full[:k], rng)
