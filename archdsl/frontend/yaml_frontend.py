"""The YAML front end: the same AST as the text language, with line/column marks kept.

Format (every string that holds code uses the text language's own syntax)::

    network: googlenet(num_classes = 1000, aux_logits = true)
    input: 3x224x224                   # or [3, 224, 224]
    use: [lib/blocks.arch]             # imports, relative to this file
    let:                               # global definitions, in order
      - width: 64                      # YAML scalars are literals;
      - counts: "[3, 4, 6, 3]"         # strings are expressions
    rules: ignore = ["R301"], asym_grid = [12, 20]   # design-rule configuration
    budget: {params: 5.5M, macs: 600M, depth: 60}    # upper bounds (K, M, G: powers of 1000)
    settings:
      - loss: cross_entropy(label_smoothing = 0.1)
      - init conv2d: kaiming_normal(mode = "fan_out")
    blocks:
      BasicConv2d(out, k, stride = 1, padding = 0):
        - conv: conv2d(out, k, stride = stride, padding = padding, bias = false)
        - bn: batchnorm(eps = 0.001)
        - relu
    layers:                            # the network body
      - conv1: BasicConv2d(64, 7, stride = 2, padding = 3)
      - "maxpool(3, stride = 2) -> flatten"       # a chain
      - branch2: [BasicConv2d(96, 1), BasicConv2d(128, 3, padding = 1)]   # labelled group
      - inception3a:                   # a labelled combinator
          concat: [ ...branches... ]
      - gate: [ ...body... ]           # input * body(input), broadcast (squeeze-excitation)
      - '`block`': [ ... ]             # a label that is a keyword, escaped in backticks
      - residual: [ ...body... ]
        args: post = "relu"
        shortcut: {name: downsample, if: "stride != 1", body: [ ... ]}
      - layer1: {repeat: "3, prefix = \\"\\"", as: i, body: [ ... ]}
      - dense: "6"  ;  as: i  ;  body: [...]
      - if: aux_logits
        then: [ {aux: {aux1: "InceptionAux(512, num_classes)"}, args: "weight = 0.3"} ]
        else: [ ... ]
      - let: {x: "2 * width"}
      - chain: [ {concat: [...]}, relu ]          # a chain of structured elements

Loading is safe: the document is composed into YAML nodes (never constructed into arbitrary
objects), unknown tags are refused, duplicate keys are errors, and alias expansion is bounded:
the composer stops at the ``nesting`` limit (E152) before PyYAML's recursion gets deep, and the
composed node graph is measured (size and depth with aliases expanded, memoized, so a billion
laughs costs a few thousand steps) before anything walks it (E150, E152).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .. import ast as A
from .. import limits
from ..ast import ESCAPED_LABEL
from ..diagnostics import Diagnostic, DiagnosticError, Loc
from .text import RESERVED_NAMES, int_limit_hint, parse_text

KEYWORDS = {"concat", "residual", "gate", "repeat", "dense", "group", "if", "aux", "let", "chain"}
_SCALAR_TAGS = {"tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null")}
_MAP_TAG, _SEQ_TAG = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
#: Characters YAML 1.1 (PyYAML) treats as line breaks but archdsl, like YAML 1.2, does not.
_LINE_BREAKS = re.compile("[\x85\u2028\u2029]")
_HEADER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.S)
_SHAPE = re.compile(r"^\s*[0-9]+(x[0-9]+)+\s*$")
#: A shape with names among its sizes (``3xHxW``: symbolic; the names other than H, W are refused).
_SYMBOLIC_SHAPE = re.compile(r"^\s*[0-9]+(x([0-9]+|[A-Za-wyz_][A-Za-wyz0-9_]*))+\s*$")
TOP_KEYS = ("network", "input", "use", "let", "settings", "rules", "budget", "blocks", "layers")


class _Walker:
    """Turns composed YAML nodes into AST (the document's expanded size is checked before)."""

    def __init__(self, file: str) -> None:
        self.file = file
        # A YAML int needs at most ~3.4 binary digits per decimal one (0b...), plus sign/prefix and
        # '_' separators: this bounds int() work; the evaluator checks the exact magnitude.
        self.max_int_digits = limits.current().int_digits
        self.max_int_chars = 4 * self.max_int_digits + 8
        self.scalars = SafeConstructor()
        # An aliased scalar is one node however often it is used: parse its text once.
        self.fragments: dict[tuple[int, str], object] = {}

    # ------------------------------------------------------------------ basics
    def loc(self, node: Node) -> Loc:
        return Loc(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def fail(self, node: Node, message: str, hint: str = "", code: str = "E004") -> DiagnosticError:
        return DiagnosticError(Diagnostic(code, message, self.loc(node), hint=hint))

    def scalar(self, node: Node) -> object:
        if not isinstance(node, ScalarNode):
            raise self.fail(node, f"expected a single value, found a {_kind(node)}")
        if node.tag not in _SCALAR_TAGS:
            raise self.fail(node, f"YAML tag {node.tag!r} is not allowed", "archdsl YAML uses plain values only")
        if node.tag == "tag:yaml.org,2002:int" and len(node.value) > self.max_int_chars:
            raise self.fail(node, f"integer too large ({len(node.value)} digits)",
                            int_limit_hint(self.max_int_digits), code="E151")
        try:
            value = self.scalars.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError, IndexError, KeyError):
            # PyYAML's constructors index into the text: an explicitly tagged empty or sign-only
            # scalar (!!int '', !!float '_', !!bool x) raises IndexError or KeyError, not a YAMLError.
            kind, shown = node.tag.rsplit(":", 1)[-1], node.value[:40] + ("..." if len(node.value) > 40 else "")
            raise self.fail(node, f"bad YAML value: {shown!r} is not a valid {kind}") from None
        if type(value) is int and len(str(abs(value))) > self.max_int_digits + 1:
            # The text language refuses such a literal: refused here too, a converted spec parses.
            raise self.fail(node, f"integer too large ({len(str(abs(value)))} digits)",
                            int_limit_hint(self.max_int_digits), code="E151")
        return value

    def string(self, node: Node, what: str) -> str:
        value = self.scalar(node)
        if not isinstance(value, str):
            raise self.fail(node, f"{what} must be a string, got {value!r}")
        return value

    def mapping(self, node: Node) -> list[tuple[str, Node, Node]]:
        """(key, key node, value node) in order; duplicate and non-string keys are errors."""
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"expected a mapping, found a {_kind(node)}")
        self._plain_tag(node, _MAP_TAG)
        seen: dict[str, Node] = {}
        out = []
        for knode, vnode in node.value:
            if knode.tag == "tag:yaml.org,2002:merge":
                raise self.fail(knode, "YAML merge keys ('<<') are not supported")
            key = self.scalar(knode)
            if not isinstance(key, str):
                raise self.fail(knode, f"mapping keys must be strings, got {key!r}")
            if key in seen:
                first = seen[key].start_mark
                raise self.fail(knode, f"duplicate key '{key}'", f"first given at line {first.line + 1}",
                                code="E003")
            seen[key] = knode
            out.append((key, knode, vnode))
        return out

    def sequence(self, node: Node) -> list[Node]:
        if not isinstance(node, SequenceNode):
            raise self.fail(node, f"expected a list, found a {_kind(node)}")
        self._plain_tag(node, _SEQ_TAG)
        return list(node.value)

    def _plain_tag(self, node: Node, tag: str) -> None:
        # Composed nodes are never constructed, but a tag such as !!python/object on a mapping or
        # list would otherwise pass silently; refuse it as scalar tags are refused.
        if node.tag != tag:
            raise self.fail(node, f"YAML tag {node.tag!r} is not allowed", "archdsl YAML uses plain lists and mappings")

    def fragment(self, node: Node, start: str) -> object:
        """Parse a scalar's text with the text grammar's ``start`` rule, keeping positions."""
        key = (id(node), start)
        if key not in self.fragments:
            src, line, col, exact = _located_source(node, self.string(node, "this value"))
            self.fragments[key] = self.parse_at(src, start, line, col, exact)
        return self.fragments[key]

    def parse_at(self, src: str, start: str, line: int, col: int, exact: bool) -> object:
        """Parse ``src`` as if it began at 0-based ``line``, ``col``; not ``exact``: every position
        in it (a diagnostic's, the AST's) is that start."""
        try:
            result = parse_text(src, self.file, start=start, line_offset=line, col_offset=col)
        except DiagnosticError as exc:
            if exact:
                raise
            raise DiagnosticError(dataclasses.replace(exc.diagnostic, loc=Loc(self.file, line + 1, col + 1))) from None
        return result if exact else _relocate(result, Loc(self.file, line + 1, col + 1))

    # ------------------------------------------------------------------ expressions
    def expr(self, node: Node) -> A.Expr:
        if isinstance(node, SequenceNode):
            return A.ListExpr(tuple(self.expr(n) for n in self.sequence(node)), self.loc(node))
        value = self.scalar(node)
        loc = self.loc(node)
        if isinstance(value, str):
            return self.fragment(node, "expr_start")
        if isinstance(value, bool) or value is None:
            return A.Const(value, loc)
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            raise self.fail(node, "numbers must be finite")
        if value < 0:
            return A.UnaryOp("-", A.Num(-value, loc), loc)
        return A.Num(value, loc)

    # ------------------------------------------------------------------ document
    def document(self, node: Node) -> A.SpecFile:
        fields = {k: (kn, vn) for k, kn, vn in self.mapping(node)}
        for key, (kn, _) in fields.items():
            if key not in TOP_KEYS:
                from ..diagnostics import did_you_mean

                raise self.fail(kn, f"unknown top-level key '{key}'",
                                did_you_mean(key, TOP_KEYS) or f"keys: {', '.join(TOP_KEYS)}")
        network = self.network(fields["network"][1]) if "network" in fields else None
        input_decl = self.input(fields["input"][1]) if "input" in fields else None
        uses = tuple(A.Use(self.string(n, "an import path"), self.loc(n)) for n in
                     self.sequence(fields["use"][1])) if "use" in fields else ()
        lets = self.lets(fields["let"][1]) if "let" in fields else ()
        settings = self.settings(fields["settings"][1]) if "settings" in fields else ()
        blocks = self.blocks(fields["blocks"][1]) if "blocks" in fields else ()
        body = self.body(fields["layers"][1]) if "layers" in fields else ()
        rules = self.fragment(fields["rules"][1], "args_start") if "rules" in fields else ()
        budget = self.budget(fields["budget"][1]) if "budget" in fields else ()
        return A.SpecFile(network, input_decl, uses, lets, settings, blocks, body, self.file, rules, budget)

    def header(self, node: Node, what: str) -> tuple[str, tuple[A.Param, ...]]:
        text = self.string(node, what)
        m = _HEADER.match(text)
        if not m:
            raise self.fail(node, f"{what} must look like name(param, other = default), got {text!r}", code="E001")
        params: tuple = ()
        if m.group(2) is not None:
            # The parameters parse in place: the name before them is blanked, line breaks kept.
            src, line, col, exact = _located_source(node, text)
            inner = _HEADER.match(src) if exact else None
            if inner is None:  # a quoted scalar folded over lines: the parameters are located at the value
                inner, exact = m, False
            params = self.parse_at(re.sub(r"[^\n]", " ", src[:inner.start(2)]) + inner.group(2), "params_start",
                                   line, col, exact)
        return m.group(1), params

    def network(self, node: Node) -> A.NetworkDecl:
        name, params = self.header(node, "network")
        return A.NetworkDecl(name, params, self.loc(node))

    def input(self, node: Node) -> A.InputDecl:
        loc = self.loc(node)
        if isinstance(node, SequenceNode):
            return A.InputDecl(tuple(self.expr(n) for n in self.sequence(node)), loc)
        text = self.string(node, "input")
        if _SHAPE.match(text):
            if any(len(p.strip()) > self.max_int_digits + 1 for p in text.split("x")):
                raise self.fail(node, "input size too large", int_limit_hint(self.max_int_digits), code="E151")
            return A.InputDecl(tuple(A.Num(int(p), loc) for p in text.strip().split("x")), loc)
        if _SYMBOLIC_SHAPE.match(text):
            return A.InputDecl(self.symbolic_dims(node, text), loc)
        value = self.fragment(node, "expr_start")
        if not isinstance(value, A.ListExpr):
            raise self.fail(node, "input must be a shape like 3x224x224 or a list [c, h, w]", code="E114")
        return A.InputDecl(value.items, loc)

    def symbolic_dims(self, node: Node, text: str) -> tuple[A.Expr, ...]:
        """``3xHxW``: numbers, and the size symbols as names, each located at its column."""
        src, line, col, exact = _located_source(node, text)
        if exact:  # the shape has no spaces inside: it sits on one line of the located text
            lead = len(src) - len(src.lstrip())
            before = src.rfind("\n", 0, lead)
            line, col = (line + src.count("\n", 0, lead), lead - before - 1) if before >= 0 else (line, col + lead)
        col += 1
        dims: list[A.Expr] = []
        for i, part in enumerate(text.strip().split("x")):
            at = Loc(self.file, line + 1, col)
            if part.isdigit() and len(part) <= self.max_int_digits + 1:
                dims.append(A.Num(int(part), self.loc(node)))
            elif part.isdigit():
                raise self.fail(node, "input size too large", int_limit_hint(self.max_int_digits), code="E151")
            elif (i, part) in ((1, "H"), (2, "W")):
                dims.append(A.Name(part, at))
            else:
                where = "the channels are a number" if i == 0 else \
                    f"the {('height', 'width')[i - 1]} is a number or {'HW'[i - 1]}" if i < 3 else "an input is C x H x W"
                raise DiagnosticError(Diagnostic(
                    "E114", f"'{part}' is not a size: {where}", at,
                    hint="write the height as H and the width as W for every size: input 3xHxW (or 3x224xW)"))
            col += len(part) + 1 if exact else 0  # a folded quoted value: all at its start
        return tuple(dims)

    def budget(self, node: Node) -> tuple[A.BudgetItem, ...]:
        """``budget: {params: 5.5M, depth: 60}``: each value a YAML number, or a string holding a bound
        as the text language writes it (``5.5M``, ``2 * base``).  A list of such mappings also reads
        (the printer writes one when a figure is bounded twice, which analysis then reports)."""
        items = self.sequence(node) if isinstance(node, SequenceNode) else [node]
        out = []
        for key, kn, vn in (entry for item in items for entry in self.mapping(item)):
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):  # printed as text, the key must read as a name
                raise self.fail(kn, f"{key!r} is not a valid budget figure", code="E001",
                                hint="the figures are params, macs, depth and activations")
            # A keyword reads as a name there in the text language too: analysis reports the unknown figure (E402).
            if isinstance(vn, ScalarNode) and isinstance(self.scalar(vn), str):
                value, unit = self.fragment(vn, "bound_start")
            else:
                value, unit = self.expr(vn), ""
            out.append(A.BudgetItem(key, value, unit, self.loc(kn)))
        return tuple(out)

    def lets(self, node: Node) -> tuple[A.Let, ...]:
        items = self.sequence(node) if isinstance(node, SequenceNode) else [node]
        out = []
        for item in items:
            for key, kn, vn in self.mapping(item):
                _check_name(self, kn, key, escapable=False)
                out.append(A.Let(key, self.expr(vn), self.loc(kn)))
        return tuple(out)

    def settings(self, node: Node) -> tuple[A.Setting, ...]:
        out = []
        for item in self.sequence(node):
            for key, kn, vn in self.mapping(item):
                parts = key.split()
                if parts == ["loss"]:
                    kind, target = "loss", None
                elif len(parts) == 2 and parts[0] == "init":
                    kind, target = "init", parts[1]
                else:
                    raise self.fail(kn, f"unknown setting '{key}'", "settings are 'loss' and 'init OP'")
                call = self.fragment(vn, "element_start")
                if not isinstance(call, A.Call) or call.label:
                    raise self.fail(vn, f"{kind} must be a call like name(args)")
                out.append(A.Setting(kind, target, call, self.loc(kn)))
        return tuple(out)

    def blocks(self, node: Node) -> tuple[A.Block, ...]:
        out = []
        for _key, kn, vn in self.mapping(node):
            name, params = self.header(kn, "block")
            out.append(A.Block(name, params, self.body(vn), self.loc(kn)))
        return tuple(out)

    # ------------------------------------------------------------------ bodies
    def body(self, node: Node) -> tuple[A.Stmt, ...]:
        if isinstance(node, ScalarNode) and self.scalar(node) is None:
            return ()
        return tuple(self.stmt(n) for n in self.sequence(node))

    def stmt(self, node: Node) -> A.Stmt:
        if isinstance(node, ScalarNode):
            return self.fragment(node, "chain_start")
        if isinstance(node, SequenceNode):
            self._plain_tag(node, _SEQ_TAG)
            raise self.fail(node, "a nested list is not a layer", "label it to make a group: name: [ ... ]")
        entries = self.layer_mapping(node)
        head = entries[0][0]
        if head == "let":
            return self._let_stmt(entries)
        if head == "if":
            return self._if(node, entries)
        if head == "aux":
            return self._aux(node, entries)
        if head == "chain":
            self._only(entries, {"chain"})
            els = tuple(self.element(n) for n in self.sequence(entries[0][2]))
            if not els:
                raise self.fail(node, "a chain needs at least one element")
            return A.Chain(els, self.loc(node))
        if head not in KEYWORDS and len(entries) == 1 and isinstance(entries[0][2], ScalarNode):
            label = _check_name(self, entries[0][1], head)
            chain = self.fragment(entries[0][2], "chain_start")
            first = _relabel(chain.elements[0], label, self, entries[0][1])
            return A.Chain((first,) + chain.elements[1:], self.loc(node))
        el = self.element(node)
        return A.Chain((el,), el.loc)

    def _let_stmt(self, entries: list) -> A.Let:
        self._only(entries, {"let"})
        lets = self.lets(entries[0][2])
        if len(lets) != 1:
            raise self.fail(entries[0][2], "write one let per list item")
        return lets[0]

    def _if(self, node: Node, entries: list) -> A.If:
        self._only(entries, {"if", "then", "else"})
        d = {k: v for k, _, v in entries}
        if "then" not in d:
            raise self.fail(node, "'if' needs a 'then' list")
        orelse = self.body(d["else"]) if "else" in d else None
        return A.If(self.expr(d["if"]), self.body(d["then"]), orelse, self.loc(node))

    def _aux(self, node: Node, entries: list) -> A.Aux:
        self._only(entries, {"aux", "args"})
        d = {k: v for k, _, v in entries}
        args = self.fragment(d["args"], "args_start") if "args" in d else ()
        return A.Aux(args, self.element(d["aux"]), self.loc(node))

    def _only(self, entries: list, allowed: set[str]) -> None:
        for key, kn, _ in entries:
            if key not in allowed:
                from ..diagnostics import did_you_mean

                raise self.fail(kn, f"unexpected key '{key}' here",
                                did_you_mean(key, allowed) or f"allowed: {', '.join(sorted(allowed))}")

    def layer_mapping(self, node: Node) -> list[tuple[str, Node, Node]]:
        """A layer written as a mapping: its entries, at least one (``{}`` is a located error)."""
        entries = self.mapping(node)
        if not entries:
            raise self.fail(node, "an empty mapping is not a layer",
                            "write a call such as 'conv2d(64, 3)', a labelled one ('conv1: conv2d(64, 3)') "
                            "or a combinator ('concat: [...]'), or remove the item")
        return entries

    def element(self, node: Node) -> A.Element:
        """One element: a call string, a labelled thing, or a combinator mapping."""
        if isinstance(node, ScalarNode):
            return self.fragment(node, "element_start")
        entries = self.layer_mapping(node)
        head, kn, vn = entries[0]
        if head not in KEYWORDS:
            if len(entries) != 1:
                raise self.fail(entries[1][1], f"a labelled element has one key; '{entries[1][0]}' is extra")
            label = _check_name(self, kn, head)
            if isinstance(vn, ScalarNode):
                inner = self.fragment(vn, "element_start")
            elif isinstance(vn, SequenceNode):
                inner = A.Group(self.body(vn), None, self.loc(vn))
            else:
                inner = self.element(vn)
            return _relabel(inner, label, self, kn)
        builder: dict[str, Callable] = {"group": self._group, "concat": self._concat, "residual": self._residual,
                                        "gate": self._gate, "repeat": self._repeat, "dense": self._repeat}
        if head not in builder:
            raise self.fail(kn, f"'{head}' is not an element here")
        if head in ("group", "concat", "gate", "residual") and isinstance(vn, ScalarNode):
            raise self.fail(vn, f"'{head}' is a keyword and takes a list of layers, found a value", code="E004",
                            hint=f"for a layer labelled {head}, write the key in backticks: '`{head}`': ...")
        return builder[head](node, entries)

    def _group(self, node: Node, entries: list) -> A.Group:
        self._only(entries, {"group"})
        return A.Group(self.body(entries[0][2]), None, self.loc(node))

    def _concat(self, node: Node, entries: list) -> A.Concat:
        self._only(entries, {"concat"})
        return A.Concat(self.body(entries[0][2]), None, self.loc(node))

    def _gate(self, node: Node, entries: list) -> A.Gate:
        self._only(entries, {"gate"})
        return A.Gate(self.body(entries[0][2]), None, self.loc(node))

    def _residual(self, node: Node, entries: list) -> A.Residual:
        self._only(entries, {"residual", "args", "shortcut"})
        d = {k: v for k, _, v in entries}
        args = self.fragment(d["args"], "args_start") if "args" in d else ()
        shortcut = None
        if "shortcut" in d:
            sn = d["shortcut"]
            if isinstance(sn, SequenceNode):
                shortcut = A.Shortcut(None, None, self.body(sn), self.loc(sn))
            else:
                se = self.mapping(sn)
                self._only(se, {"name", "if", "body"})
                sd = {k: v for k, _, v in se}
                name = self.string(sd["name"], "shortcut name") if "name" in sd else None
                if name is not None:
                    name = _check_name(self, sd["name"], name)
                cond = self.expr(sd["if"]) if "if" in sd else None
                shortcut = A.Shortcut(name, cond, self.body(sd["body"]) if "body" in sd else (), self.loc(sn))
        return A.Residual(args, self.body(d["residual"]), shortcut, None, self.loc(node))

    def _repeat(self, node: Node, entries: list) -> A.Repeat | A.Dense:
        kw = entries[0][0]
        self._only(entries, {kw, "as", "body"})
        d = {k: v for k, _, v in entries}
        argnode = d[kw]
        if isinstance(argnode, ScalarNode) and not isinstance(self.scalar(argnode), str):
            args = (A.Arg(None, self.expr(argnode), self.loc(argnode)),)
        else:
            args = self.fragment(argnode, "args_start")
        var = self.string(d["as"], "loop variable") if "as" in d else None
        if var is not None:
            _check_name(self, d["as"], var, escapable=False)
        body = self.body(d["body"]) if "body" in d else ()
        cls = A.Repeat if kw == "repeat" else A.Dense
        return cls(args, var, body, None, self.loc(node))


