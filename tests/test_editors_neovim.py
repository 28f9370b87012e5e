"""``archdsl lsp`` in a real editor: Neovim's built-in LSP client, run in tmux, its screen captured.

The Neovim configuration is the one docs/editors.md shows (the ``lua`` block after the
``tested-neovim-config`` marker), with only the server command made absolute.  The test opens a
spec with one mistake, waits for the diagnostic, opens its float (``gl``), fixes the mistake (the
diagnostic goes away), opens a layer's hover (``K``), goes to a block's definition (``gd``) and
completes an op name (``<C-x><C-o>``), asserting what is on the screen at each step.  The captures
are golden files (``tests/golden/editors/``, rewritten with ARCHDSL_UPDATE_GOLDEN=1) that
docs/editors.md includes verbatim; they are compared exactly only under the Neovim version they were captured with (another
version draws its floats differently), the screen contents are asserted under any version.

A last test loads the generated Vim syntax file (``editors/vim``) in headless Neovim and reads back
the highlight group of every keyword, op and literal kind.

Needs ``nvim`` (Debian's ``neovim``) and ``tmux``; skipped with a message when either is missing.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from golden import assert_golden, golden_path, updating

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "editors.md"
MARKER = "<!-- tested-neovim-config: tests/test_editors_neovim.py -->"
SERVER_CMD = "cmd = { 'archdsl', 'lsp' }"
COLUMNS, ROWS = 110, 18
TIMEOUT = 60.0  # seconds to wait for a screen; the server answers in well under one on this spec
SETTLE = 0.2  # seconds between captures: a screen is read when two in a row are equal
GOLDEN = {"diagnostic": "editors/neovim_diagnostic.txt", "hover": "editors/neovim_hover.txt"}
VERSION_GOLDEN = "editors/neovim_version.txt"

#: A small spec with one mistake (a misspelled parameter): line 12 has the diagnostic, line 6 the hovered layer.
SPEC = """\
# A small classifier with one mistake.
network tiny(num_classes = 10)
input 3x32x32

block ConvBN(out, stride = 1) {
    conv: conv2d(out, 3, stride = stride, padding = 1, bias = false)
    bn: batchnorm -> relu
}

stem: ConvBN(16)
stage1: ConvBN(32, stride = 2)
pool: maxpool(2, strde = 2)
head: global_avgpool -> flatten -> fc: linear(num_classes)
"""

YAML_SPEC = """\
network: tiny
input: 3x32x32
layers:
- conv1: conv2d(8, 3)
- relu(inplce = true)
"""

needs_editor = pytest.mark.skipif(
    shutil.which("nvim") is None or shutil.which("tmux") is None,
    reason="nvim or tmux is not installed (apt-get install neovim tmux): no Neovim screen capture")


def _archdsl() -> str:
    """The ``archdsl`` command of the running interpreter's environment."""
    path = Path(sys.executable).with_name("archdsl")
    return str(path) if path.exists() else "archdsl"


def docs_config() -> str:
    """The Neovim configuration of docs/editors.md: the ``lua`` block right after the marker."""
    text = DOCS.read_text(encoding="utf-8")
    assert MARKER in text, f"docs/editors.md lost the marker {MARKER!r}"
    match = re.match(r"\s*```lua\n(.*?)```", text.split(MARKER, 1)[1], re.S)
    assert match, "the marker in docs/editors.md must be followed by a ```lua block"
    config = match.group(1)
    assert SERVER_CMD in config
    return config


@dataclass
class Editor:
    """Neovim in a detached tmux session on a private socket, with its own empty XDG folders."""

    tmux: list[str]

    def keys(self, *keys: str) -> None:
        """Type ``keys`` (tmux key names) into Neovim."""
        subprocess.run([*self.tmux, "send-keys", "-t", "nv", *keys], check=True, timeout=10)

    def screen(self) -> str:
        """The visible screen, trailing spaces and blank lines removed."""
        out = subprocess.run([*self.tmux, "capture-pane", "-p", "-t", "nv"], check=True, capture_output=True,
                             text=True, timeout=10).stdout
        return "\n".join(line.rstrip() for line in out.rstrip("\n").split("\n")).rstrip("\n") + "\n"

    def wait_for(self, ready: Callable[[str], bool], what: str) -> str:
        """Poll the screen until ``ready`` holds and the screen stays the same for SETTLE seconds (a
        capture in the middle of a redraw is never returned), or fail after TIMEOUT showing the screen."""
        deadline = time.monotonic() + TIMEOUT
        last = ""
        while True:
            screen = self.screen()
            if ready(screen) and screen == last:
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} on the Neovim screen after {TIMEOUT:.0f} s; the screen:\n{screen}")
            last = screen
            time.sleep(SETTLE)


