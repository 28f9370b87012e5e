"""Grammar-driven fuzzing: specs generated from ``grammar/archdsl.lark`` itself.

``hypothesis.extra.lark.from_lark`` derives random sentences of the grammar; every terminal has an
explicit strategy so that the sentences also *lex* as intended: tokens are separated by
whitespace, names are never keywords or reserved words (those are refused with a diagnostic, by
design), numbers stay small, comments end their line.  Two generators share the terminals:

* the whole language (``start``), every statement anywhere;
* ``gen_net``, an extra generation-only rule appended to the grammar: a network declaration, an
  input shape, then statements, with names drawn mostly from the real ops and parameters, so
  that many samples get past the front end into elaboration, shapes, rules and code generation.

Properties: the text parses (it is grammatical); ``analyze`` (with the rules), the diagnostic
formatter, both printers and, for clean networks, the reports, DOT renderer and code generator
never raise; every diagnostic is located inside the file; printing the AST as text and as YAML
and parsing the result gives the same AST.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from fuzz_support import assert_located, run_everything
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

from archdsl.diagnostics import DiagnosticError
from archdsl.frontend.text import RESERVED_NAMES, grammar_path, parse_text
from archdsl.ops import PUBLIC_OPS

GEN_RULES = """
gen_net: network_decl input_decl _gen_item* chain _gen_item*
_gen_item: let_decl | block_decl | chain | if_stmt | aux_stmt | setting | rules_decl | budget_decl
"""

# Hypothesis shrinks towards the first entries: ops that need no arguments come first.
_EASY_OPS = ["relu", "batchnorm", "flatten", "identity", "global_avgpool", "sigmoid"]
VOCAB = _EASY_OPS + sorted(set(PUBLIC_OPS) - set(_EASY_OPS)) + [
    # arguments of ops and structural elements
    "out", "kernel", "stride", "padding", "dilation", "groups", "bias", "eps", "p", "size", "post", "scale",
    "prefix", "start", "count", "weight", "in_features", "ceil_mode", "negative_slope", "label_smoothing",
    "mode", "nonlinearity", "ignore", "select", "grid",
    # expression functions, losses, initializers
    "min", "max", "len", "range", "sum", "int", "error", "make_divisible", "cross_entropy", "kaiming_normal",
    "normal", "constant",
    # user names: blocks, parameters, lets, labels
    "B", "Stage", "x", "n", "c", "i", "width", "num_classes", "fc", "conv1", "head",
]


#: Sizes after the channels of a symbolic input shape (only H and W, in that place, are sizes).
SIZES = ["H", "W", "8", "0", "C", "_", "H2"]

#: How much likelier a rule's non-recursive alternatives are than its recursive ones.
WEIGHT = 4


def _pad(s: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return s.map(lambda t: f" {t} ")


@functools.cache
def _lark() -> Lark:
    text = grammar_path().read_text(encoding="utf-8") + GEN_RULES
    return Lark(text, parser="lalr", start=["start", "gen_net"])


@functools.cache
def _explicit(start: str) -> dict[str, st.SearchStrategy[str]]:
    terminals, _, _ = _lark().grammar.compile([start], ())
    keywords = {t.pattern.value for t in terminals if t.pattern.type == "str"}
    out: dict[str, st.SearchStrategy[str]] = {
        t.name: st.just(f" {t.pattern.value} ") for t in terminals if t.pattern.type == "str"}
    free_name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True).filter(
        lambda s: s not in RESERVED_NAMES and s not in keywords)
    string_body = st.text(st.characters(codec="utf-8", exclude_characters='"\\\n\r'), max_size=8)
    out.update({
        "NAME": _pad(st.one_of(st.sampled_from(VOCAB), free_name)),
        "INT": _pad(st.one_of(st.integers(0, 16), st.integers(0, 300)).map(str)),
        "FLOAT": _pad(st.sampled_from(["0.5", "1e-3", ".25", "2.", "1.0e2", "0.0", "3E+1"])),
        "SHAPE": _pad(st.one_of(st.lists(st.integers(1, 24), min_size=3, max_size=3),  # mostly C x H x W
                                st.lists(st.integers(0, 24), min_size=2, max_size=4),
                                # symbolic sizes (3xHxW), right and wrong (3xWxH, 3xCxW, 3xHxWxH)
                                st.tuples(st.integers(0, 24), st.lists(st.sampled_from(SIZES), min_size=1, max_size=3))
                                .map(lambda t: [t[0], *t[1]]))
                      .map(lambda ds: "x".join(map(str, ds)))),
        "STRING": _pad(st.one_of(st.sampled_from(["relu", "same", "fan_out", "layer", "R302", "lib/x.arch",
                                                  "a\x85b", "\u2028", "\x0b\x0c", "é😀", "\ufeff", "#: -"]),
                                 string_body).map(lambda s: f'"{s}"')),
        "COMP_OP": _pad(st.sampled_from(["==", "!=", "<=", ">=", "<", ">"])),
        "QUANTITY": _pad(st.sampled_from(["5.5M", "600M", "60K", "1G", ".5K", "2.G", "3Mi"])),
        "WS": st.sampled_from([" ", "\n", "\t", "  \n  "]),
        "COMMENT": st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=10)
                     .map(lambda s: f" #{s}\n"),
    })
    return out


def _spec_text(start: str) -> st.SearchStrategy[str]:
    """``from_lark`` over the grammar, re-weighted so that the derivations stay small.

    ``from_lark`` picks a rule's alternatives uniformly; with this grammar (nine left-recursive
    expression levels, each able to reach the next expression through brackets, calls or lists)
    that recursion is supercritical and most draws overrun hypothesis's depth limit.  Giving the
    alternatives that do not call their own rule and have the fewest nonterminals ``WEIGHT`` times
    the chance keeps the language (every alternative stays possible) and lets most draws finish.
    Should the hypothesis internals this relies on change, plain ``from_lark`` is used.
    """
    strategy = from_lark(_lark(), start=start, explicit=_explicit(start))
    inner = getattr(strategy, "wrapped_strategy", strategy)
    table = getattr(inner, "nonterminal_strategies", None)
    if not isinstance(table, dict):
        return strategy  # pragma: no cover - hypothesis internals changed; unweighted still works
    for name, alternatives in list(table.items()):
        exps = list(getattr(alternatives, "elements", ()))
        if not exps:
            continue  # pragma: no cover

        def rules_in(exp: tuple) -> int:
            return sum(sym.name in table for sym in exp)

        fewest = min(rules_in(e) for e in exps if all(sym.name != name for sym in e)) if exps else 0
        weighted = []
        for exp in exps:
            simple = all(sym.name != name for sym in exp) and rules_in(exp) == fewest
            weighted += [exp] * (WEIGHT if simple else 1)
        table[name] = st.sampled_from(weighted)
    return strategy


FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much, HealthCheck.large_base_example])


def _check(text: str, tmp: Path) -> None:
    # grammatical: the parser accepts it (only a semantic refusal in a reduce callback may stop it)
    try:
        parse_text(text, "gen.arch")
    except DiagnosticError as exc:
        assert not exc.diagnostic.code.startswith("E00"), f"generated text does not parse: {exc.diagnostic}\n{text}"
    path = tmp / "gen.arch"
    path.write_text(text, encoding="utf-8")
    res = run_everything(path)
    assert_located(res.diags.sorted(), {str(path): text}, text)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gen")


@FUZZ
@given(text=_spec_text("start"))
def test_any_sentence_of_the_grammar(text: str, scratch: Path) -> None:
    _check(text, scratch)


@FUZZ
@given(text=_spec_text("gen_net"))
def test_generated_networks(text: str, scratch: Path) -> None:
    _check(text, scratch)
