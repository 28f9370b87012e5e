"""Generate the TextMate grammar of the ``.arch`` language for editors from the compiler's own sources.

The keywords come from ``grammar/archdsl.lark`` (every quoted word in it) and the op names from the
op registry (:data:`archdsl.ops.PUBLIC_OPS`), so neither list is typed twice.  The script writes

- ``editors/vscode/syntaxes/archdsl.tmLanguage.json``: the grammar (scope ``source.archdsl``);
- ``editors/vscode/tests/ops.arch``: a ``vscode-tmgrammar-test`` case asserting that every op is
  highlighted as an op;
- ``editors/vim/syntax/archdsl.vim``: the same highlighting for Vim and Neovim.

Run it after adding an op or a keyword::

    .venv/bin/python editors/generate_grammar.py

``tests/test_editors.py`` fails while the committed files differ from what this script writes, and
this script refuses a keyword of the lark grammar it has no scope for.  The regular expressions are
kept to the subset Python's :mod:`re` and Oniguruma (the engine VS Code uses) read alike, so the
Python test can exercise them too.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LARK = ROOT / "grammar" / "archdsl.lark"
VSCODE = ROOT / "editors" / "vscode"
GRAMMAR_JSON = VSCODE / "syntaxes" / "archdsl.tmLanguage.json"
OPS_TEST = VSCODE / "tests" / "ops.arch"
VIM_SYNTAX = ROOT / "editors" / "vim" / "syntax" / "archdsl.vim"
SCOPE = "source.archdsl"

#: The scope of every keyword of the lark grammar, by role (docs/language.md, "Reserved words").
KEYWORD_SCOPES: dict[str, str] = {
    **dict.fromkeys(("network", "input", "use", "let", "block", "loss", "init", "rules", "budget"),
                    "keyword.declaration"),
    **dict.fromkeys(("concat", "residual", "shortcut", "gate", "repeat", "dense", "inline", "aux", "as"),
                    "keyword.control.combinator"),
    **dict.fromkeys(("if", "else", "then"), "keyword.control.conditional"),
    **dict.fromkeys(("and", "or", "not"), "keyword.operator.logical"),
    **dict.fromkeys(("true", "false"), "constant.language.boolean"),
    "none": "constant.language.null",
}

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
QNAME = r"`[A-Za-z_][A-Za-z0-9_-]*`"  # a label in backticks: may be a keyword or contain hyphens
EXPONENT = r"(?:[eE][-+]?[0-9]+)?"


def lark_keywords(text: str) -> list[str]:
    """Every word the lark grammar quotes (``"network"``, ``LOSS: "loss"``, ...): its keywords, sorted."""
    code = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
    return sorted(set(re.findall(r'"([A-Za-z_]+)"', code)))


def op_names() -> list[str]:
    """The names a spec may call: the public ops of the registry, sorted."""
    sys.path.insert(0, str(ROOT))
    from archdsl.ops import PUBLIC_OPS

    return sorted(PUBLIC_OPS)


def _alternation(words: list[str]) -> str:
    """``\\b(?:a|b|...)\\b`` with longer words first, so that no word stops at a prefix of another."""
    return r"\b(?:" + "|".join(sorted(words, key=lambda w: (-len(w), w))) + r")\b"


def _keyword_patterns(keywords: list[str]) -> list[dict]:
    """One match rule per scope, for every lark keyword (an unknown keyword is an error)."""
    unknown = [word for word in keywords if word not in KEYWORD_SCOPES]
    if unknown:
        raise SystemExit(f"generate_grammar.py: keyword(s) {', '.join(unknown)} of {LARK.name} have no scope: "
                         "add them to KEYWORD_SCOPES")
    by_scope: dict[str, list[str]] = {}
    for word in keywords:
        by_scope.setdefault(KEYWORD_SCOPES[word], []).append(word)
    return [{"match": _alternation(words), "name": f"{scope}.archdsl"} for scope, words in sorted(by_scope.items())]


def _param_list(keyword: str, name_scope: str) -> dict:
    """``block Name(param, other = default)`` / ``network name(...)``: the name and the parameters."""
    return {
        "begin": rf"\b({keyword})\s+({NAME})\s*(\()",
        "beginCaptures": {"1": {"name": "keyword.declaration.archdsl"}, "2": {"name": f"{name_scope}.archdsl"},
                          "3": {"name": "punctuation.section.parens.begin.archdsl"}},
        "end": r"\)",
        "endCaptures": {"0": {"name": "punctuation.section.parens.end.archdsl"}},
        "patterns": [
            {"include": "#comment"},
            {"match": rf"\b{NAME}\b", "name": "variable.parameter.archdsl"},
            {  # a default value: an expression up to the next ',' or ')' outside its own brackets
                "begin": "=(?!=)", "beginCaptures": {"0": {"name": "keyword.operator.assignment.archdsl"}},
                "end": r"(?=[,)])", "patterns": [{"include": "#expression"}],
            },
            {"include": "#punctuation"},
        ],
    }


def _repository(keywords: list[str], ops: list[str]) -> dict:
    """The named rules of the grammar; ``#statement`` lists them in the order they are tried."""
    return {
        "comment": {
            "begin": "#", "beginCaptures": {"0": {"name": "punctuation.definition.comment.archdsl"}},
            "end": "$", "name": "comment.line.number-sign.archdsl",
            "patterns": [{
                # '# archdsl: ignore[R301]' silences design rules (docs/rules.md)
                "match": r"\b(archdsl)(:)\s*(ignore)(?:(\[)([A-Za-z0-9_, ]*)(\]))?",
                "captures": {"1": {"name": "keyword.other.pragma.archdsl"},
                             "2": {"name": "punctuation.separator.archdsl"},
                             "3": {"name": "keyword.other.pragma.archdsl"},
                             "4": {"name": "punctuation.section.brackets.begin.archdsl"},
                             "5": {"name": "constant.other.diagnostic-code.archdsl"},
                             "6": {"name": "punctuation.section.brackets.end.archdsl"}},
            }],
        },
        "string": {"patterns": [_string('"', "double"), _string("'", "single")]},
        "block-definition": {"patterns": [
            _param_list("block", "entity.name.function.block"),
            {"match": rf"\b(block)\s+({NAME})", "captures": {"1": {"name": "keyword.declaration.archdsl"},
                                                            "2": {"name": "entity.name.function.block.archdsl"}}},
        ]},
        "network-declaration": {"patterns": [
            _param_list("network", "entity.name.type.network"),
            {"match": rf"\b(network)\s+({NAME})", "captures": {"1": {"name": "keyword.declaration.archdsl"},
                                                              "2": {"name": "entity.name.type.network.archdsl"}}},
        ]},
        "let": {"match": rf"\b(let)\s+({NAME})", "captures": {"1": {"name": "keyword.declaration.archdsl"},
                                                             "2": {"name": "variable.other.definition.archdsl"}}},
        "init": {  # init conv2d: kaiming_normal(...): the op the initializer applies to
            "match": rf"\b(init)\s+({NAME})\s*(:)",
            "captures": {"1": {"name": "keyword.declaration.archdsl"}, "2": {"name": "support.function.op.archdsl"},
                         "3": {"name": "punctuation.separator.archdsl"}},
        },
        "label": {
            "match": rf"({NAME}|{QNAME})\s*(:)",
            "captures": {"1": {"name": "entity.name.tag.label.archdsl"},
                         "2": {"name": "punctuation.separator.label.archdsl"}},
        },
        "shortcut": {  # shortcut [name] [if expr] { ... }: the optional name is a module name
            "match": rf"\b(shortcut)(?:\s+(?!if\b)({NAME}|{QNAME}))?",
            "captures": {"1": {"name": "keyword.control.combinator.archdsl"},
                         "2": {"name": "entity.name.tag.label.archdsl"}},
        },
        "loop-variable": {"match": rf"\b(as)\s+({NAME})", "captures": {
            "1": {"name": "keyword.control.combinator.archdsl"}, "2": {"name": "variable.other.loop.archdsl"}}},
        "keyword-argument": {
            "match": rf"\b({NAME})\s*(=)(?!=)",
            "captures": {"1": {"name": "variable.parameter.archdsl"},
                         "2": {"name": "keyword.operator.assignment.archdsl"}},
        },
        "keyword": {"patterns": _keyword_patterns(keywords)},
        "shape": {  # input 3x224x224, and the symbolic dimensions of input 3xHxW
            "match": rf"\b[0-9]+(?:x(?:[0-9]+|{NAME}))+\b", "name": "constant.numeric.shape.archdsl"},
        "number": {"patterns": [
            {  # a budget bound with a unit: params <= 5.5M (not an exponent: 2.5E+2 is a float)
                "match": r"(?<![A-Za-z0-9_.])([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?![eE][-+]?[0-9])([A-Za-z]+)\b",
                "captures": {"1": {"name": "constant.numeric.quantity.archdsl"},
                             "2": {"name": "keyword.other.unit.archdsl"}},
            },
            {"match": rf"(?<![A-Za-z0-9_.])(?:[0-9]+\.[0-9]*{EXPONENT}|\.[0-9]+{EXPONENT}|[0-9]+[eE][-+]?[0-9]+)",
             "name": "constant.numeric.float.archdsl"},
            {"match": r"\b[0-9]+\b", "name": "constant.numeric.integer.archdsl"},
        ]},
        "op": {"match": _alternation(ops), "name": "support.function.op.archdsl"},
        "call": {"match": rf"\b{NAME}(?=\s*\()", "name": "entity.name.function.call.archdsl"},
        "operator": {"patterns": [
            {"match": "->", "name": "keyword.operator.chain.archdsl"},
            {"match": r"==|!=|<=|>=|<|>", "name": "keyword.operator.comparison.archdsl"},
            {"match": r"\*\*|//|[-+*/%]", "name": "keyword.operator.arithmetic.archdsl"},
            {"match": "=", "name": "keyword.operator.assignment.archdsl"},
        ]},
        "parens": {  # nested, so that a parameter list ends at its own ')'
            "begin": r"\(", "beginCaptures": {"0": {"name": "punctuation.section.parens.begin.archdsl"}},
            "end": r"\)", "endCaptures": {"0": {"name": "punctuation.section.parens.end.archdsl"}},
            "patterns": [{"include": "#statement"}],
        },
        "brackets": {
            "begin": r"\[", "beginCaptures": {"0": {"name": "punctuation.section.brackets.begin.archdsl"}},
            "end": r"\]", "endCaptures": {"0": {"name": "punctuation.section.brackets.end.archdsl"}},
            "patterns": [{"include": "#statement"}],
        },
        "punctuation": {"patterns": [
            {"match": r"\{", "name": "punctuation.section.block.begin.archdsl"},
            {"match": r"\}", "name": "punctuation.section.block.end.archdsl"},
            {"match": ",", "name": "punctuation.separator.comma.archdsl"},
            {"match": ":", "name": "punctuation.separator.archdsl"},
        ]},
        "expression": {"patterns": [{"include": f"#{rule}"} for rule in (
            "comment", "string", "keyword-argument", "keyword", "shape", "number", "op", "call", "operator",
            "parens", "brackets", "punctuation")]},
        "statement": {"patterns": [{"include": f"#{rule}"} for rule in (
            "comment", "string", "block-definition", "network-declaration", "let", "init", "label", "shortcut",
            "loop-variable", "expression")]},
    }


