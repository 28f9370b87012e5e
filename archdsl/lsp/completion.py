"""Completion from the text around the cursor, so that it works on a half-typed file: op names with
their signatures, an op's (or block's) parameter names inside its parentheses, the blocks in scope
(local and imported), and network parameters, block parameters and ``let`` names in expressions.

The context (statement position, argument name, expression) is read from the raw text before the
cursor; names come from the text itself and from the last analysis of the document that parsed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lsprotocol import types

from ..expr import FUNCTIONS, show
from ..frontend.printer import params as params_text
from ..ops import PUBLIC_OPS, OpSpec
from ..passes.elaborate import signature
from .documents import DocAnalysis

#: Keywords that start an element or a statement.
KEYWORDS = ("network", "input", "use", "let", "block", "loss", "init", "rules", "if", "else", "aux", "inline",
            "concat", "residual", "shortcut", "gate", "repeat", "dense")
#: Arguments of the built-in combinators.
COMBINATOR_ARGS = {"residual": ("scale", "post"), "repeat": ("prefix", "start"), "dense": ("prefix", "start")}

_BLOCK_HEAD = re.compile(r"^[ \t]*block[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*(?:\(([^)]*)\))?", re.M)
_NETWORK_HEAD = re.compile(r"^[ \t]*network[ \t]+[A-Za-z_][A-Za-z0-9_]*[ \t]*\(([^)]*)\)", re.M)
_LET = re.compile(r"^[ \t]*let[ \t]+([A-Za-z_][A-Za-z0-9_]*)", re.M)
_AS = re.compile(r"\bas[ \t]+([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Context:
    """Where the cursor is: ``kind`` is "element" (an op or block goes here), "argument" (inside a
    call's parentheses, before any ``=``: a parameter name or a positional value), "value" (an
    expression) or "none" (a comment, a string); ``callee`` names the call whose parentheses hold the
    cursor; ``prefix`` is the part of the word typed so far."""

    kind: str
    prefix: str
    callee: str | None = None


def _strip_comments_and_strings(text: str) -> str:
    """``text`` with comments and string contents blanked (same length), so brackets inside them do not count."""
    return re.sub(r'#[^\n]*|"[^"\n]*"?', lambda m: " " * len(m.group()), text)


def context(text: str, offset: int) -> Context:
    """The completion context at character ``offset`` of ``text``."""
    before = text[:offset]
    line = before[before.rfind("\n") + 1:]
    if "#" in _strip_strings_only(line) or line.count('"') % 2 == 1:
        return Context("none", "")
    # \Z, not $: at the start of a line the word ending the line above is not a prefix
    m = re.search(r"[A-Za-z_][A-Za-z0-9_]*\Z", before)
    prefix = m.group() if m else ""
    if m and m.start() > 0 and before[m.start() - 1].isdigit():
        return Context("none", "")  # inside a number or a shape: 3x224
    clean = _strip_comments_and_strings(before[: len(before) - len(prefix)])
    callee, paren = _open_paren(clean)
    if callee is not None:
        # after the last comma at this depth: "name = ..." is a value, a bare word a name or a positional
        current = clean[paren + 1:].rsplit(",", 1)[-1]
        if re.search(r"(?<![=!<>])=(?!=)", current):
            return Context("value", prefix, callee)
        return Context("argument", prefix, callee)
    return Context("value" if _in_expression(clean) else "element", prefix)


#: A line that is an expression from its keyword on (``let x =``, ``input``, ``if``), or text that ends
#: where an operand must follow (an operator, ``and``, ``then``...).
_EXPRESSION_LINE = re.compile(r"(^|\n)[ \t]*(let[ \t]+[A-Za-z_]\w*[ \t]*=|input\b|if\b)[^\n{]*$")
#: A YAML list item's ``- `` alone on the line before the cursor: a layer goes there, not an operand.
_YAML_ITEM = re.compile(r"(^|\n)[ \t]*-[ \t]+$")
_OPERAND_NEXT = re.compile(r"[=+\-*/%<>\[,]$|\b(and|or|not|then|else|if)$")


def _in_expression(before: str) -> bool:
    """Whether the text before the cursor (comments and strings blanked) ends in an expression;
    ``->``, a label's ``:`` or a brace start an element, and so does a new line after a complete
    ``let``/``input`` line (only an operator ending the line above continues its expression)."""
    tail = before.rstrip()
    if re.search(r"(->|:|\{|\})$", tail) or _YAML_ITEM.search(before):
        return False
    if _OPERAND_NEXT.search(tail):
        return True
    return not before.rstrip(" \t").endswith("\n") and bool(_EXPRESSION_LINE.search(tail + " "))


def _strip_strings_only(line: str) -> str:
    return re.sub(r'"[^"\n]*"', "", line)


def _open_paren(clean: str) -> tuple[str | None, int]:
    """The name before the innermost unclosed ``(`` (None when the cursor is not inside parentheses)."""
    depth = 0
    for i in range(len(clean) - 1, -1, -1):
        ch = clean[i]
        if ch in ")]":
            depth += 1
        elif ch in "([":
            if depth == 0:
                if ch == "[":
                    return "[", i
                m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*$", clean[:i])
                return (m.group(1) if m else "("), i
            depth -= 1
        elif ch in "{}" and depth == 0:
            return None, -1
    return None, -1


@dataclass(frozen=True)
class Names:
    """The names a document offers: blocks with their signatures, network parameters, lets, the
    parameters of the block the cursor is in, loop variables."""

    blocks: dict[str, str]
    network_params: tuple[str, ...]
    lets: tuple[str, ...]
    block_params: tuple[str, ...]
    loop_vars: tuple[str, ...]


def _param_names(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(m.group(1) for m in re.finditer(r"(?:^|,)\s*([A-Za-z_][A-Za-z0-9_]*)", text))


def names(text: str, offset: int, da: DocAnalysis | None) -> Names:
    """Names in scope at ``offset``, from the text (works while it does not parse) and the analysis."""
    blocks: dict[str, str] = {}
    if da is not None:
        for name, bdef in sorted(da.res.blocks.items()):
            blocks[name] = f"{name}({params_text(bdef.block.params)})"
    for m in _BLOCK_HEAD.finditer(text):
        blocks.setdefault(m.group(1), f"{m.group(1)}({(m.group(2) or '').strip()})")
    net = _NETWORK_HEAD.search(text)
    network_params = _param_names(net.group(1) if net else None)
    if da is not None and da.res.spec is not None and da.res.spec.network is not None:
        network_params = tuple(dict.fromkeys([*network_params, *(p.name for p in da.res.spec.network.params)]))
    lets = tuple(dict.fromkeys(m.group(1) for m in _LET.finditer(text)))
    block_params: tuple[str, ...] = ()
    clean = _strip_comments_and_strings(text[:offset])
    heads = list(_BLOCK_HEAD.finditer(clean))
    if heads:
        last = heads[-1]
        rest = clean[last.end():]
        if rest.count("{") > rest.count("}") or "{" not in rest:
            block_params = _param_names(last.group(2))
    loop_vars = tuple(dict.fromkeys(m.group(1) for m in _AS.finditer(clean)))
    return Names(blocks, network_params, lets, block_params, loop_vars)


def _op_item(op: OpSpec) -> types.CompletionItem:
    return types.CompletionItem(label=op.name, kind=types.CompletionItemKind.Function, detail=signature(op),
                                documentation=op.doc or None, sort_text=f"1{op.name}")


def _expression_items(ns: Names) -> list[types.CompletionItem]:
    out = []
    for group, kind, detail, rank in ((ns.block_params, types.CompletionItemKind.Variable, "block parameter", 0),
                                      (ns.loop_vars, types.CompletionItemKind.Variable, "loop variable", 0),
                                      (ns.lets, types.CompletionItemKind.Constant, "let", 1),
                                      (ns.network_params, types.CompletionItemKind.Property, "network parameter", 2)):
        out += [types.CompletionItem(label=n, kind=kind, detail=detail, sort_text=f"{rank}{n}") for n in group]
    out += [types.CompletionItem(label=f, kind=types.CompletionItemKind.Function, detail="function",
                                 sort_text=f"3{f}") for f in sorted(FUNCTIONS)]
    out += [types.CompletionItem(label=k, kind=types.CompletionItemKind.Keyword, sort_text=f"4{k}")
            for k in ("true", "false", "none", "if", "then", "else", "and", "or", "not")]
    return out


def _default(value: object) -> str:
    return "none" if value is None else show(value)


def _argument_items(callee: str, ns: Names, da: DocAnalysis | None) -> list[types.CompletionItem]:
    """Parameter names of ``callee`` (an op, a block or a combinator) as ``name = `` items."""
    if callee in PUBLIC_OPS:
        params = [(p.name, p.kind if p.required else f"{p.kind} = {_default(p.default)}")
                  for p in PUBLIC_OPS[callee].params]
    elif da is not None and callee in da.res.blocks:
        params = [(p.name, "block parameter") for p in da.res.blocks[callee].block.params]
    elif callee in ns.blocks:
        params = [(n, "block parameter") for n in _param_names(ns.blocks[callee][len(callee) + 1:-1])]
    else:
        params = [(n, f"{callee} option") for n in COMBINATOR_ARGS.get(callee, ())]
    return [types.CompletionItem(label=name, kind=types.CompletionItemKind.Field, detail=detail,
                                 insert_text=f"{name} = ", sort_text=f"0{i:03d}") for i, (name, detail) in
            enumerate(params)]


def complete(text: str, offset: int, da: DocAnalysis | None) -> list[types.CompletionItem]:
    """Completion items at character ``offset`` of ``text``; ``da``: the last analysis that parsed."""
    ctx = context(text, offset)
    if ctx.kind == "none":
        return []
    ns = names(text, offset, da)
    if ctx.kind == "argument":
        items = _argument_items(ctx.callee or "", ns, da) + _expression_items(ns)
    elif ctx.kind == "value":
        items = _expression_items(ns)
    else:
        items = [_op_item(op) for op in PUBLIC_OPS.values()]
        items += [types.CompletionItem(label=n, kind=types.CompletionItemKind.Class, detail=f"block {sig}",
                                       sort_text=f"0{n}") for n, sig in ns.blocks.items()]
        items += [types.CompletionItem(label=k, kind=types.CompletionItemKind.Keyword, sort_text=f"2{k}")
                  for k in KEYWORDS]
    if ctx.prefix:
        items = [it for it in items if it.label.lower().startswith(ctx.prefix.lower())]
    return items
