"""``archdsl schema``: the JSON Schema for YAML specs accepts every valid spec and points at mistakes.

Soundness is measured on real specs: the zoo's YAML files, the YAML ``archdsl convert`` writes for
every zoo ``.arch`` file (every construct the language has, in the printer's YAML), and the YAML
files under tests/ that ``check`` accepts.  Every mistake the schema reports is one ``check`` reports
too (each rejected example below is also checked with archdsl itself).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_support import run
from golden import updating
from jsonschema import Draft7Validator, Draft202012Validator

from archdsl import schema as S
from archdsl.frontend.loader import is_yaml
from archdsl.ops import PUBLIC_OPS
from archdsl.pipeline import analyze

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / S.SCHEMA_PATH
ZOO_YAML = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs" / "lib").glob("*.yaml"))
ZOO_ARCH = sorted((ROOT / "specs").glob("*.arch")) + sorted((ROOT / "specs" / "lib").glob("*.arch"))


@pytest.fixture(scope="module", params=[Draft202012Validator, Draft7Validator], ids=["2020-12", "draft-07"])
def validator(request: pytest.FixtureRequest) -> Draft202012Validator:
    """A validator for the generated schema, checked against the metaschema: draft 2020-12 (the schema's
    own), and draft-07, whose semantics yaml-language-server (most editors' YAML support) applies."""
    schema = S.build_schema()
    request.param.check_schema(schema)
    return request.param(schema)


def test_no_ref_has_siblings() -> None:
    """Draft-07 ignores the siblings of ``$ref``: the schema must not rely on them."""
    def walk(node: object) -> list:
        if isinstance(node, dict):
            here = [sorted(node)] if "$ref" in node and len(node) > 1 else []
            return here + [x for v in node.values() for x in walk(v)]
        return [x for v in node for x in walk(v)] if isinstance(node, list) else []

    assert walk(S.build_schema()) == []


def _errors(validator: Draft202012Validator, text: str) -> list:
    return sorted(validator.iter_errors(yaml.safe_load(text)), key=lambda e: [str(p) for p in e.absolute_path])


def _check_errors(tmp_path: Path, text: str) -> list[str]:
    """The error codes ``archdsl check`` reports for the YAML spec ``text``."""
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    _, out, _ = run("check", "--format", "json", str(path))
    return [d["code"] for d in json.loads(out)["diagnostics"] if d["severity"] == "error"]


def test_committed_schema_is_the_generators_output() -> None:
    text = S.render_schema()
    if updating():
        COMMITTED.parent.mkdir(parents=True, exist_ok=True)
        COMMITTED.write_text(text, encoding="utf-8")
    assert COMMITTED.read_text(encoding="utf-8") == text, \
        f"{S.SCHEMA_PATH} is stale: rerun with ARCHDSL_UPDATE_GOLDEN=1 (or archdsl schema -o {S.SCHEMA_PATH})"


def test_schema_is_draft_2020_12_and_generated_from_the_registries(validator) -> None:
    schema = validator.schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    from archdsl.frontend.yaml_frontend import TOP_KEYS

    assert list(schema["properties"]) == list(TOP_KEYS) and schema["additionalProperties"] is False
    snippets = {s["label"]: s for s in schema["$defs"]["statement"]["defaultSnippets"]}
    for name, op in PUBLIC_OPS.items():  # completion: one snippet per op, documenting every parameter
        assert name in snippets, name
        for p in op.params:
            assert f"`{p.name}`" in snippets[name]["markdownDescription"], (name, p.name)
        required = [p.name for p in op.params if p.required]
        assert snippets[name]["body"].startswith(name) and all(r in snippets[name]["body"] for r in required)


@pytest.mark.parametrize("path", ZOO_YAML, ids=lambda p: p.name)
def test_zoo_yaml_validates(validator, path: Path) -> None:
    errors = _errors(validator, path.read_text(encoding="utf-8"))
    assert not errors, [(list(e.absolute_path), e.message[:200]) for e in errors]


def test_zoo_counts() -> None:
    assert len(ZOO_YAML) >= 7 and len(ZOO_ARCH) >= 47  # the zoo as measured when this test was written


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every zoo ``.arch`` file (specs/ and specs/lib/) converted to YAML by ``archdsl convert``."""
    root = tmp_path_factory.mktemp("converted")
    out = []
    for src in ZOO_ARCH:
        target = root / src.parent.name / (src.stem + ".yaml")
        target.parent.mkdir(exist_ok=True)
        rc, _, err = run("convert", str(src), "-o", str(target), "-q")
        assert rc == 0, err
        out.append(target)
    return out


def test_every_zoo_arch_converted_to_yaml_validates(validator, converted: list[Path]) -> None:
    assert len(converted) == len(ZOO_ARCH)
    failures = []
    for path in converted:
        errors = _errors(validator, path.read_text(encoding="utf-8"))
        failures += [(path.name, list(e.absolute_path), e.message[:200]) for e in errors]
    assert not failures


#: The errors the schema looks for too (unknown op or keyword, bad choice, settings, rules options,
#: budget figures); a spec with another error only (a missing import, a shape mismatch) must validate.
SCHEMA_CODES = {"E101", "E102", "E106", "E301", "E302", "E303", "E304", "R001", "E402"}


def _clean_test_yaml() -> list[Path]:
    """YAML specs under tests/ that the front end reads and ``check`` finds none of SCHEMA_CODES in
    (the hostile ones mostly fail to parse)."""
    out = []
    for path in sorted((ROOT / "tests").rglob("*.y*ml")):
        if not is_yaml(str(path)) or path.stat().st_size > 20_000:
            continue
        codes = {d.code for d in analyze(str(path)).diags if d.is_error}
        if not any(c.startswith("E0") or c.startswith("E15") for c in codes) and not codes & SCHEMA_CODES:
            out.append(path)
    return out


def test_test_corpus_arch_converted_to_yaml_validates(validator) -> None:
    """The design-rule corpus and the golden specs (every construct), printed as YAML as ``convert`` does."""
    from archdsl.frontend.loader import parse_source
    from archdsl.frontend.printer import to_yaml

    sources = sorted((ROOT / "tests" / "rules").rglob("*.arch")) + sorted((ROOT / "tests" / "golden").rglob("*.arch"))
    checked = 0
    for path in sources:
        if {d.code for d in analyze(str(path)).diags if d.is_error} & SCHEMA_CODES:
            continue
        text = to_yaml(parse_source(path.read_text(encoding="utf-8"), str(path), yaml=False))
        errors = _errors(validator, text)
        assert not errors, (path.name, [(list(e.absolute_path), e.message[:200]) for e in errors])
        checked += 1
    assert checked >= 60  # 68 files when this test was written, none with a schema-visible error


def test_yaml_under_tests_that_parses_validates(validator) -> None:
    clean = _clean_test_yaml()
    assert ROOT / "tests" / "golden" / "printer" / "every_construct.yaml" in clean
    for path in clean:
        errors = _errors(validator, path.read_text(encoding="utf-8"))
        assert not errors, (path.name, [(list(e.absolute_path), e.message[:200]) for e in errors])


BLOCK_HEAD = "network: n(num_classes = 10)\ninput: 3x32x32\n"

#: (spec, the path jsonschema's error has, a word its message or errorMessage holds, archdsl's code)
MISTAKES = [
    ("layer:\n- relu\n", [], "'layer' was unexpected", "E004"),
    ("layers:\n- conv: conv2d(8, 3, kernal = 3)\n", ["layers", 0, "conv"], "conv2d has no such keyword", "E102"),
    ("layers:\n- conv2d(8, 3, chanels = 3)\n", ["layers", 0], "conv2d has no such keyword", "E102"),
    ("layers:\n- stem: conv2e(8, 3)\n", ["layers", 0, "stem"], "did you mean 'conv2d'", "E101"),
    ("layers:\n- 'conv2d(8, 1) -> rleu'\n", ["layers", 0], "did you mean 'relu'", "E101"),
    ("layers:\n- 'gelu(approximate = \"tanx\")'\n", ["layers", 0], "must be one of", "E106"),
    ("layers:\n- conv2d(8, 3, padding = \"full\")\n", ["layers", 0], "must be one of", "E106"),
    ("layers:\n- residual: [relu]\n  shortcutt: [relu]\n", ["layers", 0], "'shortcutt' was unexpected", "E004"),
    ("layers:\n- r: {repeat: 2, az: i, body: [relu]}\n", ["layers", 0, "r"], "'az' was unexpected", "E004"),
    ("layers:\n- residual: [relu]\n  args: posst = \"relu\"\n", ["layers", 0, "args"], "residual has no such option",
     "E102"),
    ("layers:\n- block: relu\n", ["layers", 0], "does not match", "E001"),
    ("layers:\n- r: {repeat: 2, as: concat, body: [relu]}\n", ["layers", 0, "r", "as"], "does not match", "E001"),
    ("settings:\n- loss: cross_entropy(label_smothing = 0.1)\n", ["settings", 0, "loss"], "no such keyword",
     "E304"),
    ("settings:\n- init conv: kaiming_normal()\n", ["settings", 0], "'init conv' does not match", "E302"),
    ("rules: ignroe = [\"R301\"]\nlayers: [relu]\n", ["rules"], "rules has no such option", "R001"),
    ("budget: {parms: 5M}\nlayers: [relu]\n", ["budget"], "'parms' was unexpected", None),
]


@pytest.mark.parametrize("body,path,words,code", MISTAKES, ids=[f"{i}-{m[3]}" for i, m in enumerate(MISTAKES)])
def test_a_mistake_is_rejected_where_it_is(validator, tmp_path: Path, body: str, path: list, words: str,
                                           code: str | None) -> None:
    text = BLOCK_HEAD + body
    errors = _errors(validator, text)
    assert errors, "the schema accepted it"
    found = [e for e in errors if list(e.absolute_path) == path]
    assert found, [(list(e.absolute_path), e.message[:100]) for e in errors]
    said = " ".join(e.message + " " + str(e.schema.get("errorMessage", "")) for e in found)
    assert words in said, said
    codes = _check_errors(tmp_path, text)
    assert codes and (code is None or code in codes), codes  # archdsl refuses it too


VALID_CORNERS = [
    # an op's own parameters, comparisons and defaults inside arguments are no keyword mistakes
    "layers:\n- conv2d(8, 3, stride = if 4 >= 2 then 1 else 2, padding = \"same\", bias = 1 == 1)\n",
    # a lower-case block far from every op name, a CamelCase one close to one, labels close to ops
    "blocks:\n  mixer(c):\n  - conv2d(c, 1)\n  Relu6x:\n  - relu\nlayers:\n- relu1: mixer(8)\n- Relu6x\n"
    "- 'conv2: conv2d(8, 1) -> gelu(approximate = \"tanh\")'\n",
    # escaped labels, shortcut forms, repeat options, if/else, aux, chain, let, group
    "let:\n- width: 8\nlayers:\n- '`block`': relu\n- residual: [relu]\n  args: post = \"relu\", scale = 1.0\n"
    "  shortcut: {name: '`concat`', if: 'width != 8', body: ['conv2d(width, 1)']}\n"
    "- r: {repeat: '2, prefix = \"b\", start = 1', as: i, body: [relu]}\n- if: width > 4\n  then: [relu]\n"
    "  else: [relu6]\n- aux: {a1: [global_avgpool, flatten, 'linear(10)']}\n  args: weight = 0.3\n"
    "- chain: [{concat: [relu, relu]}, relu]\n- let: {x: 2}\n- group: [relu]\n- g: [relu, {gate: [sigmoid]}]\n",
    "settings:\n- loss: cross_entropy(label_smoothing = 0.1)\n- init conv2d: kaiming_normal(mode = \"fan_out\")\n"
    "rules: ignore = [\"R301\"], grid = [12, 20]\nbudget: {params: 5.5M, depth: 60}\nlayers: [relu]\n",
]


@pytest.mark.parametrize("body", VALID_CORNERS)
def test_valid_corners_validate(validator, tmp_path: Path, body: str) -> None:
    text = BLOCK_HEAD + body
    assert not _check_errors(tmp_path, text)  # archdsl accepts it ...
    errors = _errors(validator, text)  # ... and so does the schema
    assert not errors, [(list(e.absolute_path), e.message[:200]) for e in errors]


def test_near_misses_spare_every_op_and_catch_one_edit() -> None:
    ops = sorted(PUBLIC_OPS)
    for name in ops:
        checks = S.misspelled_op_checks(ops, [])
        assert all(re.search(c["pattern"], name) for c in checks), name  # each check lets the op pass
        typo = name[:-1] if name[:-1] not in PUBLIC_OPS else name + "x"
        assert not all(re.search(c["pattern"], typo) for c in checks), typo


def test_combinator_options_are_the_elaborators(tmp_path: Path) -> None:
    uses = {"residual": "- residual: [relu]\n  args: {k} = {v}\n",
            "repeat": "- repeat: '1, {k} = {v}'\n  body: [relu]\n",
            "dense": "- dense: '1, {k} = {v}'\n  body: ['conv2d(4, 1)']\n",
            "aux": "- aux: {{a: [global_avgpool, flatten, 'linear(2)']}}\n  args: {k} = {v}\n"}
    values = {"scale": "1.0", "post": '"relu"', "count": "1", "prefix": '"b"', "start": "0", "weight": "0.5"}
    for comb, options in S.COMBINATOR_OPTIONS.items():
        for opt in options:
            text = BLOCK_HEAD + "layers:\n- conv2d(4, 1)\n" + uses[comb].format(k=opt, v=values[opt])
            if opt == "count":
                text = text.replace("'1, count = 1'", "'count = 1'")
            codes = _check_errors(tmp_path, text)
            assert "E102" not in codes, (comb, opt, codes)
        bogus = BLOCK_HEAD + "layers:\n- conv2d(4, 1)\n" + uses[comb].format(k="bogus", v="1")
        assert "E102" in _check_errors(tmp_path, bogus), comb


def test_schema_command_prints_and_writes(tmp_path: Path) -> None:
    rc, out, err = run("schema")
    assert rc == 0 and json.loads(out) == S.build_schema() and err == ""
    target = tmp_path / "s.json"
    rc, out, err = run("schema", "-o", str(target))
    assert rc == 0 and out == "" and target.read_text(encoding="utf-8") == S.render_schema()
    assert "wrote" in err
    rc, _, err = run("schema", "-o", str(tmp_path / "missing" / "s.json"))
    assert rc == 1 and "error[E005]" in err


def test_schema_command_does_not_import_torch(tmp_path: Path) -> None:
    code = ("import sys; from archdsl.cli import main; rc = main(['schema', '-q', '-o', sys.argv[1]]); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.json")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (the ECMAScript regex engine editors use)")
def test_patterns_mean_the_same_in_ecmascript(validator, tmp_path: Path) -> None:
    """yaml-language-server compiles each pattern with ``new RegExp(p, "u")``: every pattern must compile
    there and match exactly the strings Python's ``re`` (jsonschema's engine) matches."""
    patterns: set[str] = set()
    _collect_patterns(validator.schema, patterns)
    strings = sorted({s for path in ZOO_YAML for s in _strings(yaml.safe_load(path.read_text(encoding="utf-8")))}
                     | {m[0].split(": ", 1)[-1].strip() for m in MISTAKES} | set(VALID_CORNERS))
    expected = {p: [s for s in strings if re.search(p, s)] for p in sorted(patterns)}
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"patterns": sorted(patterns), "strings": strings}), encoding="utf-8")
    script = ("const d = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')); const out = {};"
              "for (const p of d.patterns) { const r = new RegExp(p, 'u'); out[p] = d.strings.filter(s => r.test(s)); }"
              "process.stdout.write(JSON.stringify(out));")
    proc = subprocess.run(["node", "-e", script, str(data)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == expected
    assert len(patterns) > len(PUBLIC_OPS) and any(expected.values())


def _collect_patterns(node: object, out: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                out.add(value)
            if key == "patternProperties":
                out.update(value)
            _collect_patterns(value, out)
    elif isinstance(node, list):
        for item in node:
            _collect_patterns(item, out)


def _strings(node: object):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


# ------------------------------------------------------------------------------ a real editor engine

BROKEN_YAML = """network: n(num_classes = 10)
input: 3x32x32
layer: 3
layers:
- conv: conv2d(8, 3, kernal = 3)
- stem: conv2e(8, 3)
- residual: [relu]
  shortcutt: [relu]
