"""200 mutated variants of the zoo specs never produce a traceback.

Each variant deletes, duplicates or swaps tokens of a zoo spec (or truncates it), deterministically
(fixed seed), and is checked in-process with ``archdsl.cli.main(["check", path])``: the exit code must
be 0 or 1 and nothing may escape — no exception, no "Traceback" on stderr.
"""

from __future__ import annotations

import io
import random
import re
import shutil
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from archdsl.cli import main

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
    again = _variants()
    assert [(s, t) for s, t, _ in again] == [(s, t) for s, t, _ in VARIANTS]
    assert sum(t != s.read_text(encoding="utf-8") for s, t, _ in VARIANTS) >= COUNT * 0.9


@pytest.mark.parametrize("n", range(len(VARIANTS)), ids=lambda n: f"{n:03d}")
def test_mutated_spec_never_tracebacks(n: int, tree: Path) -> None:
    spec, text, desc = VARIANTS[n]
    rel = spec.relative_to(SPECS)
    path = tree / rel.parent / f"mutant{n:03d}{spec.suffix}"
    path.write_text(text, encoding="utf-8")
    err, out = io.StringIO(), io.StringIO()
    try:
        with redirect_stderr(err), redirect_stdout(out):
            rc = main(["check", str(path)])
    except BaseException:  # noqa: BLE001 - the point is that nothing escapes
        pytest.fail(f"{rel} mutated by {desc}: exception escaped\n{traceback.format_exc()}")
    finally:
        path.unlink()
    stderr = err.getvalue()
    assert rc in (0, 1), f"{rel} mutated by {desc}: exit {rc}\n{stderr}"
    assert "Traceback" not in stderr, f"{rel} mutated by {desc}:\n{stderr}"
    if rc == 1:
        assert re.search(r"error\[E\d{3}\]", stderr), f"{rel} mutated by {desc}: exit 1 without a diagnostic"