#: Anchors and tags before a node's value (``&a``, ``!!str``, ``!<tag:...>``), the space and comments after them.
_PROPERTIES = re.compile(r"(?:(?:[&!]\S*|#[^\n]*)\s+)*")


def _located_source(node: Node, value: str) -> tuple[str, int, int, bool]:
    """``(text, line, col, exact)``: the text to parse for a scalar, and the 0-based line and column
    of its first character, so that positions map back to the YAML source.

    The node's marks start at its anchor or tag, if any: the value starts after them (perhaps on a
    later line).  A plain or block (``|``, ``>``) scalar spanning several lines is folded by YAML;
    whitespace means nothing to the text grammar, so its raw source slice parses the same while
    keeping every token on its real line and column (a block scalar's header line is blanked).  So
    does a quoted one without escapes ('' or backslashes) or string quotes inside.  Otherwise
    (``exact`` False) a multi-line quoted scalar's folded value is parsed and every position in it
    is the value's start."""
    start, end = node.start_mark, node.end_mark
    buffer = getattr(start, "buffer", None)
    if not isinstance(buffer, str):  # pragma: no cover - composed from a str, PyYAML keeps it
        return value, start.line, start.column, True
    at = _PROPERTIES.match(buffer, start.index, end.index).end()
    line = start.line + buffer.count("\n", start.index, at)
    col = at - (buffer.rfind("\n", 0, at) + 1)
    quoted = node.style in ("'", '"')
    if quoted:
        at, col = at + 1, col + 1
    if "\n" not in buffer[at:end.index]:  # on one line: a line break in the value is an escape (\n)
        return value, line, col, "\n" not in value
    raw = buffer[at:end.index - 1 if quoted else end.index].rstrip("\0")
    if node.style in ("|", ">"):
        newline = raw.find("\n")
        raw = " " * newline + raw[newline:] if newline >= 0 else ""
    elif quoted and any(c in raw for c in "\\'\""):
        return value, line, col, False
    return raw, line, col, True