@pytest.fixture
def editor(tmp_path: Path) -> Iterator[Callable[[str], Editor]]:
    """Start Neovim on a file of ``tmp_path`` with the docs' configuration; stopped afterwards."""
    pytest.importorskip("pygls", reason="archdsl lsp needs pygls (pip install 'archdsl[lsp]')")
    config = tmp_path / "init.lua"
    config.write_text(docs_config().replace(SERVER_CMD, f"cmd = {{ '{_archdsl()}', 'lsp' }}"), encoding="utf-8")
    env = {**os.environ, "HOME": str(tmp_path), "LC_ALL": "C.UTF-8", "TERM": "xterm-256color"}
    for name in ("CONFIG", "DATA", "STATE", "CACHE"):
        env[f"XDG_{name}_HOME"] = str(tmp_path / "xdg" / name.lower())
    env.pop("TMUX", None)
    # a private server (-L: its socket in tmux's own short folder; a path under tmp_path may pass the
    # 107-byte limit of a socket path) and no user configuration
    name = f"archdsl-test-{uuid.uuid4().hex[:12]}"
    tmux = ["tmux", "-L", name, "-f", "/dev/null"]
    started: list[Editor] = []

    def start(file: str) -> Editor:
        subprocess.run([*tmux, "new-session", "-d", "-s", "nv", "-x", str(COLUMNS), "-y", str(ROWS), "-c",
                        str(tmp_path), "nvim", "-n", "-i", "NONE", "-u", str(config), file],
                       check=True, env=env, timeout=10)
        started.append(Editor(tmux))
        return started[-1]

    yield start
    if started:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=10)
        socket = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / name
        socket.unlink(missing_ok=True)  # kill-server can leave the socket file behind


def _nvim_version() -> str:
    return subprocess.run(["nvim", "--version"], capture_output=True, text=True, timeout=10).stdout.split("\n")[0]


def _check_golden(name: str, screen: str) -> None:
    """Compare with (or rewrite) the golden capture when this is the Neovim version it was taken with."""
    version = _nvim_version() + "\n"
    if updating():
        assert_golden(VERSION_GOLDEN, version)
    recorded = golden_path(VERSION_GOLDEN)
    if recorded.is_file() and recorded.read_text(encoding="utf-8") == version:
        assert_golden(GOLDEN[name], screen)


