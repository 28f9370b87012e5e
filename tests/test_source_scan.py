"""archdsl's own source never evaluates text as code: an ``ast`` scan of every module under
``archdsl/`` for eval, exec, compile, dynamic imports, attribute access by computed name,
pickle/marshal/shelve, unsafe YAML loading, shells and os.system.

The few legitimate uses are listed in :data:`ALLOWED`, each with the reason it is safe; the scan
fails on anything new, and on an allowlist entry that no longer matches anything.
"""

from __future__ import annotations

import ast
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "archdsl"

#: Calls of builtins that turn data into code or reach attributes and modules by computed names.
CODE_BUILTINS = frozenset({"eval", "exec", "compile", "__import__"})
ATTR_BUILTINS = frozenset({"getattr", "setattr", "delattr"})
#: Modules whose use is always suspicious here (deserialization of code, dynamic import, shells).
MODULES = frozenset({"pickle", "cPickle", "_pickle", "marshal", "shelve", "importlib", "dill", "subprocess", "pty"})
#: PyYAML entry points that can construct arbitrary Python objects.
YAML_UNSAFE = frozenset({"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all",
                         "Loader", "UnsafeLoader", "FullLoader", "UnsafeConstructor", "FullConstructor",
                         "Constructor"})
#: os functions that run a command.
OS_COMMANDS = frozenset({"system", "popen", "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp",
                         "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp",
                         "spawnvpe", "posix_spawn", "posix_spawnp", "startfile"})

#: (file relative to the repository, enclosing function, finding) -> (how many, why it is safe).
ALLOWED: dict[tuple[str, str, str], tuple[int, str]] = {
    ("archdsl/backends/runtime.py", "load_module", "compile"): (
        1, "compiles the generated source's syntax tree, which check_source parsed and checked first"),
    ("archdsl/backends/runtime.py", "load_module", "exec"): (
        1, "the one exec in archdsl: generated source built only from validated identifiers and repr'd "
           "literals, checked with ast.parse (and for imports and forbidden names) right before"),
    ("archdsl/backends/render.py", "<module>", "import subprocess"): (
        1, "needed to run Graphviz 'dot' (see run_dot)"),
    ("archdsl/backends/render.py", "run_dot", "subprocess.run"): (
        1, "runs the 'dot' executable found on PATH with an argument list (no shell); the DOT text "
           "goes to its stdin"),
    ("archdsl/backends/render.py", "run_dot", "subprocess.TimeoutExpired"): (
        1, "catches the timeout (the dot_seconds limit) of that same run; names an exception class only"),
    ("archdsl/backends/reference.py", "reference_model", "getattr"): (
        1, "looks up the reference model named on the command line (--check-against PKG:MODEL, never a "
           "spec) in the reference package; the package is one of PACKAGES and MODEL an identifier"),
    ("archdsl/backends/extras.py", "<module>", "from importlib import"): (
        1, "importlib.metadata only: reads the installed versions and Requires-Dist of torch, torchvision and "
           "the onnx packages (text) for install hints; imports no module"),
    ("archdsl/frontend/yaml_frontend.py", "_relocate", "getattr"): (
        1, "reads an AST dataclass's own fields by the names dataclasses.fields() lists (never a name from a "
           "spec) to rebuild it with every location replaced"),
    ("archdsl/train/config.py", "?", "compile (as a value)"): (
        1, "a dataclass field named compile (TrainConfig.compile, the --compile option: torch.compile); "
           "it shadows the builtin inside the class body only and calls nothing"),
}


@dataclass(frozen=True, order=True)
class Finding:
    """One suspicious construct: where it is and what it is."""

    file: str
    line: int
    function: str
    what: str

    def key(self) -> tuple[str, str, str]:
        """The allowlist key."""
        return (self.file, self.function, self.what)


