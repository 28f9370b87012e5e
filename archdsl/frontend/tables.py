"""Pre-generated LALR tables for the text grammar, so that start-up skips lark's table construction.

Building the parser from ``grammar/archdsl.lark`` makes lark compute the LALR(1) tables, about
0.1 s of CPU on every run, most of ``archdsl check``'s own time.  The tables are data: they are
generated once into :mod:`archdsl.frontend.tables_generated` as plain Python literals (no pickle,
no cache directory, nothing read from outside the package) and loaded in a few milliseconds.

They are used only when they were generated from this exact grammar text and these options, by
the installed lark version (the serialized form is lark's own, and may change between its
releases).  Otherwise the parser is built from the grammar as before: slower, never different.
After editing the grammar or upgrading lark, regenerate them::

    python -m archdsl.frontend.tables

``tests/test_parser_tables.py`` fails while they are stale.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Transformer

#: The grammar's entry points: whole files and the fragments YAML specs embed.
START_RULES = ("start", "chain_start", "args_start", "params_start", "expr_start", "element_start",
               "bound_start")

#: Every option that shapes the tables (the transformer does not: it only supplies the callbacks).
LARK_OPTIONS: dict[str, Any] = {"parser": "lalr", "start": list(START_RULES), "maybe_placeholders": True}

GENERATED = Path(__file__).with_name("tables_generated.py")

_SHIFT = 0  # lark's serialized action codes: (0, state) shifts, (1, rule) reduces


def fingerprint(grammar: str) -> str:
    """SHA-256 of the grammar text and the options: what the generated tables were built from."""
    key = grammar + "\0" + repr(sorted(LARK_OPTIONS.items()))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def build(grammar: str, transformer: Transformer | None) -> Lark:
    """The parser built from the grammar text (lark computes the tables: about 0.1 s)."""
    return Lark(grammar, transformer=transformer, **LARK_OPTIONS)


def load(grammar: str, transformer: Transformer | None) -> Lark | None:
    """The parser from the generated tables, or None when they do not belong to ``grammar`` and
    the installed lark (then the caller builds it)."""
    from . import tables_generated as gen

    if gen.FINGERPRINT != fingerprint(grammar) or gen.LARK_VERSION != lark.__version__:
        return None
    data, memo = gen.tables()  # built afresh, garbage once lark has read them
    # _load_from_dict is what lark's own standalone generator emits to restore its tables.
    return Lark._load_from_dict(data, memo, transformer=transformer)


def make_parser(grammar: str, transformer: Transformer | None) -> Lark:
    """The parser for ``grammar``: from the generated tables when they are current, else built."""
    return load(grammar, transformer) or build(grammar, transformer)


def _canonical(table: dict[str, Any]) -> dict[str, Any]:
    """Renumber a serialized LALR table so it does not depend on string hashing.

    lark numbers tokens and states in set-iteration order, which changes with ``PYTHONHASHSEED``;
    here tokens are numbered by name and states in breadth-first order of their shifts from the
    start states (every state is reachable that way), which gives the same table every time."""
    names = table["tokens"]
    token_id = {name: i for i, name in enumerate(sorted(names.values()))}
    states = table["states"]

    def by_name(actions: dict[int, Any]) -> list[tuple[str, Any]]:
        return sorted((names[tok], act) for tok, act in actions.items())

    order: list[int] = []
    seen: set[int] = set()
    for start in sorted(table["start_states"]):
        queue = [table["start_states"][start]]
        while queue:
            state = queue.pop(0)
            if state in seen:
                continue
            seen.add(state)
            order.append(state)
            queue.extend(arg for _, (action, arg) in by_name(states[state]) if action == _SHIFT)
    if seen != set(states):
        raise ValueError("LALR table has states unreachable from its start states")
    new = {old: i for i, old in enumerate(order)}
    return {
        "tokens": {i: name for name, i in token_id.items()},
        "states": {new[old]: {token_id[name]: (action, new[arg] if action == _SHIFT else arg)
                              for name, (action, arg) in by_name(states[old])} for old in order},
        "start_states": {k: new[v] for k, v in sorted(table["start_states"].items())},
        "end_states": {k: new[v] for k, v in sorted(table["end_states"].items())},
    }


def generate_source(grammar: str) -> str:
    """The text of ``tables_generated.py`` for ``grammar`` and the installed lark."""
    import pprint

    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    data, memo = build(grammar, None).memo_serialize([TerminalDef, Rule])
    data["parser"]["parser"] = _canonical(data["parser"]["parser"])

    def literal(value: Any) -> str:
        text = pprint.pformat(value, width=110, compact=True, sort_dicts=True)
        return text.replace("\n", "\n" + " " * 8)

    # A function, not module constants: the literals are garbage once lark has read them, instead
    # of some 6,000 containers the collector would walk until exit.
    return (
        '"""LALR tables of grammar/archdsl.lark, generated by ``python -m archdsl.frontend.tables``: do not edit."""\n'
        "# ruff: noqa\n\n"
        f"FINGERPRINT = {fingerprint(grammar)!r}\n"
        f"LARK_VERSION = {lark.__version__!r}\n\n\n"
        "def tables():\n"
        '    """lark\'s serialized parser (``Lark.memo_serialize``): (data, memo)."""\n'
        f"    return (\n        {literal(data)},\n        {literal(memo)},\n    )\n"
    )


def main() -> int:
    """Regenerate ``tables_generated.py`` from the grammar archdsl loads."""
    from .text import grammar_path

    GENERATED.write_text(generate_source(grammar_path().read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {GENERATED}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