def _relocate(tree: object, loc: Loc) -> object:
    """``tree`` (AST nodes, tuples of them) with every location replaced by ``loc``."""
    if isinstance(tree, Loc):
        return loc
    if isinstance(tree, tuple):
        return tuple(_relocate(t, loc) for t in tree)
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        return dataclasses.replace(tree, **{f.name: _relocate(getattr(tree, f.name), loc)
                                            for f in dataclasses.fields(tree) if f.init})
    return tree


def _check_name(w: _Walker, node: Node, name: str, escapable: bool = True) -> str:
    """The name a key or value gives, unescaped: a label in backticks may be a keyword."""
    if escapable and len(name) > 2 and name[0] == name[-1] == "`" and ESCAPED_LABEL.match(name[1:-1]):
        return name[1:-1]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in KEYWORDS or name in RESERVED_NAMES:
        hint = "names are letters, digits and '_', not a keyword"
        if escapable and (name in KEYWORDS or name in RESERVED_NAMES):
            hint = f"'{name}' is a keyword; to use it as a label write it in backticks: '`{name}`'"
        raise w.fail(node, f"{name!r} is not a valid name", hint, code="E001")
    return name


def _relabel(el: A.Element, label: str, w: _Walker, node: Node) -> A.Element:
    if getattr(el, "label", None) is not None:
        raise w.fail(node, f"element already labelled '{el.label}'")
    return dataclasses.replace(el, label=label)