def _string(quote: str, kind: str) -> dict:
    """A one-line string with the escapes of docs/language.md; any other escape is illegal."""
    return {
        "begin": quote, "beginCaptures": {"0": {"name": "punctuation.definition.string.begin.archdsl"}},
        "end": rf"{quote}|$", "endCaptures": {"0": {"name": "punctuation.definition.string.end.archdsl"}},
        "name": f"string.quoted.{kind}.archdsl",
        "patterns": [{"match": rf"\\[\\{quote}nt]", "name": "constant.character.escape.archdsl"},
                     {"match": r"\\.?", "name": "invalid.illegal.escape.archdsl"}],
    }


def grammar(keywords: list[str], ops: list[str]) -> dict:
    """The TextMate grammar as a JSON-ready dict."""
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "archdsl",
        "scopeName": SCOPE,
        "fileTypes": ["arch"],
        "comment": "Generated by editors/generate_grammar.py from grammar/archdsl.lark and archdsl/ops.py: "
                   "do not edit.",
        "patterns": [{"include": "#statement"}],
        "repository": _repository(keywords, ops),
    }


def ops_test_case(ops: list[str]) -> str:
    """A vscode-tmgrammar-test case: each op called and bare, asserted to be an op, not a call."""
    lines = [f'# SYNTAX TEST "{SCOPE}" "every op of archdsl/ops.py is highlighted as an op"',
             "# Generated by editors/generate_grammar.py: do not edit.", ""]
    for name in ops:
        marks = "^" * len(name)
        lines += [f"x: {name}()", f"#  {marks} support.function.op.archdsl",
                  f"{name} -> {name}", f"# <{'-' * len(name)} support.function.op.archdsl",
                  f"#{' ' * (len(name) + 3)}{marks} support.function.op.archdsl"]
    return "\n".join(lines) + "\n"


