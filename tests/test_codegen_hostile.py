"""Hostile names and strings against the PyTorch code generator.

Every spec-derived string (labels, block and network names, parameters, aux heads, loop variables,
shortcut names, repeat prefixes, string arguments, the spec's file name) is fed through both front
ends with hostile values: Python keywords and builtins, the names the generated file itself uses,
dunder and class-private names, quotes, backslashes, newlines, ``__import__('os').system(...)``,
Unicode look-alikes, very long names.  Each either gets a located diagnostic or compiles to code
that parses, whose every identifier is a plain ASCII one shadowing neither a builtin nor the
file's own names, with no spec text outside string literals and sanitized comments; building and
running the model executes nothing injected.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import keyword
import re
import tokenize
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from archdsl.backends.codegen import generate  # noqa: E402
from archdsl.backends.runtime import BuildError, load_module, load_spec  # noqa: E402
from archdsl.diagnostics import format_text  # noqa: E402

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
BUILTINS = frozenset(dir(builtins))
#: Builtins that generated code must never reference (it uses getattr, super, isinstance, any...).
FORBIDDEN = frozenset({"eval", "exec", "compile", "__import__", "open", "globals", "locals", "vars", "input",
                       "breakpoint", "setattr", "delattr", "exit", "quit", "help", "memoryview", "__builtins__"})
SENTINEL_NAME = "ARCHDSL_PWNED"

#: Names the text grammar accepts as identifiers (each is tried in every channel).
NAMES = [
    # keywords, soft keywords and builtins
    "class", "import", "None", "match", "_", "print", "getattr", "super", "isinstance", "open", "type",
    # names the generated file defines, imports or uses as locals
    "torch", "nn", "F", "Tensor", "OrderedDict", "NamedTuple", "checkpoint", "loss_fn", "init_weights",
    "LABEL_SMOOTHING", "AUX_WEIGHTS", "INPUT_SHAPE", "x", "inputs", "self", "feats", "eps", "target", "outputs",
    "m", "t", "nOutputs", "n",
    # dunder and class-private names (mangled inside a class body), nn.Module attributes
    "__import__", "__class__", "__builtins__", "__x", "_n__x", "forward", "training", "bottleneck", "count",
    # an ambiguous letter, a very long name
    "l", "a" * 300,
]

#: Arbitrary strings (YAML keys and string values can hold anything).
PAYLOADS = [
    "a'b", 'a"b', "a\\b", "a\nb", "a\rb", 'x"""; import os #', "a.b", "1abc", "",
    "__import__('os').system('touch " + SENTINEL_NAME + "')", "open('" + SENTINEL_NAME + "', 'w')",
    "\u0441onv", "\uff43\uff4f\uff4e\uff56", "con\u200bv", "\u202eevil", "\x1b[2J", "\\N{BELL}",
    "print", "torch", "forward", "__class__", "b" * 5000,
]

HEAD = "network n\ninput 3x8x8\n"
TAIL = "global_avgpool -> flatten -> fc: linear(3)\n"

#: Text-language templates: each puts ``{n}`` in one spec-derived channel.
TEXT_CHANNELS = {
    "label": HEAD + "{n}: conv2d(4, 3)\n" + TAIL,
    "label_in_block": HEAD + "block B(c) {{ {n}: conv2d(c, 3, padding = 1) -> relu }}\na: B(4)\nb: B(8)\n" + TAIL,
    "label_in_group": HEAD + "g: {{ {n}: conv2d(4, 3) -> relu }}\n" + TAIL,
    "label_in_concat": HEAD + "c: concat {{ {n}: conv2d(4, 1)  other: conv2d(4, 1) }}\n" + TAIL,
    "network": "network {n}\ninput 3x8x8\nconv2d(4, 3)\n" + TAIL,
    "block": HEAD + "block {n}(c) {{ conv2d(c, 1) }}\n{n}(4) -> {n}(8)\n" + TAIL,
    "block_param": HEAD + "block B({n}) {{ conv2d({n}, 1) }}\nB(4) -> B(8)\n" + TAIL,
    "network_param": "network n({n} = 4)\ninput 3x8x8\nconv2d({n}, 1)\n" + TAIL,
    "aux": HEAD + "c: conv2d(4, 3)\naux {n}: {{ global_avgpool -> flatten -> linear(3) }}\n" + TAIL,
    "let": HEAD + "let {n} = 4\nconv2d({n}, 1)\n" + TAIL,
    "loop_var": HEAD + "repeat(2) as {n} {{ conv2d(4 + {n}, 1) }}\n" + TAIL,
    "shortcut": "network n\ninput 4x8x8\nresidual {{ conv2d(4, 3, padding = 1) }} shortcut {n} {{ conv2d(4, 1) }}\n"
                + TAIL,
}

