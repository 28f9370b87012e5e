"""The ``archdsl-check`` pre-commit hook (.pre-commit-hooks.yaml), run through pre-commit itself.

``pre-commit try-repo`` installs the hook's repository into a fresh virtualenv (pip, from the package
index) and runs it on a temporary git repository.  try-repo takes a repository's *tracked* changes
only (it commits ``git add -u`` into a shadow clone), so the hook repository here is a snapshot of
this working tree's package files, untracked ones included, committed in a temporary directory: the
test checks the code as it is, committed or not.  Each try-repo builds its own environment (about
20 s with a reachable index); the two runs go in parallel.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
#: What building and installing archdsl needs (pyproject's wheel and sdist targets) plus the manifest.
PACKAGE_PATHS = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "grammar", "archdsl")
GIT_ID = ("-c", "user.name=archdsl tests", "-c", "user.email=tests@archdsl.invalid", "-c", "commit.gpgsign=false")

pytestmark = pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                                reason="needs git and a git checkout of archdsl")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _snapshot(dest: Path) -> Path:
    """This working tree's package files (tracked and untracked, not ignored), committed in ``dest``."""
    files = _git(ROOT, "ls-files", "-co", "--exclude-standard", "--", *PACKAGE_PATHS).splitlines()
    for name in files:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "snapshot")
    return dest


def _project(dest: Path, files: dict[str, str]) -> Path:
    """A git repository holding ``files`` (staged: pre-commit looks at the index)."""
    for name, text in files.items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_text(text, encoding="utf-8")
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    return dest


def _try_repo(hook_repo: Path, project: Path, home: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PRE_COMMIT_HOME=str(home), PIP_DISABLE_PIP_VERSION_CHECK="1", NO_COLOR="1")
    env.pop("VIRTUAL_ENV", None)
    return subprocess.Popen([sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), "archdsl-check",
                             "--color", "never", *args], cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_manifest_declares_the_hook() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    hook = next(h for h in hooks if h["id"] == "archdsl-check")
    assert hook["language"] == "python" and hook["entry"] == "archdsl check"
    pattern = re.compile(hook["files"])
    matched = ["a.arch", "specs/net.archdsl.yaml", "x/net.archdsl.yml"]
    ignored = [".github/workflows/ci.yaml", "specs/net.yaml", "config.yml", "notes.arch.txt"]
    assert all(pattern.search(p) for p in matched) and not any(pattern.search(p) for p in ignored)


def test_hook_runs_through_pre_commit(tmp_path: Path) -> None:
    hook_repo = _snapshot(tmp_path / "hook")
    good = {"good.arch": "network t\ninput 3x8x8\nconv2d(4, 3) -> relu\n",
            "specs/net.archdsl.yaml": "network: n\ninput: 3x8x8\nlayers:\n- conv2d(4, 3)\n- relu\n"}
    # not specs by the hook's default pattern: a workflow file, and a YAML spec outside *.archdsl.yaml
    # (both would fail if checked)
    others = {".github/workflows/ci.yaml": "on: push\njobs: {}\n",
              "specs/other.yaml": "network: n\ninput: 3x8x8\nlayers: [convd(4, 3)]\n"}
    bad = {"bad.arch": "network t\ninput 3x8x8\nconv2d(4, 3, kernal = 3)\n"}
    passing = _project(tmp_path / "passing", {**good, **others})
    failing = _project(tmp_path / "failing", {**good, **others, **bad})
    runs = [_try_repo(hook_repo, passing, tmp_path / "home1", "--all-files", "--verbose"),
            _try_repo(hook_repo, failing, tmp_path / "home2", "--all-files", "--verbose")]
    (ok_out, _), (bad_out, _) = (p.communicate(timeout=600) for p in runs)
    ok_rc, bad_rc = (p.returncode for p in runs)
    assert ok_rc == 0, ok_out
    assert "archdsl check" in ok_out and "Passed" in ok_out and "error[" not in ok_out
    assert bad_rc == 1, bad_out
    assert "Failed" in bad_out
    assert "bad.arch:3:14: error[E102]: conv2d has no parameter 'kernal'" in bad_out  # located, with its source
    assert "conv2d(4, 3, kernal = 3)" in bad_out and "did you mean 'kernel'?" in bad_out
    assert "good.arch:" not in bad_out and "net.archdsl.yaml:" not in bad_out
    assert "ci.yaml" not in bad_out and "other.yaml" not in bad_out  # not specs: never checked
