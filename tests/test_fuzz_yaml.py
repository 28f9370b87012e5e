"""Structural fuzzing of the YAML front end: documents built from its own vocabulary, right and wrong.

The byte and line mutations (``test_mutations.py``) and the grammar fuzzer (``test_fuzz_grammar.py``)
rarely produce a YAML document whose *structure* is unusual but well-formed YAML: an empty mapping
as a layer, a list where a call goes, ``null`` as a repeat count, a mapping as a key.  Here the
documents are Python data drawn from the front end's real keys (top-level, combinator and structure
keys), with values of every kind (calls, call fragments, shapes, quantities, ``None``, booleans,
huge numbers, nested lists, empty containers, non-string keys), dumped in block, flow and narrow
(multi-line scalars) styles, with shared sub-documents as anchors/aliases and a few tags.

Properties: the parser raises only ``DiagnosticError``; ``analyze`` (with the rules), the printers'
round trip and the reports never raise (``fuzz_support.run_everything``); every diagnostic is
located inside the file; ``archdsl check`` answers 0 or 1; a document that parses converts to the
text language and back.  ``ARCHDSL_FUZZ_EXAMPLES=20000`` runs a longer hunt.  Hand-written
variants of the newest text syntax (``input 3xHxW``, ``budget(...)``) go through ``check`` too.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import os
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from fuzz_support import assert_located, run_everything
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archdsl import ast as A
from archdsl.cli import main
from archdsl.diagnostics import DiagnosticError, format_json, format_text
from archdsl.frontend.loader import parse_source
from archdsl.frontend.printer import to_text, to_yaml
from archdsl.frontend.yaml_frontend import TOP_KEYS
from archdsl.pipeline import analyze

EXAMPLES = int(os.environ.get("ARCHDSL_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

# ------------------------------------------------------------------------------------ vocabulary

#: Strings a value may hold: good calls and chains, fragments of call syntax, shapes, quantities,
#: argument lists, conditions, keywords, escaped labels, and text that is not code at all.
CODE = [
    "relu", "batchnorm", "flatten", "global_avgpool", "identity", "sigmoid", "conv2d(8, 3)", "conv2d(64, 3)",
    "conv2d(8, 3, padding = 1)", "linear(10)", "maxpool(2)", "relu -> flatten", "a: relu", "b: conv2d(4, 1) -> relu",
    "B(4)", "B", "Stage(8, 2)", "x", "i", "width", "2 * width", "[1, 2]", "[3, 8, 8]", "3xHxW", "3x8x8", "3x8xW",
    "3xWxH", "3xHxWxH", "0xHxW", "3x0x8", "3x", "x3", "5.5M", "600M", "60K", "1G", "3Mi", "params <= 5", "5.5M x",
    "conv2d(", "conv2d(64,", ")", "(", "{ relu }", "concat { relu }", "residual { relu }", "-> relu", "relu ->",
    "", " ", "#", "# c", "true", "null", "none", "1e309", "9" * 40, "-1", "`concat`", "`block`", "``", "`x",
    "concat", "repeat", "if", "block", "let", "shortcut", "post = \"relu\"", "ignore = [\"R301\"]",
    "3, prefix = \"b\"", "weight = 0.3", "stride != 1", "x = 1", "n(num_classes = 10)", "n(", "n()", "n(a))",
    "n(c = 3, c)", "cross_entropy(label_smoothing = 0.1)", "kaiming_normal(mode = \"fan_out\")", "lib/x.arch",
    "../x.arch", "/etc/passwd", "é😀", "a\tb", "relu\n-> flatten", "conv2d(8,\n 3)",
]
#: Mapping keys: every key the front end knows, where it is right and where it is not.
KEYS = list(TOP_KEYS) + [
    "concat", "residual", "gate", "repeat", "dense", "group", "if", "aux", "let", "chain", "then", "else", "args",
    "shortcut", "as", "body", "name", "labels", "loss", "init conv2d", "init", "init conv2d x", "params", "macs",
    "depth", "conv1", "fc", "x", "B(c, k = 3)", "B", "B(", "`block`", "`concat`", "`x`", "1a", "", "a b", "3xHxW",
]
#: Keys of the wrong type (YAML allows them; archdsl refuses them with a diagnostic).
ODD_KEYS = [0, 1, -1, None, True, False, 2.5]
NUMBERS = [0, 1, 2, 3, 8, -1, -3, 2.5, 0.0, 10**30, -(10**30), 2**63, 10**400, 1e300]


def _leaf() -> st.SearchStrategy[object]:
    return st.one_of(st.sampled_from(CODE), st.sampled_from(NUMBERS), st.sampled_from([None, True, False]),
                     st.builds(dict), st.builds(list), st.integers(-5, 300))


def _key() -> st.SearchStrategy[object]:
    return st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS), st.sampled_from(ODD_KEYS))


ANY = st.recursive(_leaf(), lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_key(), inner, max_size=3)), max_leaves=8)


def _sometimes(good: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Mostly the right kind of value (seven times in eight), sometimes anything at all."""
    return st.one_of(*[good] * 7, ANY)