@needs_editor
def test_diagnostic_and_hover_on_the_neovim_screen(tmp_path: Path, editor: Callable[[str], Editor]) -> None:
    """The E102 diagnostic shows as virtual text and in its float, and goes away once the typo is fixed;
    the hover shows a layer's two instances; ``gd`` goes to a block's definition; ``<C-x><C-o>``
    completes an op name."""
    (tmp_path / "net.arch").write_text(SPEC, encoding="utf-8")
    nv = editor("net.arch")
    nv.wait_for(lambda s: "E102: maxpool has no parameter 'strde'" in s, "E102 virtual text")
    nv.keys("12G", "18|", "g", "l")  # on 'strde', then open the diagnostic float
    diagnostic = nv.wait_for(lambda s: "Diagnostics:" in s and "did you mean 'stride'?" in s, "diagnostic float")
    assert re.search(r"^E pool: maxpool\(2, strde = 2\) .*E102: maxpool has no parameter 'strde'", diagnostic, re.M)
    assert "1. E102: maxpool has no parameter 'strde'" in diagnostic
    nv.keys("c", "i", "w", "stride", "Escape")  # fix the typo: the diagnostic goes away
    nv.wait_for(lambda s: "E102" not in s and "pool: maxpool(2, stride = 2)" in s, "fixed spec without E102")
    nv.keys("6G", "11|", "K")  # on 'conv2d' in the block ConvBN: one layer, two instances
    hover = nv.wait_for(lambda s: "receptive field" in s and "stage1.conv" in s, "hover")
    # by hand: 3 -> 16 channels, 3x3, no bias: 3*16*9 = 432 weights, times 32*32 outputs = 442,368 MACs;
    # 16 -> 32 with stride 2: 16*32*9 = 4,608 weights, times 16*16 = 1,179,648 MACs; two 3x3 convs, the second strided: a 5x5 field, stride 2
    assert "`stem.conv`: output `16x32x32` · params 432 · MACs 442,368 · receptive field 3x3 (stride 1)" in hover
    assert "`stage1.conv`: output `32x16x16` · params 4,608 · MACs 1,179,648 · receptive field 5x5 (stride 2)" in hover
    assert "`conv2d(out, kernel, stride = 1" in hover
    _check_golden("diagnostic", diagnostic)
    _check_golden("hover", hover)
    nv.keys("10G", "7|", "g", "d")  # on 'ConvBN' in 'stem: ConvBN(16)': to the block's definition
    nv.wait_for(lambda s: re.search(r"net\.arch \[\+\] +5,7 ", s) is not None, "cursor on the block definition")
    nv.keys("G", "o", "tail: glob", "C-x", "C-o")  # complete an op name: the menu lists both global pools
    nv.wait_for(lambda s: "Function global_avgpool()" in s and "Function global_maxpool()" in s, "completion menu")