- gelu(approximate = "tanx")
- relu
"""


def _yaml_language_server() -> str | None:
    """yaml-language-server's executable (npm: yaml-language-server), from $YAML_LANGUAGE_SERVER or PATH."""
    return os.environ.get("YAML_LANGUAGE_SERVER") or shutil.which("yaml-language-server")


async def _drive_yaml_language_server(server: str, schema: Path, docs: dict[Path, str], complete_at: tuple) -> tuple:
    """Open ``docs`` in yaml-language-server with ``schema`` for every YAML file; their diagnostics, and
    the completion items at ``(document, line, character)``."""
    import asyncio

    from lsprotocol import types as T
    from pygls.lsp.client import LanguageClient

    settings = {"yaml": {"schemas": {schema.as_uri(): ["*.yaml"]}, "validate": True, "completion": True,
                         "hover": True, "schemaStore": {"enable": False}}}
    client = LanguageClient("archdsl-tests", "1")
    diagnostics: dict[str, list] = {}
    arrived = {doc.as_uri(): asyncio.Event() for doc in docs}

    @client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def _published(params: T.PublishDiagnosticsParams) -> None:
        diagnostics[params.uri] = params.diagnostics
        if params.uri in arrived:
            arrived[params.uri].set()

    @client.feature(T.WORKSPACE_CONFIGURATION)
    def _configuration(params: T.ConfigurationParams) -> list:
        return [settings.get(item.section) if item.section else settings for item in params.items]

    await client.start_io(server, "--stdio")
    try:
        capabilities = T.ClientCapabilities(
            workspace=T.WorkspaceClientCapabilities(configuration=True),
            text_document=T.TextDocumentClientCapabilities(completion=T.CompletionClientCapabilities(
                completion_item=T.ClientCompletionItemOptions(
                    snippet_support=True, documentation_format=[T.MarkupKind.Markdown]))))
        await client.initialize_async(T.InitializeParams(capabilities=capabilities,
                                                         root_uri=schema.parent.as_uri()))
        client.initialized(T.InitializedParams())
        client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings=settings))
        for doc, text in docs.items():
            client.text_document_did_open(T.DidOpenTextDocumentParams(
                T.TextDocumentItem(doc.as_uri(), "yaml", 1, text)))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in arrived.values())), 60)
        doc, line, character = complete_at
        result = await client.text_document_completion_async(T.CompletionParams(
            T.TextDocumentIdentifier(doc.as_uri()), T.Position(line, character)))
        items = result.items if isinstance(result, T.CompletionList) else (result or [])
        await client.shutdown_async(None)
        client.exit(None)
    finally:
        await client.stop()
    return diagnostics, items