CALL = st.sampled_from(CODE[:20])
LABEL = st.sampled_from(["conv1", "fc", "x", "b1", "`block`", "`concat`", "then", "args", "body", "1a", "", "concat"])


def _first(key: str, d: st.SearchStrategy[dict]) -> st.SearchStrategy[dict]:
    """Mappings whose first key is ``key`` (the key that says what a layer is)."""
    return d.map(lambda m: {key: m[key], **{k: v for k, v in m.items() if k != key}})


def _with_extra(d: st.SearchStrategy[dict]) -> st.SearchStrategy[dict]:
    """A mapping, sometimes with one more key (allowed here or not)."""
    return st.one_of(d, st.tuples(d, _key(), ANY).map(lambda t: {**t[0], t[1]: t[2]}))


def _layers(layer: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return _sometimes(st.lists(layer, max_size=4))


def _layer_forms(layer: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    body = _layers(layer)
    shortcut = st.one_of(body, st.fixed_dictionaries({}, optional={
        "name": _sometimes(LABEL), "if": _sometimes(st.sampled_from(["stride != 1", "true", "x"])), "body": body}))
    return st.one_of(
        CALL,
        st.dictionaries(LABEL, _sometimes(CALL), min_size=1, max_size=1),
        st.dictionaries(LABEL, body, min_size=1, max_size=1),
        st.builds(lambda k, b: {k: b}, st.sampled_from(["concat", "gate", "group"]), body).flatmap(
            lambda d: _with_extra(st.just(d))),
        _with_extra(_first("residual", st.fixed_dictionaries({"residual": body}, optional={
            "args": _sometimes(st.sampled_from(['post = "relu"', "", "x ="])), "shortcut": _sometimes(shortcut)}))),
        _with_extra(st.builds(lambda k, n: {k: n}, st.sampled_from(["repeat", "dense"]),
                              _sometimes(st.sampled_from([2, 0, -1, "2", '3, prefix = "b"', "", None, 2.5])))
                    .flatmap(lambda d: _first(next(iter(d)), st.fixed_dictionaries(
                        {k: st.just(v) for k, v in d.items()}, optional={"as": _sometimes(LABEL), "body": body})))),
        _with_extra(_first("if", st.fixed_dictionaries(
            {"if": _sometimes(st.sampled_from(["true", "x > 1", "width"]))}, optional={"then": body, "else": body}))),
        _with_extra(_first("aux", st.fixed_dictionaries(
            {"aux": _sometimes(st.dictionaries(LABEL, CALL, min_size=1, max_size=1))},
            optional={"args": _sometimes(st.sampled_from(["weight = 0.3", ""]))}))),
        st.builds(lambda v: {"let": v}, _sometimes(st.dictionaries(st.sampled_from(["x", "y", "width", "let", ""]),
                                                                   _sometimes(CALL), max_size=2))),
        st.builds(lambda v: {"chain": v}, _sometimes(st.lists(layer, max_size=3))),
        st.dictionaries(LABEL, layer, min_size=1, max_size=1),  # a labelled structured element
        ANY,
    )


LAYER = st.deferred(lambda: _layer_forms(LAYER))
TOP = {
    "network": _sometimes(st.sampled_from(["n", "n(num_classes = 10)", "n(", "n(a))", "tiny(c = 3)", ""])),
    "input": _sometimes(st.one_of(st.sampled_from(["3x8x8", "3xHxW", "3x8xW", "3xHx8", "1x4x4", "3x8", "3x8x8x8",
                                                   "3xHxWxH", "[3, 8, 8]", "3xhxw", " 3xHxW ", "3x" + "9" * 30]),
                                  st.lists(st.sampled_from([3, 8, 0, -1, "H", "W", "x", None, 2.5, True]),
                                           max_size=4))),
    "use": _sometimes(st.lists(st.sampled_from(["lib.arch", "missing.arch", "", "/etc/passwd", "f.yaml"]),
                               max_size=2)),
    "let": _sometimes(st.lists(st.dictionaries(st.sampled_from(["width", "x", "n", "", "let", "H"]), ANY,
                                               max_size=2), max_size=3)),
    "settings": _sometimes(st.lists(st.dictionaries(st.sampled_from(["loss", "init conv2d", "init", "x"]),
                                                    _sometimes(st.sampled_from(CODE[-30:])), max_size=2),
                                    max_size=2)),
    "rules": _sometimes(st.sampled_from(['ignore = ["R301"]', "asym_grid = [12, 20]", "", "x", "ignore ="])),
    "budget": _sometimes(st.one_of(
        st.dictionaries(st.sampled_from(["params", "macs", "depth", "x", "", "params x"]),
                        _sometimes(st.sampled_from(["5.5M", "600M", 60, 0, -1, 2.5, None, True, "2 * width", ""])),
                        max_size=3),
        st.lists(st.dictionaries(st.sampled_from(["params", "depth"]), st.sampled_from([5, "1M"]), max_size=2),
                 max_size=2))),
    "blocks": _sometimes(st.dictionaries(st.sampled_from(["B(c, k = 3)", "B", "Stage(c, s)", "B(", "1B", "relu"]),
                                         _layers(LAYER), max_size=2)),
    "layers": _layers(LAYER),
}
#: A network that mostly gets past the parser: the passes after it see odd structure too.
NETWORK = st.fixed_dictionaries(
    {"network": st.sampled_from(["n", "n(c = 4)"]), "input": st.sampled_from(["3x8x8", "3xHxW", "[3, 8, 8]"]),
     "layers": st.one_of(st.lists(LAYER, min_size=1, max_size=5), _layers(LAYER))},
    optional={k: v for k, v in TOP.items() if k not in ("network", "input", "layers")})
DOCUMENT = st.one_of(
    NETWORK, NETWORK, NETWORK, NETWORK,
    st.fixed_dictionaries({}, optional=TOP),
    _with_extra(st.fixed_dictionaries({}, optional=TOP)),
    ANY,
)

#: Well-formed networks (the vocabulary of the zoo), to be broken in exactly one place.
GOOD_CALL = st.sampled_from([
    "relu", "batchnorm", "conv2d(8, 3, padding = 1)", "conv2d(c, 1)", "maxpool(2)", "B(8)", "identity", "sigmoid",
    "conv2d(8, 3, stride = 2, padding = 1)", "avgpool(3, stride = 1, padding = 1)", "dropout(0.1)",
    "conv2d(8, 1) -> batchnorm -> relu"])
GOOD_LABEL = st.sampled_from(["conv1", "b1", "head", "`block`", "`concat`", "stage"])


def _good_forms(layer: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    body = st.lists(layer, min_size=1, max_size=3)
    return st.one_of(
        GOOD_CALL, GOOD_CALL, GOOD_CALL, st.just("x1: conv2d(4, 1) -> relu"),
        st.dictionaries(GOOD_LABEL, GOOD_CALL, min_size=1, max_size=1),
        st.dictionaries(GOOD_LABEL, body, min_size=1, max_size=1),
        st.builds(lambda k, b: {k: b}, st.sampled_from(["concat", "group"]), body),
        st.just({"gate": ["global_avgpool", "conv2d(8, 1)", "sigmoid"]}),
        _first("residual", st.fixed_dictionaries({"residual": body}, optional={
            "args": st.just('post = "relu"'),
            "shortcut": st.one_of(body, st.fixed_dictionaries({"body": body}, optional={
                "name": GOOD_LABEL, "if": st.sampled_from(["c != 4", "true"])}))})),
        _first("repeat", st.fixed_dictionaries({"repeat": st.sampled_from([2, "2", '2, prefix = "b"', 1]),
                                                "body": body}, optional={"as": st.just("i")})),
        _first("dense", st.fixed_dictionaries({"dense": st.sampled_from([2, "3"]),
                                               "body": st.just(["conv2d(4, 3, padding = 1)"])},
                                              optional={"as": st.just("i")})),
        _first("if", st.fixed_dictionaries({"if": st.sampled_from(["c > 2", "true", "false"]), "then": body},
                                           optional={"else": body})),
        _first("aux", st.fixed_dictionaries({"aux": st.just({"a1": ["global_avgpool", "flatten", "linear(10)"]})},
                                            optional={"args": st.just("weight = 0.3")})),
        st.just({"let": {"w": 8}}),
        st.builds(lambda b: {"chain": [{"concat": b}, "relu"]}, body),
    )


GOOD_LAYER = st.deferred(lambda: _good_forms(GOOD_LAYER))
GOOD = st.fixed_dictionaries(
    {"network": st.just("n(c = 4)"), "input": st.sampled_from(["3x16x16", "3xHxW", "[3, 16, 16]"]),
     "layers": st.lists(GOOD_LAYER, min_size=1, max_size=4).map(
         lambda ls: ls + ["global_avgpool -> flatten -> linear(10)"])},
    optional={"blocks": st.just({"B(out)": ["conv2d(out, 3, padding = 1)", "relu"]}),
              "let": st.just([{"width": 8}, {"counts": "[1, 2]"}]),
              "settings": st.just([{"loss": "cross_entropy(label_smoothing = 0.1)"},
                                   {"init conv2d": 'kaiming_normal(mode = "fan_out")'}]),
              "rules": st.just('ignore = ["R301"]'),
              "budget": st.sampled_from([{"params": "5.5M", "depth": 60}, {"macs": "1K"}, [{"params": 10}]])})


def _places(data: object, path: tuple = ()) -> list[tuple]:
    """Paths to every value inside ``data`` (lists and mappings and scalars), the root first."""
    out = [path]
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for k, v in items:
        out += _places(v, path + (k,))
    return out


@st.composite
def broken_networks(draw: st.DrawFn) -> object:
    """A well-formed network with one value replaced, emptied, wrapped, or one key dropped, added or renamed."""
    data = copy.deepcopy(draw(GOOD))  # its st.just() parts are shared between draws
    path = draw(st.sampled_from(_places(data)[1:]))
    parent, last = _get(data, path[:-1]), path[-1]
    how = draw(st.integers(0, 5))
    if how == 0:
        parent[last] = draw(ANY)
    elif how == 1:
        parent[last] = draw(st.sampled_from([None, {}, [], "", 0, True, 2.5, 10**30]))
    elif how == 2:
        parent[last] = [parent[last]]
    elif how == 3 and isinstance(parent, dict):
        del parent[last]
    elif how == 4 and isinstance(parent, dict):
        parent[draw(_key())] = draw(ANY)
    elif isinstance(parent, dict):  # rename the key, keeping the order
        new = draw(_key())
        items = [(new if k == last else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)
    else:
        parent.insert(last, draw(ANY))
    return data


# ------------------------------------------------------------------------------------ rendering


def _nodes(data: object, path: tuple = (), seen: set[int] | None = None) -> list[tuple]:
    """Paths to every list and mapping inside ``data`` (the places a shared node can go), each once."""
    seen = set() if seen is None else seen
    seen.add(id(data))
    out = [path]
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for k, v in items:
        if isinstance(v, (dict, list)) and id(v) not in seen:
            out += _nodes(v, path + (k,), seen)
    return out


def _get(data: object, path: tuple) -> object:
    for p in path:
        data = data[p]  # type: ignore[index]
    return data


def _contains(data: object, node: object) -> bool:
    return any(_get(data, p) is node for p in _nodes(data))


def _share(data: object, pick: int, into: int, cycle: bool) -> None:
    """Make one list/mapping hold another, the same object, which dumps as an anchor and an alias
    (a mapping or list that holds itself, a recursive alias, now and then)."""
    paths = _nodes(data)
    src, dst = _get(data, paths[pick % len(paths)]), _get(data, paths[into % len(paths)])
    if (src is dst or _contains(src, dst)) and not cycle:
        return
    if isinstance(dst, list):
        dst.append(src)
    elif isinstance(dst, dict):
        dst["conv1"] = src


def _dump(data: object, style: int) -> str:
    if style == 0:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if style == 1:
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=True, allow_unicode=True)
    if style == 2:
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=12)  # multi-line scalars
    if style == 3:
        return yaml.safe_dump(data, sort_keys=False, canonical=True)  # explicit !!str/!!map tags
    if style == 4:
        return json.dumps(data, ensure_ascii=False) + "\n"  # JSON is YAML (keys become strings)
    # every scalar quoted or a block scalar, some folded over lines: positions inside them must map back
    quote = ('"', "'", "|", ">")[style - 5]
    return yaml.safe_dump(data, sort_keys=False, default_style=quote, width=16, allow_unicode=True)


#: Text-level edits: tags, complex keys, merge keys, a second document, flow/block tricks.
EDITS = [
    ("", ""), ("- ", "- !!str "), ("- ", "- !foo "), ("- ", "- !!binary "), ("- ", "- !!python/tuple "),
    (": ", ": !!int "), (": ", ": !!float "), (": ", ": !!null "), (": ", ": !!seq "), (": ", ": !!map "),
    (": ", ": &a "), ("- ", "- *a\n- "), ("\n", "\n? [a]\n: b\n"), ("\n", "\n? {a: b}\n: c\n"),
    ("\n", "\n<<: {x: 1}\n"), ("\n", "\n---\n"), ("- ", "- |\n  "), ("- ", "- >-\n  "), (": ", ": \"\\\n  "),
    ("- ", "- ? x\n  "), ("\n", "\nlayers:\n"),
]


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A YAML document: drawn data, perhaps with shared nodes, dumped in some style, perhaps edited."""
    data = copy.deepcopy(draw(st.one_of(DOCUMENT, broken_networks(), broken_networks(), GOOD)))
    for _ in range(draw(st.integers(0, 2))):
        _share(data, draw(st.integers(0, 50)), draw(st.integers(0, 50)), draw(st.integers(0, 9)) == 0)
    style = draw(st.integers(0, 8))
    try:
        text = _dump(data, style)
    except (TypeError, ValueError, RecursionError):  # JSON: non-string keys, cycles
        text = _dump(data, 0)
    old, new = draw(st.sampled_from(EDITS)) if draw(st.integers(0, 2)) == 0 else ("", "")
    if old and old in text:
        at = draw(st.integers(0, text.count(old) - 1))
        parts = text.split(old)
        text = old.join(parts[: at + 1]) + new + old.join(parts[at + 1:])
    return text


# ------------------------------------------------------------------------------------ properties


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(out):
        rc = main(list(argv))
    return rc, out.getvalue()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("yamlfuzz")


def _hoisted(spec: A.SpecFile) -> A.SpecFile:
    """``spec`` with the ``let`` items among its layers made global ones, after the others."""
    lets = tuple(s for s in spec.body if isinstance(s, A.Let))
    return dataclasses.replace(spec, lets=spec.lets + lets, body=tuple(s for s in spec.body if s not in lets))


def _check_top_level_let(spec: A.SpecFile, path: Path, text: str) -> None:
    """``run_everything`` for a document with ``let`` items among its layers: the text language
    reads every ``let`` outside a block or group as a global one, so the printed text re-parses
    equal up to that move; everything else is checked as usual."""
    assert _hoisted(parse_source(to_text(spec), "<printed>")) == _hoisted(spec), to_text(spec)
    assert parse_source(to_yaml(spec), "<printed>", yaml=True) == spec, to_yaml(spec)
    res = analyze(path, rules=True)
    diags = res.diags.sorted()
    assert_located(diags, {str(path): text}, text)
    assert not [d for d in diags if d.code in ("R000", "E399")], diags
    for d in diags:
        format_text(d, res.sources)
    format_json(diags)


def check_document(text: str, folder: Path, cli: bool) -> None:
    """Every property of the module docstring, for one document."""
    try:
        spec = parse_source(text, "f.yaml", yaml=True)
    except DiagnosticError as exc:
        spec = None
        assert_located([exc.diagnostic], {"f.yaml": text}, text)
    path = folder / "f.yaml"
    path.write_text(text, encoding="utf-8")
    if spec is not None and any(isinstance(s, A.Let) for s in spec.body):
        _check_top_level_let(spec, path, text)
    else:
        res = run_everything(path)
        assert_located(res.diags.sorted(), {str(path): text}, text)
    if not cli:
        return
    rc, out = _cli("check", str(path))
    assert rc in (0, 1) and "Traceback" not in out, f"check: exit {rc}\n{out}\n{text}"
    if spec is not None:
        arch, back = folder / "f.arch", folder / "back.yaml"
        rc, out = _cli("convert", str(path), "-o", str(arch))
        assert rc == 0, f"convert to .arch: exit {rc}\n{out}\n{text}"
        rc, out = _cli("convert", str(arch), "-o", str(back))
        assert rc == 0, f"convert back: exit {rc}\n{out}\n{arch.read_text()}"
        assert parse_source(back.read_text(), "back.yaml", yaml=True) == parse_source(arch.read_text(), "f.arch")


@FUZZ
@given(text=documents(), cli=st.integers(0, 3))
def test_structured_yaml_documents(text: str, cli: int, scratch: Path) -> None:
    check_document(text, scratch, cli == 0)


# ------------------------------------------------------------------------------------ positions

HEAD = "network: n\ninput: 3x8x8\nlayers:\n"


@pytest.mark.parametrize("text, where", [
    (HEAD + "- &a # c\n  \"rel\"\n", (5, 4)),                        # after an anchor and a comment
    (HEAD + "- !!str # c\n  rel\n", (5, 3)),                            # after a tag and a comment
    (HEAD + "- &a conv2d(8,\n    3, bogus = 1)\n", (5, 8)),            # anchored multi-line plain scalar
    (HEAD + "- 'conv2d(8,\n  3, bogus = 1)'\n", (5, 6)),               # multi-line quoted, no escapes
    (HEAD + "- \"conv2d(8,\\\n  \\ 3, bogus = 1)\"\n", (4, 4)),      # escapes: at the value's start
    (HEAD + "- |-\n  conv2d(8,\n    3, bogus = 1)\n", (6, 8)),         # block scalar
    ('network: n\ninput: 3x8x8\nlayers: ["relu\\n-> bogus"]\n', (3, 11)),  # an escaped line break
    ("network: >-\n  n(c = 3))\ninput: 3x8x8\nlayers: [relu]\n", (2, 10)),
    ("network: 'n(c =\n  3, c = )'\ninput: 3x8x8\nlayers: [relu]\n", (2, 9)),  # end of the parameters
    ("network: n\ninput: !!str |-\n  3xHxWxC\nlayers: [relu]\n", (3, 9)),
])
def test_positions_inside_scalars(text: str, where: tuple[int, int], scratch: Path) -> None:
    """The first error of a spec points at the offending token inside a tagged, anchored, quoted,
    block or multi-line scalar (at the value's start where escapes fold it)."""
    path = scratch / "pos.yaml"
    path.write_text(text, encoding="utf-8")
    first = next(d for d in analyze(path).diags.sorted() if d.is_error)
    assert (first.loc.line, first.loc.col) == where, first


# ------------------------------------------------------------------------------------ text syntax

#: The newest text syntax, right and wrong: symbolic input shapes and budgets.
INPUTS = [
    "input 3xHxW", "input 3x224xW", "input 3xHx224", "input 1xHxW", "input 3xHxWxH", "input 3xWxH", "input 0xHxW",
    "input 3x0xW", "input 3xH", "input 3xHx", "input 3xhxw", "input 3x_xW", "input 3xH_xW", "input 3xHxW3",
    "input 3x" + "9" * 40 + "xW", "input " + "9" * 40 + "xHxW", "input [3, H, W]", 'input [3, "H", W]',
    "input 3 x H x W", "input 3xHxW\ninput 3xHxW", "input 3xxW", "input x3xHxW", "input 3xHxW.5", "input 3xHxWx",
    "input 3xHxW # c", "input 3xHx\u00e9", "input 3x\u041dxW", "input 3xHxW(", "input H", "input 3xCxW",
    "input 3xHxW\nlet H = 2", "let H = 8\ninput 3xHxW", "input 3xHxW\nbudget(params <= H)", "input [3, H + 1, W]",
]
BUDGETS = [
    "budget()", "budget(params <= 5.5M)", "budget(params <= 5.5M, macs <= 600M, depth <= 60)", "budget(params < 5M)",
    "budget(params >= 5M)", "budget(params == 5M)", "budget(params != 5M)", "budget(params <= 5.5X)",
    "budget(params <= 5.5Mi)", "budget(params <= 1e3)", "budget(params <= -1)", "budget(params <= 0)",
    "budget(params <= 0.5)", "budget(params <= 2 * width)", "budget(params <= " + "9" * 60 + "G)",
    "budget(params <= 1e309)", "budget(params <= true)", 'budget(params <= "5M")', "budget(params <= [1])",
    "budget(params <= 5M, params <= 6M)", "budget(x <= 5M)", "budget(params <= 5M,)", "budget(,)", "budget(params)",
    "budget(params <=)", "budget(<= 5M)", "budget(params <= 5M", "budget", "budget params <= 5M",
    "budget(params <= .5K)", "budget(params <= 2.G)", "budget(depth <= 1.5)", "budget(depth <= 0)",
    "budget(macs <= 1 / 0)", 'budget(params <= error("x"))', "budget(params <= len(3))", "budget(params <= H)",
    "budget(params <= 5M)\nbudget(params <= 5M)", "budget(params <= 5.5M.5)", "budget(params <= 00M)",
    "budget(params <= 5M5)", "budget(block <= 5M)", "budget(`x` <= 5M)", "budget(activations <= 1K)",
    "budget(params <= none)", "budget(params <= 5 M)", "budget(params <= 5M * 2)", "budget(params <= -5M)",
]
BODY = "conv2d(8, 3) -> relu -> global_avgpool -> flatten -> linear(10)\n"
TEXT_CASES = [f"network n\n{i}\n{BODY}" for i in INPUTS] + [
    f"let width = 4\nnetwork n\n{i}\n{b}\n{BODY}" for b in BUDGETS for i in ("input 3x8x8", "input 3xHxW")]
CLI_FLAGS = [["--input", "3xHxW"], ["--input", "3xHxWxH"], ["--input", "3x0xW"], ["--input", ""],
             ["--budget", "params<=5.5M"], ["--budget", "params<=H"], ["--budget", "params<="], ["--budget", "x<=1"],
             ["--budget", "depth<=" + "9" * 50], ["--budget", "params<=5M", "--budget", "params<=1K"]]


@pytest.mark.parametrize("case", range(len(TEXT_CASES)))
def test_new_text_syntax_variants(case: int, scratch: Path) -> None:
    """Each variant is checked, located and printed like any spec; ``check`` answers 0 or 1."""
    text = TEXT_CASES[case]
    path = scratch / f"t{case}.arch"
    path.write_text(text, encoding="utf-8")
    res = run_everything(path)
    assert_located(res.diags.sorted(), {str(path): text}, text)
    rc, out = _cli("check", str(path))
    assert rc in (0, 1) and "Traceback" not in out, f"exit {rc}\n{out}\n{text}"


@pytest.mark.parametrize("flags", CLI_FLAGS, ids=" ".join)
@pytest.mark.parametrize("input_line", ["input 3x8x8", "input 3xHxW"])
def test_input_and_budget_options(flags: list[str], input_line: str, scratch: Path) -> None:
    """``--input`` and ``--budget`` on a concrete and on a symbolic spec: never a traceback."""
    path = scratch / "opts.arch"
    path.write_text(f"network n\n{input_line}\n{BODY}", encoding="utf-8")
    try:
        rc, out = _cli("check", str(path), *flags)
    except SystemExit as exc:  # argparse refuses a malformed option: a usage error, exit 2
        rc, out = exc.code, ""
    assert rc in (0, 1, 2) and "Traceback" not in out, f"exit {rc}\n{out}"
