"""The expression evaluator: precedence, arithmetic, comparisons, short-circuit logic, functions,
lists, and located errors — archdsl's own evaluator, never Python's ``eval``."""

from __future__ import annotations

import pytest

from archdsl import ast as A
from archdsl import expr as X
from archdsl.diagnostics import DiagnosticError, Loc
from archdsl.frontend.text import parse_text


def ev(text: str, **env):
    return X.evaluate(parse_text(text, "<e>", start="expr_start"), env)


def err(text: str, **env):
    with pytest.raises(DiagnosticError) as info:
        ev(text, **env)
    return info.value.diagnostic


@pytest.mark.parametrize("text, value", [
    # precedence and associativity
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("10 - 4 - 3", 3),
    ("100 // 10 // 3", 3),
    ("2 * 3 % 4", 2),
    ("2 ** 3 ** 2", 512),           # right-associative
    ("-2 ** 2", -4),                # unary minus binds looser than **
    ("(-2) ** 2", 4),
    ("2 ** -1", 0.5),
    ("- - 3", 3),
    ("+3", 3),
    ("1 + 2 == 3", True),
    ("1 < 2 and 2 < 3", True),
    ("not 1 == 2", True),           # not binds looser than comparisons
    ("true or false and false", True),   # and binds tighter than or
    ("(true or false) and false", False),
    ("not true or true", True),
    # integer / float arithmetic, Python semantics
    ("7 // 2", 3),
    ("-7 // 2", -4),
    ("7 % 3", 1),
    ("-7 % 3", 2),
    ("7 / 2", 3.5),
    ("4 / 2", 2.0),
    ("1.5 * 2", 3.0),
    ("1e-3 * 1000", 1.0),
    (".5 + 1", 1.5),
    ("10 ** 18", 10**18),
    # comparisons
    ("1 == 1.0", True),
    ("1 != 2", True),
    ("2 >= 2", True),
    ("2 <= 1", False),
    ("3 > 2", True),
    ('"a" < "b"', True),
    ('"a" == "a"', True),
    ('1 == "1"', False),
    ("[1, 2] == [1, 2]", True),
    ("[1, 2] < [1, 3]", True),
    ("none == none", True),
    ("true != false", True),
    # conditionals
    ("if 1 < 2 then 10 else 20", 10),
    ("if false then 1 else if true then 2 else 3", 2),
    ("(if true then 1 else 2) + 1", 2),
    # strings and lists
    ('"ab" + "cd"', "abcd"),
    ("[1, 2] + [3]", (1, 2, 3)),
    ("[]", ()),
    ("[1, [2, 3]][1][0]", 2),
    ("[10, 20, 30][-1]", 30),
    ("[1, 2, 3,]", (1, 2, 3)),
    # functions
    ("min(3, 1, 2)", 1),
    ("max(3, 1, 2)", 3),
    ("min([4, 2, 8])", 2),
    ("max([4, 2.5])", 4),
    ("abs(-3)", 3),
    ("int(3.7)", 3),
    ("float(2)", 2.0),
    ("round(2.5)", 2),
    ("floor(2.7)", 2),
    ("ceil(2.1)", 3),
    ("sqrt(16)", 4.0),
    ("len([1, 2, 3])", 3),
    ('len("abcd")', 4),
    ("sum([1, 2, 3])", 6),
    ("range(3)", (0, 1, 2)),
    ("range(2, 5)", (2, 3, 4)),
    ("make_divisible(37, 8)", 40),
    ("make_divisible(10, 8)", 16),       # rounding down by more than 10% is corrected
    ("make_divisible(32 * 0.75)", 24),
    ("make_divisible(3, 8)", 8),         # never below min_value (= divisor)
    ("make_divisible(3, 8, 4)", 4),      # min_value given
    ("make_divisible(96 * 0.25, 8)", 24),
])
def test_values(text: str, value) -> None:
    got = ev(text)
    assert got == value and type(got) is type(value), (got, value)


def test_names_and_environment() -> None:
    assert ev("width * 2 + depth", width=16, depth=3) == 35
    assert ev("counts[i]", counts=(3, 4, 6, 3), i=2) == 6
    assert ev("if bottleneck then 4 else 1", bottleneck=True) == 4


def test_short_circuit_skips_errors() -> None:
    # the right operand would fail (undefined name / division by zero): it is never evaluated
    assert ev("false and undefined_name") is False
    assert ev("true or 1 // 0 == 0") is True
    assert ev("if true then 1 else 1 // 0") == 1
    assert ev("if false then nope else 2") == 2
    assert ev("i == 0 or counts[i - 1] > 1", i=0, counts=()) is True