@pytest.mark.skipif(_yaml_language_server() is None,
                    reason="needs yaml-language-server (npm install -g yaml-language-server)")
def test_yaml_language_server_validates_and_completes_with_the_schema(tmp_path: Path, converted: list[Path]) -> None:
    """The engine of VS Code's YAML extension (and of Neovim's, Helix's, Zed's yamlls), over stdio: every
    zoo YAML and converted spec is clean there, each mistake is flagged at its place, ops complete."""
    pytest.importorskip("pygls")
    import asyncio

    from lsprotocol import types as T

    schema = tmp_path / "archdsl-spec.schema.json"
    schema.write_text(S.render_schema(), encoding="utf-8")
    bad = tmp_path / "broken.yaml"
    completing = BROKEN_YAML + "- \n"
    goods = {tmp_path / f"zoo_{p.name}": p.read_text(encoding="utf-8") for p in ZOO_YAML}
    goods.update({tmp_path / f"{p.parent.name}_{p.name}": p.read_text(encoding="utf-8") for p in converted})
    docs = {**goods, bad: completing}
    last = completing.count("\n") - 1
    diagnostics, items = asyncio.run(_drive_yaml_language_server(_yaml_language_server(), schema, docs,
                                                                 (bad, last, 2)))
    flagged = {doc.name: [d.message for d in diagnostics[doc.as_uri()]] for doc in goods}
    assert len(flagged) == len(ZOO_YAML) + len(converted)
    assert {name: found for name, found in flagged.items() if found} == {}
    found = {(d.range.start.line + 1, d.range.start.character + 1, d.range.end.character + 1): d.message
             for d in diagnostics[bad.as_uri()]}
    assert found[(3, 1, 6)] == "Property layer is not allowed."
    assert found[(5, 9, 33)].startswith("conv2d has no such keyword argument")  # the string holding it
    assert found[(6, 9, 21)].startswith("not an op; did you mean 'conv2d'?")
    assert found[(8, 3, 12)] == "Property shortcutt is not allowed."
    assert found[(9, 3, 29)] == "gelu: 'approximate' must be one of \"none\", \"tanh\""
    labels = {item.label: item for item in items}
    assert set(PUBLIC_OPS) <= set(labels)  # every op completes, documented
    conv = labels["conv2d"]
    assert "conv2d(${1:out}, ${2:kernel})" in (conv.insert_text or getattr(conv.text_edit, "new_text", ""))
    assert isinstance(conv.documentation, T.MarkupContent)  # the op's parameter table, in Markdown
    assert "| `kernel` | positive integer or [height, width] | required |" in conv.documentation.value


@pytest.mark.parametrize("head", ["input: 3xHxW\n", "input: [3, H, 224]\n", "input: '[3, 2 * 16, 32]'\n"])
def test_input_forms_validate(validator, tmp_path: Path, head: str) -> None:
    text = "network: n\n" + head + "layers:\n- conv2d(4, 3) -> relu\n"
    assert not _check_errors(tmp_path, text)
    assert not _errors(validator, text)