#: The Vim highlight group of each TextMate keyword scope, and the standard group it links to.
VIM_GROUPS: dict[str, tuple[str, str]] = {
    "keyword.declaration": ("archdslDeclaration", "Keyword"),
    "keyword.control.combinator": ("archdslCombinator", "Structure"),
    "keyword.control.conditional": ("archdslConditional", "Conditional"),
    "keyword.operator.logical": ("archdslLogical", "Operator"),
    "constant.language.boolean": ("archdslBoolean", "Boolean"),
    "constant.language.null": ("archdslNone", "Constant"),
}


def vim_syntax(keywords: list[str], ops: list[str]) -> str:
    """A Vim/Neovim syntax file with the same keywords, ops and literals as the TextMate grammar.

    Ops are a ``match`` rather than a ``keyword`` and come before the label rule: Vim gives keywords
    precedence over every match, and among matches the later one wins, so ``relu: relu`` shows a
    label and then an op."""
    by_group: dict[str, list[str]] = {}
    for word in keywords:
        by_group.setdefault(KEYWORD_SCOPES[word], []).append(word)
    lines = [
        '" Vim syntax file for archdsl .arch specs (Vim 8, Neovim 0.7 and later).',
        '" Generated by editors/generate_grammar.py from grammar/archdsl.lark and archdsl/ops.py: do not edit.',
        "if exists('b:current_syntax')", "  finish", "endif", "",
    ]
    lines += [f"syntax keyword {VIM_GROUPS[scope][0]} {' '.join(words)}" for scope, words in sorted(by_group.items())]
    vim_ops = r"\|".join(sorted(ops, key=lambda w: (-len(w), w)))
    lines += [
        rf"syntax match archdslOp /\<\%({vim_ops}\)\>/",
        r"syntax match archdslLabel /\<[A-Za-z_][A-Za-z0-9_]*\ze\s*:/",
        r"syntax match archdslLabel /`[A-Za-z_][A-Za-z0-9_-]*`/",
        r"syntax match archdslBlockName /\%(\<block\s\+\)\@<=[A-Za-z_][A-Za-z0-9_]*/",
        r"syntax match archdslNumber /\<[0-9]\+\>/",
        r"syntax match archdslFloat /\%(\<[0-9]\+\.[0-9]*\|\.[0-9]\+\)\%([eE][-+]\=[0-9]\+\)\=\|\<[0-9]\+[eE][-+]\=[0-9]\+/",
        r"syntax match archdslQuantity /\%(\<[0-9]\+\%(\.[0-9]*\)\=\|\.[0-9]\+\)[KMG]\>/",
        r"syntax match archdslShape /\<[0-9]\+\%(x\%([0-9]\+\|[A-Za-z_][A-Za-z0-9_]*\)\)\+\>/",
        r"syntax match archdslOperator /->\|\*\*\|\/\/\|[-+*\/%]\|[=!<>]=\|[<>=]/",
        r"syntax match archdslEscape /\\[\\nt\"']/ contained",
        r"""syntax region archdslString start=/"/ skip=/\\./ end=/"\|$/ contains=archdslEscape""",
        r"""syntax region archdslString start=/'/ skip=/\\./ end=/'\|$/ contains=archdslEscape""",
        r"syntax match archdslPragma /\<archdsl:\s*ignore\%(\[[^\]]*\]\)\=/ contained",
        r"syntax match archdslComment /#.*$/ contains=archdslPragma",
        "",
    ]
    links = [*sorted(VIM_GROUPS.values()), ("archdslOp", "Function"), ("archdslLabel", "Label"),
             ("archdslBlockName", "Function"), ("archdslNumber", "Number"), ("archdslFloat", "Float"),
             ("archdslQuantity", "Number"), ("archdslShape", "Number"), ("archdslOperator", "Operator"),
             ("archdslString", "String"), ("archdslEscape", "SpecialChar"), ("archdslComment", "Comment"),
             ("archdslPragma", "PreProc")]
    lines += [f"highlight default link {group} {target}" for group, target in links]
    lines += ["", "let b:current_syntax = 'archdsl'"]
    return "\n".join(lines) + "\n"


def outputs() -> dict[Path, str]:
    """Each generated file and the text it must hold."""
    keywords = lark_keywords(LARK.read_text(encoding="utf-8"))
    ops = op_names()
    return {
        GRAMMAR_JSON: json.dumps(grammar(keywords, ops), indent=2, ensure_ascii=False) + "\n",
        OPS_TEST: ops_test_case(ops),
        VIM_SYNTAX: vim_syntax(keywords, ops),
    }


def main() -> int:
    """Write the generated files."""
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