@needs_editor
def test_the_server_attaches_to_spec_yaml_only(tmp_path: Path, editor: Callable[[str], Editor]) -> None:
    """A YAML file under specs/ or named *.archdsl.yaml gets the server's diagnostics; another YAML file
    gets no client."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "tiny.yaml").write_text(YAML_SPEC, encoding="utf-8")
    (tmp_path / "other.yaml").write_text("key: value\n", encoding="utf-8")
    nv = editor("specs/tiny.yaml")
    nv.wait_for(lambda s: "E102: relu has no parameter 'inplce'" in s, "E102 on the YAML spec")
    nv.keys(":edit other.yaml", "Enter", ":lua print('clients: ' .. #vim.lsp.buf_get_clients(0))", "Enter")
    nv.wait_for(lambda s: "clients: 0" in s, "client count of other.yaml")
    # a spec named with the pre-commit hook's suffix is one wherever it is
    (tmp_path / "net.archdsl.yaml").write_text(YAML_SPEC, encoding="utf-8")
    nv.keys(":edit net.archdsl.yaml", "Enter")
    nv.wait_for(lambda s: "E102: relu has no parameter 'inplce'" in s, "E102 on net.archdsl.yaml")


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_docs_show_the_golden_capture(name: str) -> None:
    """docs/editors.md includes each golden capture verbatim, as the text block after its marker
    (which ARCHDSL_UPDATE_GOLDEN=1 rewrites, after the capture test has refreshed the golden file)."""
    capture = golden_path(GOLDEN[name]).read_text(encoding="utf-8")
    marker = f"<!-- golden: {GOLDEN[name]} -->\n"
    text = DOCS.read_text(encoding="utf-8")
    assert text.count(marker) == 1, f"docs/editors.md needs one {marker.strip()} before the capture's text block"
    before, after = text.split(marker)
    block = re.match(r"```text\n.*?```\n", after, re.S)
    assert block, f"the marker {marker.strip()} must be followed by a ```text block"
    expected = f"```text\n{capture}```\n"
    if updating() and block.group(0) != expected:
        DOCS.write_text(before + marker + expected + after[block.end():], encoding="utf-8")
        return
    assert block.group(0) == expected, (
        f"docs/editors.md shows an old capture of tests/golden/{GOLDEN[name]}: run "
        "ARCHDSL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_editors_neovim.py")


#: Lines of a spec and, for tokens on them, the highlight group editors/vim/syntax/archdsl.vim gives.
VIM_CASES: list[tuple[str, list[tuple[str, str]]]] = [
    ("network tiny(num_classes = 10)", [("network", "archdslDeclaration"), ("10", "archdslNumber")]),
    ("input 3x224x224", [("input", "archdslDeclaration"), ("3x224x224", "archdslShape")]),
    ("input 3xHxW", [("3xHxW", "archdslShape")]),
    ("block ConvBN(out) {", [("block", "archdslDeclaration"), ("ConvBN", "archdslBlockName")]),
    ("stem: conv2d(8, 3) -> relu  # archdsl: ignore[R301]",
     [("stem", "archdslLabel"), ("conv2d", "archdslOp"), ("->", "archdslOperator"), ("relu", "archdslOp"),
      ("# ", "archdslComment"), ("archdsl:", "archdslPragma")]),
    ("relu: relu", [("relu", "archdslLabel"), (" relu", "archdslOp")]),  # a label named like an op
    ("`block1-0`: residual { relu } shortcut if s != 1 { relu }",
     [("`block1-0`", "archdslLabel"), ("residual", "archdslCombinator"), ("if", "archdslConditional"),
      ("!=", "archdslOperator")]),
    ("let s = ['it\\'s', \"a\\tb\"]", [("let", "archdslDeclaration"), ("'it", "archdslString"),
                                       ("\\'", "archdslEscape"), ("\\t", "archdslEscape")]),
    ("budget(params <= 5.5M, macs <= 1e-3)", [("budget", "archdslDeclaration"), ("5.5M", "archdslQuantity"),
                                              ("1e-3", "archdslFloat")]),
    ("x: true and not none", [("true", "archdslBoolean"), ("and", "archdslLogical"), ("none", "archdslNone")]),
]


def _vim_probes() -> tuple[list[str], list[tuple[int, int, str, str]]]:
    """The sample text (plus a line per keyword and per op) and (line, col, token, group) to check."""
    from archdsl.ops import PUBLIC_OPS

    gen = _generator()
    cases = list(VIM_CASES)
    keywords = gen.lark_keywords(gen.LARK.read_text(encoding="utf-8"))
    cases += [(word, [(word, gen.VIM_GROUPS[gen.KEYWORD_SCOPES[word]][0])]) for word in keywords]
    cases += [(f"x -> {op}", [(op, "archdslOp")]) for op in sorted(PUBLIC_OPS)]
    lines, probes = [], []
    for number, (text, tokens) in enumerate(cases, 1):
        lines.append(text)
        for token, group in tokens:
            col = text.index(token) + (1 if token.startswith(" ") else 0)
            probes.append((number, col + 1, token.strip(), group))
    return lines, probes


def _generator() -> Any:
    """editors/generate_grammar.py as a module (for its keyword list and scope table)."""
    spec = importlib.util.spec_from_file_location("generate_grammar", ROOT / "editors" / "generate_grammar.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("nvim") is None, reason="nvim is not installed (apt-get install neovim)")
def test_vim_syntax_file_in_neovim(tmp_path: Path) -> None:
    """With editors/vim on 'runtimepath', a .arch file gets the filetype, the comment settings and the
    highlight group of every keyword, op and literal (read back with synID() from headless Neovim)."""
    lines, probes = _vim_probes()
    (tmp_path / "t.arch").write_text("\n".join(lines) + "\n", encoding="utf-8")
    calls = "\n".join(f"call add(out, synIDattr(synID({line}, {col}, 1), 'name'))" for line, col, _, _ in probes)
    (tmp_path / "probe.vim").write_text(
        f"let out = [&filetype, &commentstring]\n{calls}\ncall writefile(out, 'probe.out')\nqall!\n", encoding="utf-8")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_STATE_HOME": str(tmp_path / "state")}
    subprocess.run(["nvim", "--headless", "-u", "NONE", "-i", "NONE", "-n",
                    "--cmd", f"set runtimepath^={ROOT / 'editors' / 'vim'}", "--cmd", "filetype plugin on",
                    "--cmd", "syntax on", "t.arch", "-S", "probe.vim"],
                   cwd=tmp_path, env=env, check=True, timeout=60, capture_output=True)
    got = (tmp_path / "probe.out").read_text(encoding="utf-8").splitlines()
    assert got[:2] == ["archdsl", "# %s"]
    wrong = [f"line {line} {token!r}: {name!r}, expected {group!r}"
             for (line, _, token, group), name in zip(probes, got[2:], strict=True) if name != group]
    assert not wrong, "\n".join(wrong)