def _kind(node: Node) -> str:
    return {ScalarNode: "value", SequenceNode: "list", MappingNode: "mapping"}.get(type(node), "node")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, composing no deeper than the ``nesting`` limit."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.archdsl_file = file
        self.archdsl_depth = 0
        self.archdsl_limit = limits.current().nesting

    def compose_node(self, parent: Node | None, index: object) -> Node:
        """Compose one node, refusing it (E152, at its position) one level beyond the limit."""
        self.archdsl_depth += 1
        try:
            if self.archdsl_depth > self.archdsl_limit:
                mark = self.peek_event().start_mark
                raise DiagnosticError(Diagnostic(
                    "E152", f"YAML nested more than {self.archdsl_limit} levels deep",
                    Loc(self.archdsl_file, mark.line + 1, mark.column + 1),
                    hint="simplify the spec, or raise the limit with --limit nesting=N"))
            return super().compose_node(parent, index)
        finally:
            self.archdsl_depth -= 1


def _compose(text: str, file: str) -> Node | None:
    loader = _Loader(text, file)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return node.value
    return []


def check_expansion(root: Node, file: str) -> None:
    """Size and depth of the document with every alias expanded, without expanding any.

    An iterative, memoized post-order walk over the composed nodes (aliases are shared nodes):
    E150 at the first node whose expansion exceeds ``yaml_nodes`` or that contains itself, E152 at
    the first deeper than ``nesting``.
    """
    lim = limits.current()
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    entered: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            entered.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            _check_measure(node, size[key], depth[key], lim, file)
        elif key not in size:
            if key in entered:
                raise _measure_error(node, file, "E150", "YAML alias refers to a node that contains it "
                                     "(the document would be infinite)", "remove the recursive alias")
            entered.add(key)
            stack.append((node, True))
            stack.extend((k, False) for k in _children(node) if id(k) not in size)