def test_and_or_require_booleans() -> None:
    d = err("1 and true")
    assert d.code == "E108" and "condition must be true or false, got int 1" in d.message
    assert d.loc == Loc("<e>", 1, 1)
    d = err("true and 2")
    assert (d.code, d.loc.col) == ("E108", 10)
    d = err("not 3")
    assert (d.code, d.loc.col) == ("E108", 5)
    d = err("if 0 then 1 else 2")
    assert (d.code, d.loc.col) == ("E108", 4)


@pytest.mark.parametrize("text, code, col, fragment", [
    ("1 // 0", "E108", 3, "division by zero"),
    ("1 % 0", "E108", 3, "division by zero"),
    ("1.0 / 0", "E108", 5, "division by zero"),
    ('1 + "a"', "E108", 3, "cannot apply '+' to int and string"),
    ("true + 1", "E108", 6, "cannot apply '+' to bool and int"),
    ('-"a"', "E108", 1, "cannot apply unary '-' to string"),
    ('1 < "a"', "E108", 3, "cannot compare int and string"),
    ("none < 1", "E108", 6, "cannot compare none and int"),
    ("[1][1]", "E108", 5, "list index 1 out of range for a list of 1"),
    ("[1][0.5]", "E108", 5, "list index must be an integer"),
    ("3[0]", "E108", 2, "cannot index a int"),
    ("min()", "E108", 1, "min(): min takes numbers"),
    ("max(1, true)", "E108", 1, "max(): max takes numbers"),
    ("sqrt(-1)", "E108", 1, "sqrt()"),
    ('len(3)', "E108", 1, "len takes a list or string"),
    ("range(10000000)", "E108", 1, "limited to 1,000,000"),
    ("(-8) ** 0.5", "E108", 6, "complex"),
    ("nope + 1", "E105", 1, "undefined name 'nope'"),
    ("mx(1, 2)", "E112", 1, "unknown function 'mx'"),
    ("2 ** 100", "E151", 3, "power too large"),
    ("10 ** 18 + 1", "E151", 10, "integer value too large"),
    ("1000000000000 * 1000000000000", "E151", 15, "product too large"),
    ("2.0 ** 20000", "E151", 5, "exponent too large"),
    ("1e308 * 10", "E151", 7, "not a finite number"),
    ('error("custom failure")', "E160", 1, "custom failure"),
])
def test_errors_are_located(text: str, code: str, col: int, fragment: str) -> None:
    d = err(text)
    assert d.code == code, d
    assert fragment in d.message, d.message
    assert (d.loc.line, d.loc.col) == (1, col), d.loc


def test_did_you_mean_hints() -> None:
    assert err("widht", width=1, depth=2).hint == "did you mean 'width'?"
    assert err("make_divisble(3)").hint == "did you mean 'make_divisible'?"
    assert "functions:" in err("zzz()").hint


def test_locations_inside_fragments_keep_offsets() -> None:
    # the same expression parsed as a YAML fragment on line 7, column 12 reports there
    e = parse_text("a // 0", "f.yaml", start="expr_start", line_offset=6, col_offset=11)
    with pytest.raises(DiagnosticError) as info:
        X.evaluate(e, {"a": 1})
    assert info.value.diagnostic.loc == Loc("f.yaml", 7, 14)


def test_never_uses_python_eval() -> None:
    # names resolve only through the environment: Python builtins and dunders are not reachable
    for text in ("__import__", "open", "print", "eval"):
        assert err(text).code == "E105"
    for text in ('__import__("os")', 'eval("1")', "open(1)"):
        assert err(text).code == "E112"


def test_show_and_type_name() -> None:
    assert X.show((1, True, None, "a\"b", 2.5)) == '[1, true, none, "a\\"b", 2.5]'
    assert [X.type_name(v) for v in (1, 1.0, True, None, "s", ())] == ["int", "float", "bool", "none", "string",
                                                                        "list"]


def test_ast_equality_ignores_locations() -> None:
    a = parse_text("1 + x * 2", "a.arch", start="expr_start")
    b = parse_text("1+x*2", "b.arch", start="expr_start", line_offset=5, col_offset=3)
    assert a == b
    assert a == A.BinOp("+", A.Num(1), A.BinOp("*", A.Name("x"), A.Num(2)))
