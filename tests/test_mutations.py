"""200 mutated variants of the zoo specs never produce a traceback.

Each variant deletes, duplicates or swaps tokens of a zoo spec (``.arch`` or ``.yaml``), or truncates
it, or applies several of these, deterministically (fixed seed), and is checked in-process with
``archdsl.cli.main(["check", "--format", "json", path])``: the exit code must be 0 or 1 and nothing
may escape — no exception, no "Traceback" on stderr; exit 1 comes with an error diagnostic, and
every diagnostic is located on a real line and column of the mutant or of a library it imports.
A mutant that still parses must print (as text and as YAML) to a spec that re-parses to the same
AST.
"""

from __future__ import annotations

import io
import json
import random
import re
import shutil
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from archdsl.cli import main
from archdsl.diagnostics import DiagnosticError
from archdsl.frontend.loader import load_spec_file, parse_source
from archdsl.frontend.printer import to_text, to_yaml

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
SEED = 20240611
COUNT = 200
ZOO = sorted(p for p in [*SPECS.rglob("*.arch"), *SPECS.rglob("*.yaml")] if p.is_file())

# identifiers, numbers, shapes, strings, comments, multi-char operators, any other single char, newlines
TOKEN = re.compile(r'[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|"[^"\n]*"|\'[^\'\n]*\'|#[^\n]*'
                   r'|->|//|\*\*|==|!=|<=|>=|\n|[ \t]+|.', re.S)


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def significant(toks: list[str]) -> list[int]:
    return [i for i, t in enumerate(toks) if not t.isspace()]


def mutate(text: str, rng: random.Random) -> tuple[str, str]:
    """One mutation of ``text``: (mutated text, description)."""
    toks = tokens(text)
    idx = significant(toks)
    kind = rng.choice(["delete", "delete", "duplicate", "duplicate", "swap", "swap", "truncate", "multi"])
    if not idx:
        return text + "\n", "append a newline (nothing left to mutate)"
    if kind == "truncate":
        cut = rng.randrange(len(text))
        return text[:cut], f"truncate at {cut}"
    if kind == "multi":
        out, notes = text, []
        for _ in range(rng.randint(2, 5)):
            out, note = mutate(out, rng)
            notes.append(note)
        return out, " + ".join(notes)
    i = rng.choice(idx)
    if kind == "delete":
        desc = f"delete {toks[i]!r} (token {i})"
        toks[i] = ""
    elif kind == "duplicate":
        desc = f"duplicate {toks[i]!r} (token {i})"
        toks[i] = toks[i] + (" " if rng.random() < 0.5 else "") + toks[i]
    else:
        j = rng.choice(idx)
        desc = f"swap {toks[i]!r} and {toks[j]!r} (tokens {i}, {j})"
        toks[i], toks[j] = toks[j], toks[i]
    return "".join(toks), desc


def _variants() -> list[tuple[Path, str, str]]:
    rng = random.Random(SEED)
    out = []
    if not ZOO:
        return out
    for n in range(COUNT):
        spec = ZOO[n % len(ZOO)]
        text = spec.read_text(encoding="utf-8")
        mutated, desc = mutate(text, rng)
        out.append((spec, mutated, desc))
    return out


VARIANTS = _variants()


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of specs/, so mutated files resolve their imports like the originals."""
    dst = tmp_path_factory.mktemp("mut") / "specs"
    shutil.copytree(SPECS, dst, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    return dst


def test_variants_are_deterministic() -> None:
    assert len(VARIANTS) == (COUNT if ZOO else 0)
    # both front ends and every kind of mutation are exercised
    assert {s.suffix for s, _, _ in VARIANTS} == {".arch", ".yaml"}
    kinds = {word for _, _, desc in VARIANTS for word in ("delete", "duplicate", "swap", "truncate") if word in desc}
    assert kinds == {"delete", "duplicate", "swap", "truncate"}
    again = _variants()
    assert [(s, t) for s, t, _ in again] == [(s, t) for s, t, _ in VARIANTS]
    assert sum(t != s.read_text(encoding="utf-8") for s, t, _ in VARIANTS) >= COUNT * 0.9


def _located(diag: dict, files: dict[str, str], what: str) -> None:
    name = diag["file"]
    assert name in files, f"{what}: {diag['code']} {diag['message']!r} is located in {name!r}"
    lines = files[name].split("\n")
    line, col = diag["line"], diag["column"]
    assert 1 <= line <= len(lines), f"{what}: {diag['code']} {diag['message']!r} at line {line} of {len(lines)}"
    assert 1 <= col <= len(lines[line - 1]) + 1, f"{what}: {diag['code']} {diag['message']!r} at {line}:{col}"


@pytest.mark.parametrize("n", range(len(VARIANTS)), ids=lambda n: f"{n:03d}")
def test_mutated_spec_never_tracebacks(n: int, tree: Path) -> None:
    spec, text, desc = VARIANTS[n]
    rel = spec.relative_to(SPECS)
    path = tree / rel.parent / f"mutant{n:03d}{spec.suffix}"
    path.write_text(text, encoding="utf-8")
    what = f"{rel} mutated by {desc}"
    err, out = io.StringIO(), io.StringIO()
    try:
        with redirect_stderr(err), redirect_stdout(out):
            rc = main(["check", "--format", "json", str(path)])
        try:
            ast = load_spec_file(path)
        except DiagnosticError:
            ast = None
        if ast is not None:  # still parses: both printers must give it back
            assert parse_source(to_text(ast), "<printed>") == ast, f"{what}: text printer does not round-trip"
            assert parse_source(to_yaml(ast), "<printed>", yaml=True) == ast, f"{what}: YAML printer does not round-trip"
    except BaseException:  # noqa: BLE001 - the point is that nothing escapes
        pytest.fail(f"{what}: exception escaped\n{traceback.format_exc()}")
    finally:
        path.unlink()
    stderr = err.getvalue()
    assert rc in (0, 1), f"{what}: exit {rc}\n{stderr}"
    assert "Traceback" not in stderr, f"{what}:\n{stderr}"
    diags = json.loads(out.getvalue())["diagnostics"]
    if rc == 1:
        assert any(d["severity"] == "error" and re.fullmatch(r"E\d{3}", d["code"]) for d in diags), \
            f"{what}: exit 1 without an error diagnostic"
    files = {str(path): text}
    files.update({str(lib): lib.read_text(encoding="utf-8") for lib in sorted((tree / "lib").iterdir())
                  if lib.suffix in (".arch", ".yaml")})
    for d in diags:
        _located(d, files, what)