#: Text-language templates whose ``{s}`` is a string literal.
STRING_CHANNELS = {
    "repeat_prefix": HEAD + "stage: repeat(2, prefix = {s}) {{ conv2d(4, 1) }}\n" + TAIL,
    "residual_post": "network n\ninput 4x8x8\nresidual(post = {s}) {{ conv2d(4, 3, padding = 1) }}\n" + TAIL,
    "padding": HEAD + "conv2d(4, 3, padding = {s})\n" + TAIL,
    "init_mode": HEAD + "init conv2d: kaiming_normal(mode = {s})\nconv2d(4, 3)\n" + TAIL,
    "error_message": HEAD + "let w = if false then 4 else error({s})\nconv2d(w, 3)\n" + TAIL,
}


def text_literal(s: str) -> str:
    """``s`` as a text-language string literal (the escapes the grammar knows)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def yaml_str(s: str) -> str:
    """``s`` as a YAML double-quoted scalar (JSON strings are YAML)."""
    return json.dumps(s)


#: YAML templates: ``{k}`` is a YAML scalar (a key or a value) holding the payload.
YAML_HEAD = "network: n\ninput: 3x8x8\n"
YAML_TAIL = '  - "global_avgpool -> flatten -> fc: linear(3)"\n'
YAML_CHANNELS = {
    "label": YAML_HEAD + "layers:\n  - {k}: conv2d(4, 3)\n" + YAML_TAIL,
    "group_label": YAML_HEAD + "layers:\n  - {k}: [conv2d(4, 3), relu]\n" + YAML_TAIL,
    "network": "network: {k}\ninput: 3x8x8\nlayers:\n  - conv2d(4, 3)\n" + YAML_TAIL,
    "block": YAML_HEAD + "blocks:\n  {k}: [conv2d(4, 1)]\nlayers:\n  - conv2d(4, 3)\n" + YAML_TAIL,
    "aux": YAML_HEAD + "layers:\n  - c: conv2d(4, 3)\n  - aux: {{{k}: \"{{ global_avgpool -> flatten -> "
                       "linear(3) }}\"}}\n" + YAML_TAIL,
    "let": YAML_HEAD + "let:\n  - {k}: 4\nlayers:\n  - conv2d(4, 3)\n" + YAML_TAIL,
    "loop_var": YAML_HEAD + "layers:\n  - repeat: 2\n    as: {k}\n    body: [conv2d(4, 1)]\n" + YAML_TAIL,
    "shortcut": "network: n\ninput: 4x8x8\nlayers:\n  - residual: [\"conv2d(4, 3, padding = 1)\"]\n"
                "    shortcut: {{name: {k}, body: [\"conv2d(4, 1)\"]}}\n" + YAML_TAIL,
    "setting_key": YAML_HEAD + "settings:\n  - {k}: zeros\nlayers:\n  - conv2d(4, 3)\n" + YAML_TAIL,
}


# ------------------------------------------------------------------------------------ the audit


def _module_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _local_names(fn: ast.FunctionDef) -> set[str]:
    args = fn.args
    names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _code_only(src: str) -> str:
    """``src`` with every string literal and comment blanked out."""
    lines = src.splitlines(keepends=True)
    out = [list(line) for line in lines]
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type not in (tokenize.STRING, tokenize.COMMENT):
            continue
        (r0, c0), (r1, c1) = tok.start, tok.end
        for r in range(r0, r1 + 1):
            row = out[r - 1]
            lo = c0 if r == r0 else 0
            hi = c1 if r == r1 else len(row)
            for c in range(lo, hi):
                if row[c] != "\n":
                    row[c] = " "
    return "".join("".join(r) for r in out)


def audit(src: str, payload: str = "") -> None:
    """The properties every generated file has, whatever the spec's names and strings."""
    tree = ast.parse(src)
    module = _module_names(tree)
    for node in tree.body:  # nothing but imports, definitions and constants at module level
        assert isinstance(node, (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef, ast.Assign,
                                 ast.AnnAssign)), ast.dump(node)[:200]
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            assert node.name not in BUILTINS, f"module-level {node.name!r} shadows a builtin"
    defined = [n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
    assert len(defined) == len(set(defined)), f"defined twice: {defined}"
    for node in ast.walk(tree):
        ids: list[str] = []
        if isinstance(node, ast.Name):
            ids = [node.id]
            assert node.id not in FORBIDDEN, f"generated code refers to {node.id!r}"
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            ids = [node.name]
        elif isinstance(node, ast.arg):
            ids = [node.arg]
        elif isinstance(node, ast.Attribute):
            ids = [node.attr]
        elif isinstance(node, ast.keyword) and node.arg is not None:
            ids = [node.arg]
        elif isinstance(node, ast.alias):
            ids = [part for part in (node.asname or node.name).split(".")]
        for ident in ids:
            assert IDENT.match(ident) and not keyword.iskeyword(ident), f"bad identifier {ident!r}"
            # dunder and class-private names: only the constructor
            assert not ident.startswith("__") or ident == "__init__", f"generated code uses {ident!r}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
            assert isinstance(node.args[1], (ast.Constant, ast.Name)), ast.dump(node)
        if isinstance(node, ast.FunctionDef):
            local = _local_names(node) - {"self"}
            assert not local & BUILTINS, f"{node.name}: locals shadow builtins: {local & BUILTINS}"
            assert not local & module, f"{node.name}: locals shadow module names: {local & module}"
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            assert tok.string.isascii() and tok.string.isprintable(), f"unsafe comment {tok.string!r}"
    # text that could not be part of an identifier must stay inside literals and comments
    if re.search(r"[^A-Za-z0-9_]", payload) and len(payload.strip()) >= 2:
        assert payload not in _code_only(src), f"spec text {payload!r} outside literals and comments"


def assert_located(exc: BuildError, spec: Path) -> None:
    """A refusal: every diagnostic is an error located in the spec, printable with its line."""
    assert exc.diagnostics
    for d in exc.diagnostics:
        assert d.loc.file == str(spec) and d.loc.line >= 1 and d.loc.col >= 1, d
        text = format_text(d, exc.sources)
        assert "Traceback" not in text and "\x1b" not in text


def compile_spec(spec: Path) -> str | None:
    """Generated source of ``spec`` (audited), or None when it was refused with located errors."""
    try:
        src = load_spec(spec).source()
    except BuildError as exc:
        assert_located(exc, spec)
        return None
    audit(src)
    return src


def build_and_run(spec: Path, sentinel: Path) -> torch.nn.Module:
    """Build ``spec``, run a training step's forward and loss, check nothing was injected."""
    loaded = load_spec(spec)
    model = loaded.build()
    module = loaded.module()
    model.train()
    y = model(torch.zeros(2, *module.INPUT_SHAPE))
    module.loss_fn(y, torch.zeros(2, dtype=torch.long)).backward()
    model.eval()
    assert model(torch.zeros(2, *module.INPUT_SHAPE)).shape == (2, 3)
    assert not sentinel.exists(), "a spec string was executed"
    return model


@pytest.fixture
def sentinel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file an injected payload would create (relative payloads land in the cwd)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path / SENTINEL_NAME


# ------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("spec", ["resnet50.arch", "googlenet.arch", "densenet121.arch", "inception_v3.arch"])
def test_audit_accepts_the_zoo(spec: str) -> None:
    """The audit itself: real generated files pass it."""
    path = Path(__file__).resolve().parents[1] / "specs" / spec
    if not path.is_file():
        pytest.skip(f"{spec} not in the zoo")
    audit(load_spec(path).source())


@pytest.mark.parametrize("channel", sorted(TEXT_CHANNELS))
@pytest.mark.parametrize("name", NAMES, ids=lambda n: n if len(n) < 20 else f"long{len(n)}")
def test_hostile_name_in_text_spec(name: str, channel: str, tmp_path: Path, sentinel: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(TEXT_CHANNELS[channel].format(n=name))
    src = compile_spec(spec)
    if src is not None and channel.startswith("label"):
        # labels become module names verbatim (state_dict keys), or are refused
        assert repr(name) in src or f".{name} = " in src or f'"{name}"' in src
    assert not sentinel.exists()


@pytest.mark.parametrize("channel", sorted(STRING_CHANNELS))
@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: ascii(p)[:24])
def test_hostile_string_in_text_spec(payload: str, channel: str, tmp_path: Path, sentinel: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(STRING_CHANNELS[channel].format(s=text_literal(payload)))
    try:
        src = load_spec(spec).source()
    except BuildError as exc:
        assert_located(exc, spec)
    else:
        audit(src, payload)
        build_and_run(spec, sentinel)
    assert not sentinel.exists()


@pytest.mark.parametrize("channel", sorted(YAML_CHANNELS))
@pytest.mark.parametrize("payload", PAYLOADS + ["ok_name", "print", "__x"], ids=lambda p: ascii(p)[:24])
def test_hostile_string_in_yaml_spec(payload: str, channel: str, tmp_path: Path, sentinel: Path) -> None:
    spec = tmp_path / "net.yaml"
    spec.write_text(YAML_CHANNELS[channel].format(k=yaml_str(payload)))
    try:
        src = load_spec(spec).source()
    except BuildError as exc:
        assert_located(exc, spec)
        if not IDENT.match(payload):
            return
        # an identifier may still be refused (a reserved word, a Module attribute), but located
    else:
        assert IDENT.match(payload), f"{payload!r} accepted as a name"
        audit(src, payload)
    assert not sentinel.exists()


def _lines(names: list[str], fmt: str) -> str:
    return "".join(fmt.format(n=n, k=k) for k, n in enumerate(names))


#: One spec holding every accepted name of a channel at once (built and run once per channel).
COMBINED = {
    "label": lambda ns: HEAD + _lines(ns, "{n}: conv2d(4, 1)\n") + TAIL,
    "label_in_block": lambda ns: HEAD + "block B(c) {\n" + _lines(ns, "    {n}: conv2d(c, 1)\n") + "}\na: B(4)\nb: B(8)\n"
    + TAIL,
    "label_in_group": lambda ns: HEAD + "g: {\n" + _lines(ns, "    {n}: conv2d(4, 1)\n") + "}\n" + TAIL,
    "label_in_concat": lambda ns: HEAD + "c: concat {\n" + _lines(ns, "    {n}: conv2d(4, 1)\n") + "}\n" + TAIL,
    "aux": lambda ns: HEAD + "c: conv2d(4, 3)\n"
    + _lines(ns, "aux {n}: {{ global_avgpool -> flatten -> linear(3) }}\n") + TAIL,
    "shortcut": lambda ns: "network n\ninput 4x8x8\n"
    + _lines(ns, "residual {{ conv2d(4, 3, padding = 1) }} shortcut {n} {{ conv2d(4, 1) }}\n") + TAIL,
    "block": lambda ns: HEAD + _lines(ns, "block {n}(c) {{ conv2d(c, 1) }}\n") + _lines(ns, "{n}(4) -> {n}(8)\n")
    + TAIL,
    "block_param": lambda ns: HEAD + _lines(ns, "block B{k}({n}) {{ conv2d({n}, 1) }}\n")
    + _lines(ns, "B{k}(4) -> B{k}(8)\n") + TAIL,
    "network_param": lambda ns: "network n(" + ", ".join(f"{n} = 4" for n in ns) + ")\ninput 3x8x8\n"
    + _lines(ns, "conv2d({n}, 1)\n") + TAIL,
}


def accepted_names(channel: str, tmp_path: Path) -> list[str]:
    """The names the generator accepts in ``channel`` (one spec each)."""
    out = []
    for k, name in enumerate(NAMES):
        spec = tmp_path / f"probe{k}.arch"
        spec.write_text(TEXT_CHANNELS[channel].format(n=name))
        try:
            load_spec(spec).source()
        except BuildError:
            continue
        out.append(name)
    assert len(out) >= len(NAMES) // 3, f"{channel}: only {out} accepted"
    return out


@pytest.mark.parametrize("channel", sorted(COMBINED))
def test_accepted_hostile_names_build_run_and_keep_their_paths(channel: str, tmp_path: Path,
                                                                sentinel: Path) -> None:
    """Every name the generator accepts in a channel, together in one spec: built and run; labels
    keep their module paths (state_dict keys)."""
    names = accepted_names(channel, tmp_path)
    spec = tmp_path / "all.arch"
    spec.write_text(COMBINED[channel](names))
    src = load_spec(spec).source()
    audit(src)
    model = build_and_run(spec, sentinel)
    keys = set(model.state_dict())
    prefix = {"label": "", "label_in_block": "a.", "label_in_group": "g.", "label_in_concat": "c."}.get(channel)
    if prefix is not None:
        missing = [n for n in names if f"{prefix}{n}.weight" not in keys]
        assert not missing, (missing, sorted(keys)[:20])


def test_accepted_hostile_network_names_build_and_run(tmp_path: Path, sentinel: Path) -> None:
    """The network name is one per spec: each accepted one is built and run forward."""
    for k, name in enumerate(accepted_names("network", tmp_path)):
        spec = tmp_path / f"net{k}.arch"
        spec.write_text(TEXT_CHANNELS["network"].format(n=name))
        loaded = load_spec(spec)
        model = loaded.build().eval()
        assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 3)
        assert not sentinel.exists()


@pytest.mark.parametrize("stem", [
    'a"""b\nimport os\n#', "x'); open('" + SENTINEL_NAME + "', 'w'); ('", "back\\slash\\N{BELL}", "tab\tand\rcr",
    "\u0441onv", "class", "__builtins__", "1net", "-", "self",
], ids=ascii)
def test_spec_file_name_is_the_network_name(stem: str, tmp_path: Path, sentinel: Path) -> None:
    """Without a ``network`` line the file's stem names the network: comments, docstrings and the
    class name must survive any file name."""
    spec = tmp_path / f"{stem}.arch"
    spec.write_text("input 3x8x8\nconv2d(4, 3)\n" + TAIL)
    loaded = load_spec(spec)
    src = loaded.source()
    audit(src, stem)
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ClassDef) and ast.get_docstring(node) is not None:
            doc = node.body[0]  # the name is escaped in the docstring's source: it stays on one line
            assert doc.lineno == doc.end_lineno, src.splitlines()[doc.lineno - 1:doc.end_lineno]
    build_and_run(spec, sentinel)


