"""``archdsl schema``: a JSON Schema (draft 2020-12) for YAML specs, generated from the registries.

Editors with a YAML extension (VS Code's redhat.vscode-yaml, anything built on yaml-language-server)
validate and complete a spec with it.  The structure comes from the YAML front end
(:mod:`archdsl.frontend.yaml_frontend`: its top-level keys, combinator keys and reserved names); the
ops, their parameters and the settings come from the registries (:data:`archdsl.ops.PUBLIC_OPS`,
:mod:`archdsl.passes.settings`, :data:`archdsl.rules.config.OPTIONS`).

YAML specs write every call as text-language code in a string (``conv: conv2d(64, 3, stride = 2)``),
so a JSON Schema cannot parse them.  What it can do, with regular expressions, is point at the
common mistakes: a keyword argument an op does not have (``conv2d(64, kernal = 3)``), a string for a
parameter with fixed choices that is not one of them, and a call of a lower-case name one edit away
from an op name (``conv2e(64, 3)``, ``rleu``).  The first two never reject a call ``check`` accepts
(short of a string literal in the code that itself reads like a call, ``prefix = "relu(x = "``); the
third rejects a lower-case *block* named one edit from an op, a documented convention (blocks are
CamelCase).  The patterns are ECMAScript- and Python-compatible (lookbehind included), as both
validators need.
The committed copy is ``schemas/archdsl-spec.schema.json``; a test keeps it equal to this output.
The ``schema`` subcommand is :mod:`archdsl.schema_cli`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .ops import OpSpec, P

DRAFT = "https://json-schema.org/draft/2020-12/schema"
#: Where the committed schema lives in the repository (relative to its root).
SCHEMA_PATH = "schemas/archdsl-spec.schema.json"

_NAME = "[A-Za-z_][A-Za-z0-9_]*"
_WORD_START = "(?<![A-Za-z0-9_])"
_WORD_END = "(?![A-Za-z0-9_])"
# Inside a call's parentheses: anything but parentheses, or a group nested up to two levels (a
# deeper one simply ends the match, so the check stays sound: it never rejects a valid call).
_IN_PARENS = r"(?:[^()]|\((?:[^()]|\([^()]*\))*\))*?"
#: Options of the combinators (archdsl/passes/elaborate.py binds them; a test keeps the lists equal).
COMBINATOR_OPTIONS: dict[str, tuple[str, ...]] = {
    "residual": ("scale", "post"),
    "repeat": ("count", "prefix", "start"),
    "dense": ("count", "prefix", "start"),
    "aux": ("weight",),
}
#: What each parameter kind of :mod:`archdsl.ops` accepts, in words.
KIND_TEXT = {
    "pos": "positive integer",
    "nonneg": "non-negative integer",
    "pair": "positive integer or [height, width]",
    "pair0": "non-negative integer or [height, width]",
    "pad": 'non-negative integer, [height, width], "same" or "valid"',
    "float": "number",
    "prob": "number in [0, 1]",
    "bool": "true or false",
    "perm": "list of dimension indices, e.g. [0, 2, 3, 1]",
    "sizes": "positive integer or list of them",
    "choice": "one of the listed strings",
}
#: String values a parameter kind accepts (the rest of a kind's values are numbers or lists).
_KIND_STRINGS = {"pad": ("same", "valid")}


# ------------------------------------------------------------------------------ regular expressions


def _alt(words: Iterable[str]) -> str:
    """A non-capturing alternation of literal words, longest first (so no word hides a longer one)."""
    return "(?:" + "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w))) + ")"


def call_prefix(callees: Iterable[str]) -> str:
    """Regex: a call of one of ``callees`` up to some point inside its argument list."""
    return _WORD_START + _alt(callees) + r"\s*\(" + _IN_PARENS


def bad_keyword(allowed: Sequence[str]) -> str:
    """Regex: a keyword argument ``name =`` whose name is not in ``allowed`` (``==`` is no keyword)."""
    guard = f"(?!{_alt(allowed)}\\s*=)" if allowed else ""
    return _WORD_START + guard + _NAME + r"\s*=(?!=)"


def bad_choice(param: str, choices: Sequence[str]) -> str:
    """Regex: ``param = "x"`` (a string literal) where ``x`` is none of ``choices``."""
    quoted = [f'"{c}"' for c in choices] + [f"'{c}'" for c in choices]
    return _WORD_START + re.escape(param) + r"\s*=\s*" + f"(?!{_alt(quoted)}\\s*[,)])" + "[\"']"


def near_misses(word: str) -> str:
    """Regex alternatives for the lower-case names one edit (delete, transpose, replace, insert) from ``word``."""
    alts = {word[:i] + word[i + 1:] for i in range(len(word))}
    alts |= {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)}
    parts = [re.escape(a) for a in sorted(a for a in alts if re.fullmatch(_NAME, a))]
    parts += [re.escape(word[:i]) + "[a-z0-9_]" + re.escape(word[i + 1:]) for i in range(len(word))]
    parts += [re.escape(word[:i]) + "[a-z0-9_]" + re.escape(word[i:]) for i in range(1, len(word) + 1)]
    parts += ["[a-z_]" + re.escape(word)]
    return "(?:" + "|".join(parts) + ")"


def callee_position() -> str:
    """Regex: where a chain string must hold a callee: its start, after ``->`` or ``{``, past a label."""
    label = f"(?:{_NAME}|`[A-Za-z_][A-Za-z0-9_-]*`)"
    return r"(?:^|->|\{)\s*" + f"(?:{label}\\s*:\\s*)?"


# ------------------------------------------------------------------------------ descriptions


def _show(value: object) -> str:
    from .expr import show

    return show(tuple(value) if isinstance(value, list) else value)  # type: ignore[arg-type]


def param_type(p: P) -> str:
    """What an op parameter accepts, in words (its kind, choices)."""
    if p.kind == "choice":
        return "one of " + ", ".join(_show(c) for c in p.choices)
    return KIND_TEXT.get(p.kind, p.kind)


def signature(op: OpSpec) -> str:
    """``conv2d(out, kernel, stride = 1, ...)``: the op's parameters in positional order."""
    parts = []
    for p in op.params:
        parts.append(p.name if p.required else f"{p.name} = {_show(p.default)}")
    return f"{op.name}({', '.join(parts)})"


def op_markdown(op: OpSpec) -> str:
    """An op's Markdown description: what it does, its signature and a table of its parameters."""
    lines = [f"**{op.name}** ({op.family}): {op.doc}", "", f"`{signature(op)}`"]
    if op.params:
        lines += ["", "| parameter | type | default | |", "|---|---|---|---|"]
        for p in op.params:
            default = "required" if p.required else f"`{_show(p.default)}`"
            cells = (f"`{p.name}`", param_type(p), default, p.doc)
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def op_snippet(op: OpSpec) -> dict:
    """A ``defaultSnippets`` entry (yaml-language-server) inserting a call with its required parameters."""
    required = [p.name for p in op.params if p.required]
    args = ", ".join(f"${{{i}:{name}}}" for i, name in enumerate(required, 1))
    body = f"{op.name}({args})" if required else op.name
    return {"label": op.name, "description": f"{op.doc} — {signature(op)}", "markdownDescription": op_markdown(op),
            "body": body}


# ------------------------------------------------------------------------------ checks on code strings


def _not(pattern: str, message: str) -> dict:
    """A subschema rejecting strings in which ``pattern`` matches anywhere.

    Written as a ``pattern`` with a negative lookahead rather than ``not``: yaml-language-server then
    shows ``patternErrorMessage`` (a ``not`` only gets "Matches a schema that is not allowed")."""
    return {"pattern": f"^(?![\\s\\S]*?{pattern})", "patternErrorMessage": message, "errorMessage": message}


def op_checks(ops: Mapping[str, OpSpec]) -> list[dict]:
    """Per op: unknown keyword arguments and bad choice strings, as ``pattern`` subschemas."""
    out = []
    for name, op in sorted(ops.items()):
        names = [p.name for p in op.params]
        listed = ", ".join(names) if names else "none"
        out.append(_not(call_prefix([name]) + bad_keyword(names),
                        f"{name} has no such keyword argument (its parameters: {listed})"))
        for p in op.params:
            choices = tuple(p.choices) if p.kind == "choice" else _KIND_STRINGS.get(p.kind, ())
            if choices:
                out.append(_not(call_prefix([name]) + bad_choice(p.name, choices),
                                f"{name}: '{p.name}' must be one of {', '.join(_show(c) for c in choices)}"))
    for name, options in sorted(COMBINATOR_OPTIONS.items()):
        out.append(_not(call_prefix([name]) + bad_keyword(options),
                        f"{name} has no such option (its options: {', '.join(options)})"))
    return out


def misspelled_op_checks(ops: Iterable[str], reserved: Iterable[str]) -> list[dict]:
    """Per op: a call of a lower-case name one edit away from it (that is no op itself) is refused."""
    ops = sorted(ops)
    known = _alt([*ops, *reserved]) + _WORD_END
    out = []
    for name in ops:
        pattern = callee_position() + f"(?!{known})" + near_misses(name) + _WORD_END + r"(?!\s*:)"
        out.append(_not(pattern, f"not an op; did you mean '{name}'? (a block one edit away from an op's name "
                                 "is taken for a typo: name blocks in CamelCase)"))
    return out


def options_check(allowed: Sequence[str], what: str) -> dict:
    """A top-level ``name = value`` in an argument-list string that is not one of ``allowed``."""
    pattern = r"(?:^|,)\s*" + bad_keyword(allowed)
    return _not(pattern, f"{what} has no such option (options: {', '.join(allowed)})")


# ------------------------------------------------------------------------------ the schema


def _label_pattern(reserved: Iterable[str]) -> str:
    plain = f"^(?!{_alt(reserved)}$){_NAME}$"
    return f"{plain}|^`[A-Za-z_][A-Za-z0-9_-]*`$"


def _settings_schema() -> dict:
    from .passes.settings import INIT_SCHEMES, INIT_TARGETS, LOSSES

    loss_call = {"type": "string", "pattern": r"^\s*" + _alt(LOSSES) + _WORD_END + r"\s*(?:\([\s\S]*\))?\s*$",
                 "allOf": [_not(call_prefix([n]) + bad_keyword(list(p)), f"loss {n} has no such keyword argument "
                                f"(its parameters: {', '.join(p) or 'none'})") for n, p in sorted(LOSSES.items())],
                 "description": "the loss: " + ", ".join(f"{n}({', '.join(p)})" for n, p in LOSSES.items()),
                 "defaultSnippets": [{"label": n, "body": f"{n}($1)"} for n in LOSSES]}
    init_call = {"type": "string",
                 "pattern": r"^\s*" + _alt(INIT_SCHEMES) + _WORD_END + r"\s*(?:\([\s\S]*\))?\s*$",
                 "allOf": [_not(call_prefix([n]) + bad_keyword([*schema, "bias"]),
                                f"init {n} has no such keyword argument (its parameters: "
                                f"{', '.join([*schema, 'bias'])})") for n, (_, schema) in sorted(INIT_SCHEMES.items())],
                 "description": "the init scheme: " + ", ".join(INIT_SCHEMES),
                 "defaultSnippets": [{"label": n, "body": f"{n}($1)" if schema else n}
                                     for n, (_, schema) in INIT_SCHEMES.items()]}
    targets = _alt(INIT_TARGETS)
    item = {"type": "object", "minProperties": 1,
            # the front end splits the key at whitespace: " loss " and "init  conv2d" are fine
            "properties": {"loss": {"$ref": "#/$defs/lossCall"},
                           **{f"init {t}": {"$ref": "#/$defs/initCall"} for t in INIT_TARGETS}},
            "patternProperties": {r"^\s*loss\s*$": {"$ref": "#/$defs/lossCall"},
                                  f"^\\s*init\\s+{targets}\\s*$": {"$ref": "#/$defs/initCall"}},
            "additionalProperties": False,
            "description": "`loss: NAME(args)` or `init TARGET: SCHEME(args)`; targets: " + ", ".join(INIT_TARGETS),
            "defaultSnippets": [{"label": "loss", "body": {"loss": "cross_entropy($1)"}}] +
                               [{"label": f"init {t}", "body": {f"init {t}": "$1"}} for t in INIT_TARGETS]}
    return {"settings": {"type": "array", "items": item, "description": "training settings: the loss and the "
                         "initialization of each layer type, in order"},
            "lossCall": loss_call, "initCall": init_call}


def _element_branches(stmt: bool, reserved: Sequence[str]) -> list[dict]:
    """``if KEY present then SHAPE`` for every structure key an element (or a statement) may start with."""
    body, expr = {"$ref": "#/$defs/body"}, {"$ref": "#/$defs/expr"}
    name = {"type": "string", "pattern": f"^(?!{_alt(reserved)}$){_NAME}$", "description": "the loop variable"}
    args = {"$ref": "#/$defs/argList"}
    shapes: dict[str, dict] = {
        "group": {"properties": {"group": body}},
        "concat": {"properties": {"concat": body}},
        "gate": {"properties": {"gate": body}},
        "residual": {"properties": {"residual": body, "args": {"allOf": [args, options_check(
            COMBINATOR_OPTIONS["residual"], "residual")]}, "shortcut": {"$ref": "#/$defs/shortcut"}}},
    }
    for kw in ("repeat", "dense"):
        count = {"anyOf": [{"type": "integer", "minimum": 0},
                           {"type": "string", "allOf": [options_check(COMBINATOR_OPTIONS[kw], kw)]}]}
        shapes[kw] = {"properties": {kw: count, "as": name, "body": body}}
    if stmt:
        shapes.update({
            "let": {"properties": {"let": {"allOf": [{"$ref": "#/$defs/letBinding"}, {"maxProperties": 1}]}}},
            "if": {"properties": {"if": expr, "then": body, "else": body}, "required": ["then"]},
            "aux": {"properties": {"aux": {"$ref": "#/$defs/element"},
                                   "args": {"allOf": [args, options_check(COMBINATOR_OPTIONS["aux"], "aux")]}}},
            "chain": {"properties": {"chain": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/element"}}}},
        })
    out = []
    for key, shape in shapes.items():
        out.append({"if": {"required": [key]}, "then": {**shape, "additionalProperties": False}})
    return out


def _by_kind(string: dict, array: dict | None, mapping: dict) -> dict:
    """Dispatch on the YAML node's kind with if/then/else, so that a validator reports the error of
    the one alternative that applies (an ``anyOf`` would only say that none matched).

    The schema keeps to keywords draft-07 has too and never gives ``$ref`` siblings (draft-07 ignores
    them): yaml-language-server, the engine of most editors' YAML support, validates with draft-07
    semantics."""
    other = mapping if array is None else {"if": {"type": "array"}, "then": array, "else": mapping}
    return {"if": {"type": "string"}, "then": string, "else": other}


def _element_object(stmt: bool, keywords: Sequence[str], reserved: Sequence[str]) -> dict:
    words = list(keywords) if stmt else [k for k in keywords if k not in ("let", "if", "aux", "chain")]
    labelled = {"minProperties": 1, "maxProperties": 1,
                "propertyNames": {"pattern": _label_pattern(reserved)},
                "additionalProperties": _by_kind({"$ref": "#/$defs/code"}, {"$ref": "#/$defs/layerList"},
                                                 {"$ref": "#/$defs/element"})}
    return {"type": "object", "minProperties": 1,
            "allOf": _element_branches(stmt, reserved) + [
                {"if": {"not": {"anyOf": [{"required": [k]} for k in words]}}, "then": labelled}]}


def _combinator_snippets() -> list[dict]:
    return [
        {"label": "label: call", "body": {"${1:name}": "${2:conv2d(64, 3)}"}},
        {"label": "concat", "description": "parallel branches joined along the channels",
         "body": {"concat": ["$1"]}},
        {"label": "residual", "description": "input + body(input), with an optional shortcut",
         "body": {"residual": ["$1"]}},
        {"label": "gate", "description": "input * body(input) (squeeze-excitation)", "body": {"gate": ["$1"]}},
        {"label": "repeat", "description": "the body N times (loop variable `as`)",
         "body": {"repeat": "${1:2}", "as": "${2:i}", "body": ["$3"]}},
        {"label": "dense", "description": "DenseNet block: each layer sees every earlier output",
         "body": {"dense": "${1:6}", "as": "${2:i}", "body": ["$3"]}},
        {"label": "if", "body": {"if": "$1", "then": ["$2"]}},
        {"label": "let", "body": {"let": {"${1:name}": "$2"}}},
    ]


def build_schema() -> dict:
    """The JSON Schema for YAML specs, as a dict (deterministic: same registries, same schema)."""
    from .ast import RESERVED_NAMES
    from .frontend.yaml_frontend import KEYWORDS, TOP_KEYS
    from .ops import PUBLIC_OPS
    from .rules.config import OPTIONS

    reserved = sorted(set(RESERVED_NAMES) | set(KEYWORDS))
    keywords = sorted(KEYWORDS)
    ops = dict(sorted(PUBLIC_OPS.items()))
    snippets = [op_snippet(op) for op in ops.values()]
    header = {"type": "string", "pattern": f"^\\s*{_NAME}\\s*(?:\\([\\s\\S]*\\))?\\s*$"}
    defs: dict[str, dict] = {
        "expr": {"description": "an expression: a YAML number, boolean or null is a literal; a string is "
                                "text-language code (`2 * width`, `[3, 4, 6, 3]`); a YAML list holds expressions",
                 "anyOf": [{"type": ["string", "number", "boolean", "null"]},
                           {"type": "array", "items": {"$ref": "#/$defs/expr"}}]},
        "argList": {"type": "string", "description": "an argument list in text-language syntax: `a = 1, b = \"x\"`"},
        "code": {"type": "string",
                 "description": "a chain in text-language syntax: `conv2d(64, 3) -> relu`, "
                                "`label: BasicConv2d(64, 1) -> pool: maxpool(3)`; ops: " + ", ".join(ops),
                 "allOf": op_checks(ops) + misspelled_op_checks(ops, reserved)},
        "body": {"description": "a list of layers (statements); null is an empty body",
                 "if": {"type": "null"}, "else": {"$ref": "#/$defs/layerList"}},
        "layerList": {"type": "array", "items": {"$ref": "#/$defs/statement"}},
        "statement": {**_by_kind({"$ref": "#/$defs/code"}, None, _element_object(True, keywords, reserved)),
                      "description": "a chain string, `label: chain`, `label: [group]`, or a mapping starting "
                                     "with " + ", ".join(f"`{k}`" for k in keywords),
                      "defaultSnippets": snippets + _combinator_snippets()},
        "element": {**_by_kind({"$ref": "#/$defs/code"}, None, _element_object(False, keywords, reserved)),
                    "description": "one element: a call string, `label: element`, or a combinator mapping",
                    "defaultSnippets": snippets},
        "shortcut": {"anyOf": [{"$ref": "#/$defs/layerList"},
                               {"type": "object", "additionalProperties": False,
                                "properties": {"name": {"type": "string", "pattern": _label_pattern(reserved)},
                                               "if": {"$ref": "#/$defs/expr"}, "body": {"$ref": "#/$defs/body"}}}],
                     "description": "the residual's shortcut: a list of layers, or {name, if, body}"},
        "letBinding": {"type": "object", "minProperties": 1,
                       "propertyNames": {"pattern": f"^(?!{_alt(reserved)}$){_NAME}$"},
                       "additionalProperties": {"$ref": "#/$defs/expr"}},
    }
    settings = _settings_schema()
    defs["lossCall"], defs["initCall"] = settings["lossCall"], settings["initCall"]
    rule_options = sorted(OPTIONS)
    top: dict[str, dict] = {
        "network": {**header, "description": "the network's name and parameters: `name(num_classes = 1000)`",
                    "defaultSnippets": [{"label": "network", "body": "${1:net}(num_classes = ${2:1000})"}]},
        "input": {"description": "the input shape: `3x224x224`, a list `[3, res, res]` or its string",
                  "anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/$defs/expr"}}],
                  "defaultSnippets": [{"label": "3x224x224", "body": "${1:3x224x224}"}]},
        "use": {"type": "array", "items": {"type": "string"},
                "description": "spec files whose blocks this one uses, relative to this file"},
        "let": {"description": "global definitions in order: `- width: 64`",
                "if": {"type": "array"}, "then": {"items": {"$ref": "#/$defs/letBinding"}},
                "else": {"$ref": "#/$defs/letBinding"}},
        "settings": settings["settings"],
        "rules": {"type": "string", "allOf": [options_check(rule_options, "rules")],
                  "description": "design-rule configuration: `ignore = [\"R301\"], grid = [12, 20]`; options: " +
                                 ", ".join(rule_options)},
        "blocks": {"type": "object", "propertyNames": header,
                   "additionalProperties": {"$ref": "#/$defs/body"},
                   "description": "block definitions: the key `Name(param, other = default)`, the value its body"},
        "layers": {"allOf": [{"$ref": "#/$defs/body"}], "description": "the network body, a list of layers"},
    }
    if "budget" in TOP_KEYS:
        top["budget"] = _budget_schema()
    properties = {key: top.get(key, _unknown_top_key(key)) for key in TOP_KEYS}
    return {
        "$schema": DRAFT,
        "title": "archdsl YAML spec",
        "description": "A network or block library in archdsl's YAML form (docs/language.md §7). Generated by "
                       "`archdsl schema` from the op registry; every call string is text-language code.",
        "type": ["object", "null"],
        "properties": properties,
        "additionalProperties": False,
        "$defs": defs,
    }


def _budget_schema() -> dict:
    """``budget: {params: 5.5M, macs: 600M}`` (or a list of such mappings): upper bounds on the figures
    :data:`archdsl.budget.FIGURES` names; a bound is a YAML number or a string (``5.5M``, ``2 * base``)."""
    from .budget import FIGURES

    bound = {"type": ["number", "string"], "description": "an upper bound: a number, optionally with a unit "
             "(K, M, G: powers of 1000) in a string (`5.5M`), or an expression"}
    figures = {"type": "object", "additionalProperties": False,
               "properties": {f: {**bound, "description": f"upper bound on {f}"} for f in FIGURES}}
    return {"description": "upper bounds on whole-network figures (" + ", ".join(FIGURES) + "); "
                           "a figure above its bound is error E401",
            "if": {"type": "array"}, "then": {"items": figures}, "else": figures}


def _unknown_top_key(key: str) -> dict:
    """A top-level key this generator has no shape for: accepted as the front end reads it, described."""
    return {"description": f"`{key}`: see docs/language.md §7"}


def render_schema() -> str:
    """The schema as the committed file holds it: indented JSON with a final newline."""
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"