def _check_measure(node: Node, size: int, depth: int, lim: limits.Limits, file: str) -> None:
    if size > lim.yaml_nodes:
        raise _measure_error(node, file, "E150", f"YAML document expands to more than {lim.yaml_nodes:,} nodes",
                             "remove anchors/aliases that multiply content, or raise --limit yaml_nodes=N")
    if depth > lim.nesting:
        raise _measure_error(node, file, "E152", f"YAML nested more than {lim.nesting} levels deep once "
                             "aliases are expanded", "simplify the spec, or raise the limit with --limit nesting=N")


def _measure_error(node: Node, file: str, code: str, message: str, hint: str) -> DiagnosticError:
    mark = node.start_mark
    return DiagnosticError(Diagnostic(code, message, Loc(file, mark.line + 1, mark.column + 1), hint=hint))


def _text_loc(text: str, index: int, file: str) -> Loc:
    """The location of character ``index`` of ``text``."""
    start = text.rfind("\n", 0, index) + 1
    return Loc(file, text.count("\n", 0, index) + 1, index - start + 1)


def parse_yaml(text: str, file: str) -> A.SpecFile:
    """Parse a YAML spec into the AST."""
    odd = _LINE_BREAKS.search(text)
    if odd:
        # PyYAML would count it as a line break and every later position would be off by a line.
        raise DiagnosticError(Diagnostic("E003", f"character U+{ord(odd.group()):04X} is not allowed in YAML specs",
                                         _text_loc(text, odd.start(), file),
                                         hint="YAML 1.1 reads it as a line break; remove it")) from None
    try:
        node = _compose(text, file)
    except yaml.reader.ReaderError as exc:  # a character YAML does not accept (control characters)
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise DiagnosticError(Diagnostic("E003", f"character U+{char:04X} is not allowed in YAML",
                                         _text_loc(text, exc.position, file),
                                         hint="YAML allows tabs, newlines and printable characters")) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Loc(file, mark.line + 1, mark.column + 1) if mark else Loc(file, 1, 1)
        raise DiagnosticError(Diagnostic("E003", f"YAML syntax error: {exc.problem or exc.context}", loc)) from None
    except yaml.YAMLError as exc:
        raise DiagnosticError(Diagnostic("E003", f"YAML error: {exc}", Loc(file, 1, 1))) from None
    except RecursionError:  # a safety net: the composer stops at the nesting limit first
        raise DiagnosticError(Diagnostic("E152", "YAML nested too deeply", Loc(file, 1, 1))) from None
    if node is None:
        return A.SpecFile(None, None, (), (), (), (), (), file)
    check_expansion(node, file)
    try:
        return _Walker(file).document(node)
    except RecursionError:
        raise DiagnosticError(Diagnostic("E152", "YAML nested too deeply", Loc(file, 1, 1))) from None