@pytest.mark.parametrize("source_name", ["net.arch\nimport os", "a\rb", "q\"\"\"'''", "\x1b[2J", "\u2028x"],
                         ids=ascii)
def test_header_comment_survives_any_source_name(source_name: str, tmp_path: Path, sentinel: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(HEAD + "conv2d(4, 3)\n" + TAIL)
    graph = load_spec(spec).graph
    src = generate(graph, source_name=source_name)
    audit(src, source_name)
    assert src.splitlines()[0].startswith("# Generated by archdsl")
    load_module(src, source_name, "n")
    assert not sentinel.exists()


def test_compile_cli_with_newline_in_the_path(tmp_path: Path) -> None:
    from test_hostile import run

    spec = tmp_path / "a\nimport os\n#.arch"
    spec.write_text(HEAD + "conv2d(4, 3)\n" + TAIL)
    out = tmp_path / "model.py"
    rc, stdout, stderr = run("compile", str(spec), "-o", str(out))
    assert rc == 0, stderr
    audit(out.read_text(), "\nimport os\n")


def test_load_module_refuses_code_that_does_not_parse() -> None:
    with pytest.raises(BuildError) as info:
        load_module("class n(nn.Module:\n", "x.arch", "n")
    assert info.value.diagnostics[0].code == "E399"
    with pytest.raises(BuildError) as info:
        load_module("x = eval('1')\n", "x.arch", "n")
    assert info.value.diagnostics[0].code == "E399"
