"""The expression evaluator: archdsl's own, over a closed set of value types; never ``eval``.

Values are ``int``, ``float``, ``bool``, ``str``, ``None`` and tuples of values (lists).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Union

from . import ast as A
from . import limits
from .diagnostics import SUPPRESSED, Diagnostic, DiagnosticError, Loc, did_you_mean

Value = Union[int, float, bool, str, None, tuple]

# Integers may reach 10**int_digits (limits.py); that also keeps ``10**10**10`` from hanging a run.
# One limit serves literals and computed values: a literal beyond it could never be used anyway.


class Poison:
    """The value of a definition that failed; using it fails silently (the cause is reported once)."""

    def __repr__(self) -> str:
        return "<failed definition>"


POISON = Poison()


def _err(code: str, message: str, loc: Loc, hint: str = "") -> DiagnosticError:
    return DiagnosticError(Diagnostic(code, message, loc, hint=hint))


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never going down by more than 10%."""
    if not _is_number(divisor) or divisor <= 0:
        raise ValueError(f"the divisor must be a positive number, got {show(divisor)}")
    if min_value is None:
        min_value = divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class SpecError(ValueError):
    """Raised by the spec-level ``error("message")`` function."""


def _error(message: Value = "invalid parameters") -> Value:
    raise SpecError(message if isinstance(message, str) else show(message))


def _range(*args: int) -> tuple:
    if len(args) not in (1, 2) or not all(_is_int(a) for a in args):
        raise TypeError("range takes one or two integers")
    start, stop = (0, args[0]) if len(args) == 1 else args
    if stop - start > 1_000_000:
        raise ValueError("range is limited to 1,000,000 items")
    return tuple(range(start, stop))


def _len(x: Value) -> int:
    if not isinstance(x, (tuple, str)):
        raise TypeError("len takes a list or string")
    return len(x)


def _sum(x: Value) -> Value:
    if not isinstance(x, tuple) or not all(_is_number(v) for v in x):
        raise TypeError("sum takes a list of numbers")
    return sum(x)


def _minmax(fn: Callable) -> Callable:
    def apply(*args: Value) -> Value:
        items = args[0] if len(args) == 1 and isinstance(args[0], tuple) else args
        if not items or not all(_is_number(v) for v in items):
            raise TypeError(f"{fn.__name__} takes numbers or one list of numbers")
        return fn(items)

    return apply


def _num1(fn: Callable) -> Callable:
    def apply(x: Value) -> Value:
        if not _is_number(x):
            raise TypeError("expected a number")
        return fn(x)

    return apply


FUNCTIONS: dict[str, Callable[..., Value]] = {
    "min": _minmax(min),
    "max": _minmax(max),
    "abs": _num1(abs),
    "int": _num1(int),
    "float": _num1(float),
    "round": _num1(round),
    "floor": _num1(math.floor),
    "ceil": _num1(math.ceil),
    "sqrt": _num1(math.sqrt),
    "len": _len,
    "sum": _sum,
    "range": _range,
    "make_divisible": make_divisible,
    "error": _error,
}


def _is_int(v: Value) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Value) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def type_name(v: Value) -> str:
    """The archdsl name of a value's type, for messages."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "list"


def show(v: Value) -> str:
    """A value written the way the spec language writes it."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return "[" + ", ".join(show(x) for x in v) + "]"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def _limit_hint() -> str:
    digits = limits.current().int_digits
    return f"integers are limited to 10**{digits}; raise it with --limit int_digits=N"


def _max_bits() -> float:
    """Bits of the largest integer allowed, with a margin: a cheap pre-check before computing."""
    return limits.current().int_digits * 3.33 + 2


def _check_magnitude(v: Value, loc: Loc) -> Value:
    if _is_int(v) and abs(v) > limits.current().max_int:
        raise _err("E151", f"integer value too large ({len(str(abs(v)))} digits)", loc, _limit_hint())
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        raise _err("E151", "expression is not a finite number", loc)
    return v


def _arith(op: str, a: Value, b: Value, loc: Loc) -> Value:
    if op == "+" and isinstance(a, tuple) and isinstance(b, tuple):
        if len(a) + len(b) > 1_000_000:
            raise _err("E151", "list too long", loc)
        return a + b
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if not (_is_number(a) and _is_number(b)):
        raise _err("E108", f"cannot apply '{op}' to {type_name(a)} and {type_name(b)}", loc)
    if op in ("/", "//", "%") and b == 0:
        raise _err("E108", "division by zero", loc)
    if op == "**":
        if _is_int(a) and _is_int(b) and b > 0 and abs(a) > 1 and b * math.log2(abs(a)) > _max_bits():
            raise _err("E151", "power too large", loc, _limit_hint())
        if isinstance(b, (int, float)) and abs(b) > 1e4:
            raise _err("E151", "exponent too large", loc)
        try:
            result = a**b
        except (OverflowError, ZeroDivisionError) as exc:
            raise _err("E108", f"cannot evaluate power: {exc}", loc) from None
        if isinstance(result, complex):
            raise _err("E108", "power of a negative number gives a complex result", loc)
        return result
    if op in ("*",) and _is_int(a) and _is_int(b) and a and b and (
        math.log2(abs(a)) + math.log2(abs(b)) > _max_bits()
    ):
        raise _err("E151", "product too large", loc, _limit_hint())
    try:
        return _ARITH[op](a, b)
    except OverflowError:
        raise _err("E151", "number too large", loc) from None


