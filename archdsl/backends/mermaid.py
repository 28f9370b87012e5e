"""``render -o net.mmd``: the diagram as a Mermaid flowchart, which code hosts draw inside Markdown.

It draws the same view model as the Graphviz diagram (:func:`archdsl.backends.render.build_model`):
the same nodes and labels, the scopes open at ``--depth``/``--expand`` as ``subgraph`` blocks and
the closed ones as single nodes, and the same edges with each tensor's shape written once
(:func:`archdsl.backends.render.visible_edges`).  Node and subgraph ids are the model's generated
ids (``n12``, ``s3``), never names from the spec; every label is quoted with Mermaid's entity codes
(``#34;``) standing for the characters Mermaid's grammar or its HTML labels would read (quotes,
``#``, ``<``, ``>``, ``&``, brackets, backticks, control characters).  Output is deterministic.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..ops import OPS
from .render import FAMILY_COLORS, FINDING_COLOR, Model, visible_edges

#: Mermaid's default limits (mermaid 11 ``maxEdges`` and ``maxTextSize``); code hosts such as GitHub
#: keep them, and a diagram beyond either is not drawn there.
MAX_EDGES = 500
MAX_TEXT = 50_000

#: Characters written as ``#NNN;`` inside a quoted label.  Mermaid ends the string at ``"``, reads
#: ``#name;`` as an entity, and draws labels as HTML (``<``, ``>``, ``&``); a leading backtick starts
#: a Markdown string, and ``|`` ends an edge label.  Brackets, parentheses, ``:`` and ``;`` are
#: plain text inside quotes (tests/test_mermaid.py has Mermaid's parser read them).
_ESCAPED = frozenset('"#&<>`|\\')
#: Words Mermaid's pre-processing rewrites on a line holding ``style``/``classDef`` and ``#...;``.
_KEYWORDS = re.compile(r"style|classDef")

_TAG = re.compile(r"<[^<>]*>")


def escape_text(text: str) -> str:
    """``text`` safe inside a quoted Mermaid label (see :data:`_ESCAPED`)."""
    out = "".join(f"#{ord(ch)};" if ch in _ESCAPED or not ch.isprintable() else ch for ch in str(text))
    # "style"/"classDef" followed on the line by ':' and an entity would be rewritten by Mermaid before
    # parsing; an entity for the first letter keeps the word from matching.
    return _KEYWORDS.sub(lambda m: f"#{ord(m.group()[0])};{m.group()[1:]}", out)


def label_lines(dot_label: str) -> list[str]:
    """The text lines of one of the model's Graphviz HTML-like labels (``<<B>conv 3×3</B><BR/>...>``).

    The model escapes every text it puts in a label, so the tags removed here are its own."""
    body = dot_label[1:-1] if dot_label.startswith("<") and dot_label.endswith(">") else dot_label
    return [html.unescape(_TAG.sub("", part)) for part in body.split("<BR/>")]


def _label(dot_label: str) -> str:
    return "<br>".join(escape_text(line) for line in label_lines(dot_label) if line)


def _node_shape(item: Mapping[str, Any]) -> tuple[str, str]:
    """Mermaid's brackets for an IR node: stadium for input/output, trapezoid for concat, circle for
    add/mul, a rounded box for every other layer."""
    op = item["info"]["op"]
    if op in ("input", "output"):
        return '(["', '"])'
    if op == "concat":
        return '[/"', '"\\]'
    if op in ("add", "mul"):
        return '(("', '"))'
    return '("', '")'


def _family(op: str) -> str:
    """The class (op family) a node is coloured by, as in the Graphviz legend."""
    if op in ("concat", "add", "mul"):
        return "merge"
    return OPS[op].family if op in OPS else "misc"


def to_mermaid(model: Model, opened: set[str], direction: str = "TB") -> str:
    """The Mermaid flowchart of ``model`` with the scopes in ``opened`` drawn as subgraphs."""
    by_id = {s["id"]: s for s in model.scopes}
    nodes = {n["id"]: n for n in model.nodes}
    lines = [f"flowchart {direction}"]
    classes: dict[str, list[str]] = {}
    marked: list[str] = []

    def emit(items: Sequence[str], indent: str) -> None:
        for item in items:
            if item in nodes:
                n = nodes[item]
                left, right = _node_shape(n)
                lines.append(f"{indent}{item}{left}{_label(n['attrs']['label'])}{right}")
                classes.setdefault(_family(n["info"]["op"]), []).append(item)
                if n["info"]["findings"]:
                    marked.append(item)
                continue
            s = by_id[item]
            if item in opened:
                # the head line only: Mermaid gives a subgraph title one line, cut at the subgraph's width
                title = escape_text(label_lines(s["cluster"]["label"])[0])
                lines.append(f'{indent}subgraph {item}["{title}"]')
                emit(s["children"], indent + "  ")
                lines.append(f"{indent}end")
            else:
                lines.append(f'{indent}{item}[["{_label(s["collapsed"]["label"])}"]]')
                classes.setdefault("block", []).append(item)
                if s["info"]["findings"]:
                    marked.append(item)

    emit(model.roots, "  ")
    for (a, b), attrs in visible_edges(model, opened).items():
        arrow = "-.->" if attrs.get("style") == "dashed" else "-->"
        text = attrs.get("label", "")
        lines.append(f'  {a} {arrow}|"{escape_text(text)}"| {b}' if text else f"  {a} {arrow} {b}")
    lines += _styles(classes, marked)
    return "\n".join(lines) + "\n"


def _styles(classes: Mapping[str, list[str]], marked: Sequence[str]) -> list[str]:
    """``classDef`` per family drawn (the Graphviz colours), ``class`` lines, red outlines for findings."""
    fills = dict(FAMILY_COLORS, block="#E8EAF6")
    out = []
    for name in sorted(classes):
        out.append(f"  classDef {name} fill:{fills.get(name, '#FFFFFF')},stroke:#37474F,color:#000000")
        out.append(f"  class {','.join(classes[name])} {name}")
    out += [f"  style {item} stroke:{FINDING_COLOR},stroke-width:3px" for item in marked]
    return out


_EDGE = re.compile(r"^  [ns]\d+ (?:-->|-\.->)", re.MULTILINE)


def over_limits(text: str) -> list[str]:
    """What in flowchart ``text`` exceeds Mermaid's default limits (code hosts will not draw it)."""
    edges = len(_EDGE.findall(text))
    over = []
    if edges > MAX_EDGES:
        over.append(f"{edges:,} edges (Mermaid draws at most {MAX_EDGES})")
    if len(text) > MAX_TEXT:
        over.append(f"{len(text):,} characters (at most {MAX_TEXT:,})")
    return over


def size_note(model: Model, opened: set[str], direction: str, text: str) -> str:
    """``""`` when ``text`` is within Mermaid's default limits; else what exceeds them and the largest
    ``--depth`` that fits, for the status line."""
    over = over_limits(text)
    if not over:
        return ""
    from .render import initial_open

    deepest = max((s["depth"] for s in model.scopes), default=0)
    fits = next((d for d in range(deepest, 0, -1)
                 if not over_limits(to_mermaid(model, initial_open(model, d) & opened, direction))), None)
    advice = f"--depth {fits} fits" if fits else "it does not fit at any --depth"
    return f"{' and '.join(over)}: GitHub and other code hosts will not draw it; {advice}"