class _Scanner(ast.NodeVisitor):
    def __init__(self, file: str) -> None:
        self.file = file
        self.scope: list[str] = []
        self.findings: list[Finding] = []

    def flag(self, node: ast.AST, what: str) -> None:
        function = self.scope[-1] if self.scope else "<module>"
        self.findings.append(Finding(self.file, getattr(node, "lineno", 0), function, what))

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] in MODULES:
                self.flag(node, f"import {alias.name}")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = (node.module or "").split(".")[0]
        names = {a.name for a in node.names}
        if module in MODULES:
            self.flag(node, f"from {node.module} import")
        elif module == "yaml" and names & YAML_UNSAFE:
            self.flag(node, f"from yaml import {', '.join(sorted(names & YAML_UNSAFE))}")
        elif module == "os" and names & OS_COMMANDS:
            self.flag(node, f"from os import {', '.join(sorted(names & OS_COMMANDS))}")
        elif module == "builtins" and names & (CODE_BUILTINS | ATTR_BUILTINS):
            self.flag(node, "from builtins import")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        base = node.value.id if isinstance(node.value, ast.Name) else None
        if base in MODULES:
            self.flag(node, f"{base}.{node.attr}")
        elif base == "yaml" and node.attr in YAML_UNSAFE:
            self.flag(node, f"yaml.{node.attr}")
        elif base == "os" and node.attr in OS_COMMANDS:
            self.flag(node, f"os.{node.attr}")
        elif base in ("builtins", "__builtins__") and node.attr in CODE_BUILTINS | ATTR_BUILTINS:
            self.flag(node, f"{base}.{node.attr}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in CODE_BUILTINS:
                self.flag(node, func.id)
            elif func.id in ATTR_BUILTINS:
                name = node.args[1] if len(node.args) > 1 else None
                if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                    self.flag(node, func.id)
        for kw in node.keywords:  # a shell is never acceptable, allowlisted call or not
            if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                self.flag(node, "shell=True")
        self.generic_visit(node)


def scan_source(source: str, file: str = "<snippet>") -> list[Finding]:
    """Every suspicious construct in ``source``."""
    tree = ast.parse(source)
    scanner = _Scanner(file)
    scanner.visit(tree)
    # eval/exec/compile passed around as a value (run = eval; run(text)) is as bad as a call
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in CODE_BUILTINS and id(node) not in called:
            scanner.findings.append(Finding(file, node.lineno, "?", f"{node.id} (as a value)"))
    return sorted(scanner.findings)


def scan_package() -> list[Finding]:
    """Findings in every module under archdsl/."""
    out: list[Finding] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        out += scan_source(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    return out


def test_package_has_no_unlisted_dynamic_code() -> None:
    findings = scan_package()
    counts = Counter(f.key() for f in findings)
    unlisted = [f for f in findings if f.key() not in ALLOWED or f.what == "shell=True"]
    assert not unlisted, "not allowed (see tests/test_source_scan.py):\n" + "\n".join(
        f"  {f.file}:{f.line} in {f.function}: {f.what}" for f in unlisted)
    over = {k: (counts[k], n) for k, (n, _) in ALLOWED.items() if counts[k] > n}
    assert not over, f"more uses than allowed (found, allowed): {over}"


def test_allowlist_is_current_and_explained() -> None:
    counts = Counter(f.key() for f in scan_package())
    stale = [k for k, (n, _) in ALLOWED.items() if counts[k] != n]
    assert not stale, f"allowlist entries that no longer match the source exactly: {stale}"
    assert all(len(why) > 30 for _, why in ALLOWED.values())


def test_every_module_is_scanned() -> None:
    files = {f.relative_to(ROOT).as_posix() for f in PACKAGE.rglob("*.py")}
    assert {"archdsl/backends/runtime.py", "archdsl/cli.py", "archdsl/frontend/yaml_frontend.py"} <= files
    assert len(files) >= 30


# ------------------------------------------------------------------------------------ self-test

FLAGGED = {
    "eval": "x = eval(text)",
    "exec": "exec(code, {})",
    "compile": "c = compile(src, 'f', 'exec')",
    "__import__": "m = __import__(name)",
    "eval (as a value)": "run = eval\nrun(text)",
    "getattr": "v = getattr(obj, name)",
    "getattr with default": "v = getattr(obj, prefix + 'x', None)",
    "setattr": "setattr(obj, key, 1)",
    "delattr": "delattr(obj, key)",
    "import importlib": "import importlib",
    "import importlib.util": "import importlib.util",
    "from importlib import": "from importlib import import_module",
    "importlib call": "import x\nimportlib.import_module('os')",
    "import pickle": "import pickle",
    "pickle.loads": "pickle.loads(data)",
    "from pickle import": "from pickle import loads",
    "import marshal": "import marshal",
    "import shelve": "import shelve",
    "yaml.load": "yaml.load(text)",
    "yaml.load with Loader": "yaml.safe_load(text)\nyaml.load(text, Loader=yaml.SafeLoader)",
    "yaml.Loader": "yaml.compose(text, Loader=yaml.Loader)",
    "yaml.UnsafeLoader": "yaml.compose(text, Loader=yaml.UnsafeLoader)",
    "yaml.full_load": "yaml.full_load(text)",
    "yaml.unsafe_load": "yaml.unsafe_load(text)",
    "from yaml import load": "from yaml import load, safe_load",
    "subprocess": "import subprocess",
    "subprocess shell": "subprocess.run(cmd, shell=True)",
    "shell=True anywhere": "run(cmd, shell=True)",
    "os.system": "os.system('ls')",
    "os.popen": "os.popen('ls')",
    "from os import system": "from os import system",
    "builtins.eval": "import builtins\nbuiltins.eval('1')",
    "__builtins__ exec": "__builtins__.exec('1')",
}

CLEAN = {
    "constant getattr": "v = getattr(obj, 'name', None)\nsetattr(obj, 'x', 1)",
    "re.compile": "import re\npat = re.compile('a+')",
    "safe yaml": "import yaml\nnode = yaml.compose(text, Loader=yaml.SafeLoader)\nd = yaml.safe_load(text)",
    "ast.literal_eval": "import ast\nv = ast.literal_eval('1')",
    "a method called eval": "model.eval()\nx.compile()",
    "a local named like a module": "def f(subprocess_count):\n    return subprocess_count",
}


@pytest.mark.parametrize("what", sorted(FLAGGED))
def test_scanner_flags(what: str) -> None:
    assert scan_source(FLAGGED[what]), f"the scanner misses: {FLAGGED[what]!r}"


@pytest.mark.parametrize("what", sorted(CLEAN))
def test_scanner_passes(what: str) -> None:
    assert scan_source(CLEAN[what]) == []


def test_new_eval_in_the_package_would_fail(tmp_path: Path) -> None:
    """The scan of the real package plus one new eval finds exactly that eval, not allowlisted."""
    snippet = textwrap.dedent("""
        def evaluate_hint(text):
            return eval(text)
    """)
    findings = scan_source(snippet, "archdsl/expr.py")
    assert [(f.function, f.what) for f in findings] == [("evaluate_hint", "eval")]
    assert all(f.key() not in ALLOWED for f in findings)
    # and an allowlisted function gains no second exec unnoticed
    runtime = (PACKAGE / "backends" / "runtime.py").read_text(encoding="utf-8")
    extra = runtime.replace("    exec(code, module.__dict__)", "    exec(code, module.__dict__)\n    exec(code, {})")
    counts = Counter(f.key() for f in scan_source(extra, "archdsl/backends/runtime.py"))
    assert counts[("archdsl/backends/runtime.py", "load_module", "exec")] == 2