_ARITH: dict[str, Callable[[Value, Value], Value]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
}

_COMPARE: dict[str, Callable[[Value, Value], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _compare(op: str, a: Value, b: Value, loc: Loc) -> bool:
    if op in ("==", "!="):
        return _COMPARE[op](a, b)
    ordered = (_is_number(a) and _is_number(b)) or (type(a) is type(b) and isinstance(a, (str, tuple)))
    if not ordered:
        raise _err("E108", f"cannot compare {type_name(a)} and {type_name(b)} with '{op}'", loc)
    try:
        return _COMPARE[op](a, b)
    except TypeError:
        raise _err("E108", f"cannot compare {show(a)} and {show(b)}", loc) from None


def _truth(v: Value, loc: Loc) -> bool:
    if not isinstance(v, bool):
        raise _err("E108", f"condition must be true or false, got {type_name(v)} {show(v)}", loc)
    return v


def evaluate(expr: A.Expr, env: Mapping[str, Value]) -> Value:
    """Evaluate ``expr`` in ``env``; problems raise :class:`DiagnosticError` at the sub-expression."""
    return _check_magnitude(_eval(expr, env), expr.loc)


def _eval(e: A.Expr, env: Mapping[str, Value]) -> Value:
    # An explicit stack would avoid recursion, but the parser already bounds nesting depth.
    if isinstance(e, A.Num):
        return e.value
    if isinstance(e, (A.Str, A.Const)):
        return e.value
    if isinstance(e, A.Name):
        if e.id not in env:
            raise _err("E105", f"undefined name '{e.id}'", e.loc, did_you_mean(e.id, env.keys()))
        value = env[e.id]
        if value is POISON:
            raise DiagnosticError(Diagnostic("E105", f"'{e.id}' failed to evaluate", e.loc, SUPPRESSED))
        return value
    if isinstance(e, A.ListExpr):
        return tuple(evaluate(x, env) for x in e.items)
    if isinstance(e, A.BinOp):
        return _eval_binop(e, env)
    if isinstance(e, A.UnaryOp):
        return _eval_unary(e, env)
    if isinstance(e, A.IfExp):
        return evaluate(e.then, env) if _truth(evaluate(e.cond, env), e.cond.loc) else evaluate(e.orelse, env)
    if isinstance(e, A.FuncCall):
        return _eval_call(e, env)
    if isinstance(e, A.Index):
        return _eval_index(e, env)
    raise _err("E108", f"cannot evaluate {type(e).__name__}", getattr(e, "loc", Loc("<?>", 0, 0)))


def _eval_binop(e: A.BinOp, env: Mapping[str, Value]) -> Value:
    if e.op in ("and", "or"):
        left = _truth(evaluate(e.left, env), e.left.loc)
        if (e.op == "and" and not left) or (e.op == "or" and left):
            return left
        return _truth(evaluate(e.right, env), e.right.loc)
    a, b = evaluate(e.left, env), evaluate(e.right, env)
    if e.op in _COMPARE:
        return _compare(e.op, a, b, e.loc)
    return _check_magnitude(_arith(e.op, a, b, e.loc), e.loc)


def _eval_unary(e: A.UnaryOp, env: Mapping[str, Value]) -> Value:
    v = evaluate(e.operand, env)
    if e.op == "not":
        return not _truth(v, e.operand.loc)
    if not _is_number(v):
        raise _err("E108", f"cannot apply unary '{e.op}' to {type_name(v)}", e.loc)
    return -v if e.op == "-" else v


def _eval_call(e: A.FuncCall, env: Mapping[str, Value]) -> Value:
    fn = FUNCTIONS.get(e.func)
    if fn is None:
        raise _err("E112", f"unknown function '{e.func}'", e.loc,
                   did_you_mean(e.func, FUNCTIONS) or f"functions: {', '.join(sorted(FUNCTIONS))}")
    args = [evaluate(a, env) for a in e.args]
    try:
        return fn(*args)
    except SpecError as exc:
        raise _err("E160", str(exc), e.loc) from None
    except (TypeError, ValueError, ArithmeticError) as exc:  # ArithmeticError: overflow, division by zero
        raise _err("E108", f"{e.func}(): {exc}", e.loc) from None


def _eval_index(e: A.Index, env: Mapping[str, Value]) -> Value:
    obj, idx = evaluate(e.obj, env), evaluate(e.index, env)
    if not isinstance(obj, tuple):
        raise _err("E108", f"cannot index a {type_name(obj)}", e.loc)
    if not _is_int(idx):
        raise _err("E108", f"list index must be an integer, got {type_name(idx)}", e.index.loc)
    if not -len(obj) <= idx < len(obj):
        raise _err("E108", f"list index {idx} out of range for a list of {len(obj)}", e.index.loc)
    return obj[idx]
