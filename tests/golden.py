"""Golden-file helper shared by the test modules.

``assert_golden(relpath, actual)`` compares ``actual`` with ``tests/golden/<relpath>``.  Golden files
are written only when the environment variable ``ARCHDSL_UPDATE_GOLDEN=1`` is set; otherwise a
missing or different file fails the test, so an accidental change of output is never blessed.

Usage from any test file (``tests/`` is on ``sys.path`` under pytest's default import mode)::

    from golden import assert_golden
    assert_golden("diagnostics/e201_concat.txt", rendered)
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
UPDATE_ENV = "ARCHDSL_UPDATE_GOLDEN"


def updating() -> bool:
    """True when golden files should be (re)written instead of compared."""
    return os.environ.get(UPDATE_ENV, "") == "1"


def golden_path(relpath: str) -> Path:
    """Where the golden file ``relpath`` lives."""
    return GOLDEN_DIR / relpath


def assert_golden(relpath: str, actual: str) -> None:
    """Fail unless ``actual`` equals the golden file (or rewrite it under ARCHDSL_UPDATE_GOLDEN=1)."""
    path = golden_path(relpath)
    if updating():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != actual:
            path.write_text(actual, encoding="utf-8")
        return
    if not path.is_file():
        pytest.fail(f"golden file {path} is missing; run with {UPDATE_ENV}=1 to create it")
    expected = path.read_text(encoding="utf-8")
    if expected != actual:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                            f"golden/{relpath}", "actual"))
        pytest.fail(f"output differs from golden/{relpath} (set {UPDATE_ENV}=1 to accept):\n{diff}")
