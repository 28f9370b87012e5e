"""Every diagnostic code, in every front end where it can arise, at its exact line and column.

Each case is a small broken spec and the *complete* list of diagnostics it must produce, as
``(code, line, column)`` triples, so a test also fails when a mistake is reported twice, at the
wrong place, or drags cascade errors along.  Message, hint and module path are checked where they
carry information (did-you-mean hints, the projection-shortcut hint, the import-cycle chain).
"""

from __future__ import annotations

import io
import json
import re
import textwrap
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from golden import assert_golden

from archdsl import limits
from archdsl.cli import main
from archdsl.diagnostics import Diagnostic, DiagnosticBag, Loc, SourceCache, format_json, format_text
from archdsl.ir import Graph
from archdsl.passes.validate import validate_graph
from archdsl.pipeline import analyze, parse_overrides

ROOT = Path(__file__).resolve().parents[1]


def src(text: str) -> str:
    """Dedent a spec written as an indented triple-quoted string (first newline dropped)."""
    return textwrap.dedent(text).lstrip("\n")


@dataclass
class Case:
    """A broken spec and every diagnostic it must yield."""

    id: str
    file: str  # file name: the suffix picks the front end
    text: str
    expect: list  # [(code, line, col), ...] in file order
    message: dict = field(default_factory=dict)  # code -> substring of the message
    hint: dict = field(default_factory=dict)  # code -> substring of the hint
    path: dict = field(default_factory=dict)  # code -> exact module path
    limits: dict = field(default_factory=dict)  # limits in force (small ones keep limit cases fast)


CASES = [
    # ------------------------------------------------------------------ E001 syntax
    Case("E001-text", "x.arch", src("""
        network n
        input 3x8x8
        conv2d(4, 3) -> -> relu
        """), [("E001", 3, 17)], message={"E001": "unexpected '->'"}),
    Case("E001-text-eof", "x.arch", src("""
        network n
        input 3x8x8
        g: { relu
        """), [("E001", 3, 10)], message={"E001": "unexpected end of input"}, hint={"E001": "'}'"}),
    Case("E001-text-reserved-label", "x.arch", src("""
        network n
        input 3x8x8
        group: relu
        """), [("E001", 3, 1)], message={"E001": "'group' is a reserved word"}),
    Case("E001-text-reserved-let", "x.arch", src("""
        network n
        input 3x8x8
        let group = 2
        relu
        """), [("E001", 3, 5)], message={"E001": "'group' is a reserved word and cannot be a let name"}),
    Case("E001-text-reserved-loop-var", "x.arch", src("""
        network n
        input 3x8x8
        repeat(2) as then { relu }
        """), [("E001", 3, 14)]),
    Case("E001-yaml-reserved-loop-var", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - repeat: 2
          as: then
          body: [relu]
        """), [("E001", 5, 7)], message={"E001": "'then' is not a valid name"}),
    Case("E001-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - conv2d(4, 3) -> -> relu
        """), [("E001", 4, 19)], message={"E001": "unexpected '->'"}),
    Case("E001-yaml-quoted", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - "conv2d(4, 3) -> -> relu"
        """), [("E001", 4, 20)]),
    Case("E001-yaml-bad-label", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - "a.b": relu
        """), [("E001", 4, 3)], message={"E001": "'a.b' is not a valid name"}),
    Case("E001-yaml-reserved-label", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - network: relu
        """), [("E001", 4, 3)]),
    Case("E001-yaml-block-header", "x.yaml", src("""
        network: n
        input: 3x8x8
        blocks:
          B x: [relu]
        layers: [relu]
        """), [("E001", 4, 3)], message={"E001": "block must look like name(param"}),
    # ------------------------------------------------------------------ E002 bad character / NUL
    Case("E002-text", "x.arch", src("""
        network n
        input 3x8x8
        conv2d(4, 3) $ relu
        """), [("E002", 3, 14)], message={"E002": "unexpected character '$'"}),
    Case("E002-text-string", "x.arch", src("""
        network n
        input 3x8x8
        relu(inplace = "abc)
        """), [("E002", 3, 16)], hint={"E002": "unterminated string"}),
    Case("E002-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - conv2d(4, $3)
        """), [("E002", 4, 13)]),
    Case("E002-text-nul", "x.arch", "network n\ninput 3x8x8\nconv2d(4,\x003)\n", [("E002", 3, 10)],
         message={"E002": "NUL byte"}),
    Case("E002-yaml-nul", "x.yaml", "network: n\ninput: 3x8x8\nlayers:\n- conv2d(4,\x003)\n", [("E002", 4, 12)],
         message={"E002": "NUL byte"}),
    # ------------------------------------------------------------------ E003 YAML syntax / duplicate key
    Case("E003-syntax", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers: [relu
        """), [("E003", 4, 1)], message={"E003": "YAML syntax error"}),
    Case("E003-duplicate-key", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers: [relu]
        network: m
        """), [("E003", 4, 1)], message={"E003": "duplicate key 'network'"}, hint={"E003": "line 1"}),
    # ------------------------------------------------------------------ E004 YAML structure / tag
    Case("E004-tag", "x.yaml", src("""
        network: n
        input: !!python/object 3x8x8
        layers: [relu]
        """), [("E004", 2, 8)], message={"E004": "tag"}),
    Case("E004-unknown-key", "x.yaml", src("""
        network: n
        input: 3x8x8
        layerz: [relu]
        """), [("E004", 3, 1)], hint={"E004": "did you mean 'layers'?"}),
    Case("E004-not-a-mapping", "x.yaml", "- relu\n- tanh\n", [("E004", 1, 1)],
         message={"E004": "expected a mapping, found a list"}),
    Case("E004-extra-key", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - concat:
          - relu
          args: x
        """), [("E004", 6, 3)], message={"E004": "unexpected key 'args'"}),
    # ------------------------------------------------------------------ E006 invalid UTF-8
    Case("E006-text", "x.arch", b"network n\ninput 3x8x8\nconv2d(4, \xff3)\n", [("E006", 3, 11)],
         message={"E006": "0xff"}),
    Case("E006-yaml", "x.yaml", b"network: n\ninput: 3x8x8\nlayers:\n- conv2d(\xc34, 3)\n", [("E006", 4, 10)]),
    # ------------------------------------------------------------------ E101 unknown op/block
    Case("E101-text", "x.arch", src("""
        network n
        input 3x8x8
        relu -> convd(4, 3)
        """), [("E101", 3, 9)], message={"E101": "unknown op or block 'convd'"},
         hint={"E101": "did you mean 'conv2d'?"}),
    Case("E101-text-block-hint", "x.arch", src("""
        network n
        input 3x8x8
        block Stem(c) { conv2d(c, 3) }
        stem(4)
        """), [("W122", 3, 7), ("E101", 4, 1)], hint={"E101": "did you mean 'Stem'?"}),
    Case("E101-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - relu
        - convd(4, 3)
        """), [("E101", 5, 3)], hint={"E101": "did you mean 'conv2d'?"}),
    Case("E101-yaml-no-hint", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - zzzq
        """), [("E101", 4, 3)], hint={"E101": "define it with 'block zzzq"}),
    # ------------------------------------------------------------------ E102 unknown keyword
    Case("E102-text", "x.arch", src("""
        network n
        input 3x8x8
        relu(inplce = true)
        """), [("E102", 3, 6)], message={"E102": "relu has no parameter 'inplce'"},
         hint={"E102": "did you mean 'inplace'?"}),
    Case("E102-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - conv2d(4, 3, strid = 2)
        """), [("E102", 4, 16)], hint={"E102": "did you mean 'stride'?"}),
    Case("E102-yaml-multiline-scalars", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - conv2d(4,
            3, strid = 2)
        - |
          relu
          -> conv2d(4, 1,
               padng = 1)
        - >-
            tanh -> relu(
              inplce = true)
        """), [("E102", 5, 8), ("E102", 9, 8), ("E102", 12, 7)]),
    Case("E102-text-block", "x.arch", src("""
        network n
        input 3x8x8
        block B(c) { conv2d(c, 1) }
        B(4, d = 1)
        """), [("E102", 4, 6)], message={"E102": "block B has no parameter 'd'"}),
    # ------------------------------------------------------------------ E103 missing argument
    Case("E103-text", "x.arch", src("""
        network n
        input 3x8x8
        relu
        conv2d(4)
        """), [("E103", 4, 1)], message={"E103": "missing required argument 'kernel'"},
         hint={"E103": "signature: conv2d(out, kernel"}, path={"E103": "1"}),
    Case("E103-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - c: conv2d(4)
        """), [("E103", 4, 6)], path={"E103": "c"}),
    Case("E103-text-block", "x.arch", src("""
        network n
        input 3x8x8
        block B(c, k) { conv2d(c, k) }
        B(4)
        """), [("E103", 4, 1)], message={"E103": "block B is missing required argument 'k'"}),
    Case("E103-text-network-param", "x.arch", src("""
        network n(classes)
        input 3x8x8
        relu
        """), [("E103", 1, 11)], hint={"E103": "-p classes="}),
    Case("E103-yaml-network-param", "x.yaml", src("""
        network: n(width, classes = 10)
        input: 3x8x8
        layers: [relu]
        """), [("E103", 1, 12)]),
    # ------------------------------------------------------------------ E104 too many positional
    Case("E104-text", "x.arch", src("""
        network n
        input 3x8x8
        relu(true, 1)
        """), [("E104", 3, 12)], message={"E104": "relu takes at most 1 positional argument, got 2"}),
    Case("E104-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - conv2d(4, 3, 1, 0, 1, 1, true, 7)
        """), [("E104", 4, 34)]),
    Case("E104-text-after-keyword", "x.arch", src("""
        network n
        input 3x8x8
        conv2d(4, stride = 2, 3)
        """), [("E104", 3, 23)], message={"E104": "positional argument after keyword"}),
    # ------------------------------------------------------------------ E105 undefined name
    Case("E105-text", "x.arch", src("""
        network n(width = 8)
        input 3x8x8
        conv2d(widht, 3)
        """), [("E105", 3, 8)], message={"E105": "undefined name 'widht'"}, hint={"E105": "did you mean 'width'?"}),
    Case("E105-yaml", "x.yaml", src("""
        network: n(width = 8)
        input: 3x8x8
        layers:
        - conv2d(widht, 3)
        """), [("E105", 4, 10)], hint={"E105": "did you mean 'width'?"}),
    Case("E105-text-block-scope", "x.arch", src("""
        network n
        input 3x8x8
        block B(c) { conv2d(c, k) }
        g: { let k = 3  B(4) }
        """), [("E105", 3, 24)]),  # blocks see their parameters and the file's globals, not the caller's lets
    # ------------------------------------------------------------------ E106 bad argument value
    Case("E106-text", "x.arch", src("""
        network n
        input 3x8x8
        conv2d(4, 3, padding = "full")
        """), [("E106", 3, 24)], message={"E106": "'padding' must be"}, path={"E106": "0"}),
    Case("E106-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - conv2d(-1, 3)
        """), [("E106", 4, 10)], message={"E106": "'out' must be a positive integer, got int -1"}),
    Case("E106-text-post", "x.arch", src("""
        network n
        input 3x8x8
        residual(post = "relu7") { relu }
        """), [("E106", 3, 1)], hint={"E106": "did you mean 'relu'?"}),
    Case("E106-text-repeat", "x.arch", src("""
        network n
        input 3x8x8
        repeat(2.5) { relu }
        """), [("E106", 3, 1)], message={"E106": "repeat count must be a non-negative integer"}),
    # ------------------------------------------------------------------ E107 duplicate name
    Case("E107-text", "x.arch", src("""
        network n
        input 3x8x8
        a: relu
        b: { a: relu }
        a: tanh
        """), [("E107", 5, 4)], message={"E107": "duplicate name 'a'"}, hint={"E107": ":3:4"}, path={"E107": "a"}),
    Case("E107-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - a: relu
        - a: tanh
        """), [("E107", 5, 6)], path={"E107": "a"}),
    Case("E107-text-aux", "x.arch", src("""
        network n
        input 3x8x8
        aux x: relu
        aux x: tanh
        relu
        """), [("E107", 4, 1)], message={"E107": "duplicate output name 'x'"}),
    # ------------------------------------------------------------------ E108 evaluation error
    Case("E108-text", "x.arch", src("""
        network n
        input 3x8x8
        conv2d(4, 6 // (2 - 2))
        """), [("E108", 3, 13)], message={"E108": "division by zero"}),
    Case("E108-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - if: 1
          then: [relu]
        """), [("E108", 4, 7)], message={"E108": "condition must be true or false"}),
    Case("E108-text-index", "x.arch", src("""
        network n
        input 3x8x8
        let sizes = [1, 2]
        conv2d(4, sizes[2])
        """), [("E108", 4, 17)], message={"E108": "list index 2 out of range"}),
    # ------------------------------------------------------------------ E111 duplicate block
    Case("E111-text", "x.arch", src("""
        network n
        input 3x8x8
        block B { relu }
        block B { tanh }
        B
        """), [("E111", 4, 7)], hint={"E111": ":3:7"}),
    Case("E111-text-shadow", "x.arch", src("""
        network n
        input 3x8x8
        block relu { tanh }
        relu
        """), [("E111", 3, 7)], message={"E111": "shadows the built-in op"}),
    Case("E111-yaml-shadow", "x.yaml", src("""
        network: n
        input: 3x8x8
        blocks:
          conv2d(c): [relu]
        layers: [relu]
        """), [("E111", 4, 3), ("W122", 4, 3)]),
    # ------------------------------------------------------------------ E112 unknown function
    Case("E112-text", "x.arch", src("""
        network n
        input 3x8x8
        conv2d(mx(2, 4), 3)
        """), [("E112", 3, 8)], hint={"E112": "did you mean 'max'?"}),
    Case("E112-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        let:
        - w: make_divisble(30, 8)
        layers: [relu]
        """), [("E112", 4, 6)], hint={"E112": "did you mean 'make_divisible'?"}),
    # ------------------------------------------------------------------ E113 duplicate declaration
    Case("E113-text-input", "x.arch", src("""
        network n
        input 3x8x8
        input 3x9x9
        relu
        """), [("E113", 3, 7)], message={"E113": "input declared twice"}),
    Case("E113-text-network", "x.arch", src("""
        network n
        network m
        """), [("E113", 2, 9)]),
    Case("E113-text-param", "x.arch", src("""
        network n(a = 1, b = 2, a = 3)
        input 3x8x8
        relu
        """), [("E113", 1, 25)], message={"E113": "parameter 'a' twice"}),
    Case("E113-yaml-param", "x.yaml", src("""
        network: n
        input: 3x8x8
        blocks:
          B(c, c = 1): [relu]
        layers: [B(1)]
        """), [("E113", 4, 8)], message={"E113": "block B declares parameter 'c' twice"}),
    Case("E113-text-global-let", "x.arch", src("""
        network n
        input 3x8x8
        let w = 4
        conv2d(w, 1)
        let w = 8
        """), [("E113", 5, 5)], message={"E113": "global 'w' is defined twice"}, hint={"E113": ":3:5"}),
    Case("E113-yaml-global-let", "x.yaml", src("""
        network: n
        input: 3x8x8
        let:
        - w: 4
        - w: 8
        layers: [relu]
        """), [("E113", 5, 3)]),
    # ------------------------------------------------------------------ E114 no/bad input
    Case("E114-text", "x.arch", src("""
        network n
        relu
        """), [("E114", 1, 9)], hint={"E114": "--input"}),
    Case("E114-yaml", "x.yaml", src("""
        network: n
        layers: [relu]
        """), [("E114", 1, 10)]),
    Case("E114-text-shape", "x.arch", src("""
        network n
        input [3, 8]
        relu
        """), [("E114", 2, 1)], message={"E114": "three positive integers"}),
    Case("E114-yaml-shape", "x.yaml", src("""
        network: n
        input: [3, 0, 8]
        layers: [relu]
        """), [("E114", 2, 8)]),
    # ------------------------------------------------------------------ E115 recursive block
    Case("E115-text", "x.arch", src("""
        network n
        input 3x8x8
        block A(c) { conv2d(c, 1) -> B(c) }
        block B(c) { A(c) }
        A(4)
        """), [("E115", 4, 14)], message={"E115": "A -> B -> A"}),
    Case("E115-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        blocks:
          A:
          - relu
          - A
        layers: [A]
        """), [("E115", 6, 5)], message={"E115": "block 'A' instantiates itself: A -> A"}),
    # ------------------------------------------------------------------ E116 aux without name
    Case("E116-text", "x.arch", src("""
        network n
        input 3x8x8
        aux(weight = 0.3) relu
        relu
        """), [("E116", 3, 1)], hint={"E116": "aux aux1:"}),
    Case("E116-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - relu
        - aux: relu
        """), [("E116", 5, 3)]),
    # ------------------------------------------------------------------ E117 empty concat / no layers
    Case("E117-text-concat", "x.arch", src("""
        network n
        input 3x8x8
        m: concat { }
        """), [("E117", 3, 4)], message={"E117": "concat has no branches"}),
    Case("E117-yaml-concat", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - concat: []
        """), [("E117", 4, 3)]),
    Case("E117-text-no-layers", "x.arch", src("""
        network n
        input 3x8x8
        if false { relu }
        """), [("E117", 1, 9)], message={"E117": "no layers"}),
    Case("E117-yaml-no-layers", "x.yaml", src("""
        network: n
        input: 3x8x8
        """), [("E117", 1, 10)]),
    Case("E117-text-no-layers-beside-other-error", "x.arch", src("""
        network n
        input 3x8x8
        let q = zz
        if false { relu }
        """), [("E117", 1, 9), ("E105", 3, 9)]),
    Case("E117-text-aux-branch", "x.arch", src("""
        network n
        input 3x8x8
        concat { relu
                 aux a: tanh }
        """), [("E117", 4, 10)], message={"E117": "aux heads cannot be concat branches"}),
    # ------------------------------------------------------------------ E118 duplicate argument
    Case("E118-text", "x.arch", src("""
        network n
        input 3x8x8
        conv2d(4, 3, kernel = 5)
        """), [("E118", 3, 14)], message={"E118": "argument 'kernel' given more than once"}),
    Case("E118-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - relu(inplace = true, inplace = false)
        """), [("E118", 4, 24)]),
    # ------------------------------------------------------------------ E119 inline misuse
    Case("E119-text-op", "x.arch", src("""
        network n
        input 3x8x8
        inline relu
        """), [("E119", 3, 8)], message={"E119": "'inline' applies to blocks"}),
    Case("E119-yaml-labelled", "x.yaml", src("""
        network: n
        input: 3x8x8
        blocks:
          B: [relu]
        layers:
        - x: inline B
        """), [("E119", 6, 13)], hint={"E119": "drop the label"}),
    # ------------------------------------------------------------------ W122 unused block
    Case("W122-text", "x.arch", src("""
        network n
        input 3x8x8
        block Unused(c) { conv2d(c, 1) }
        relu
        """), [("W122", 3, 7)], message={"W122": "never used"}),
    Case("W122-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        blocks:
          Unused: [relu]
        layers: [relu]
        """), [("W122", 4, 3)]),
    Case("W122-not-for-a-branch-not-taken", "x.arch", src("""
        network n(aux_on = false)
        input 3x8x8
        block Head { global_avgpool }
        if aux_on { aux side: Head }
        relu
        """), []),
    # ------------------------------------------------------------------ E150 limits
    Case("E150-text", "x.arch", src("""
        network n
        input 3x8x8
        relu
        repeat(1000000) { relu }
        """), [("E150", 4, 1)], message={"E150": "exceeds the limit"}),
    Case("E150-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - relu
        - repeat: 1000000
          body: [relu]
        """), [("E150", 5, 3)]),
    # ------------------------------------------------------------------ E151 value too large
    Case("E151-text", "x.arch", src("""
        network n
        input 3x8x8
        conv2d(4, 3, stride = 2 ** 80)
        """), [("E151", 3, 25)], message={"E151": "power too large"}),
    Case("E151-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        let:
        - big: 1000000000000 * 1000000000000
        layers: [relu]
        """), [("E151", 4, 22)], message={"E151": "product too large"}),
    Case("E151-text-literal", "x.arch", "network n\ninput 3x8x8\nlet x = " + "9" * 200 + "\nrelu\n",
         [("E151", 3, 9)], message={"E151": "200 digits"}),
    Case("E151-yaml-literal", "x.yaml", "network: n\ninput: 3x8x8\nlet:\n- x: " + "9" * 5000 + "\nlayers: [relu]\n",
         [("E151", 4, 6)]),
    Case("E151-text-float", "x.arch", "network n\ninput 3x8x8\nlet x = 1e400\nrelu\n", [("E151", 3, 9)]),
    # ------------------------------------------------------------------ E152 nesting too deep
    # the 201st '{' crosses the default nesting limit of 200
    Case("E152-text", "x.arch", "network n\ninput 3x8x8\n" + "{ " * 3000 + "relu" + " }" * 3000 + "\n",
         [("E152", 3, 401)], message={"E152": "'{' nested more than 200 deep"}, hint={"E152": "--limit nesting"}),
    # the document is level 1, so the 200th '[' is level 201
    Case("E152-yaml", "x.yaml", "network: n\ninput: 3x8x8\nlayers: " + "[" * 3000 + "]" * 3000 + "\n",
         [("E152", 3, 208)], message={"E152": "YAML nested more than 200 levels deep"}),
    Case("E152-text-expression", "x.arch", "network n\ninput 3x8x8\nlet x = " + " + ".join(["1"] * 300) + "\nrelu\n",
         [("E152", 3, 9 + 4 * 200 + 2)], message={"E152": "expression nested more than 200 deep"}),
    Case("E152-yaml-expression", "x.yaml", "network: n\ninput: 3x8x8\nlet:\n- x: " + "-" * 300 + "1\nlayers: [relu]\n",
         [("E152", 4, 6 + 99)], message={"E152": "expression nested more than 200 deep"}),
    # the chain is built from its end: the 201st 'if' from the end is #49 (#0-#9 take 24 columns, the rest 25)
    Case("E152-text-else-if", "x.arch", "network n(k = 0)\ninput 3x8x8\n"
         + "".join(f"if k == {i} {{ relu }} else " for i in range(250)) + "{ tanh }\n",
         [("E152", 3, 1 + 24 * 10 + 25 * 39)], message={"E152": "'else if' chain nested more than 200 deep"}),
    Case("E152-yaml-aliases", "x.yaml", "network: n\ninput: 3x8x8\nlayers:\n- a: &a [[[[[relu]]]]]\n"
         "- b: &b [[[[[*a]]]]]\n- c: [[[[[*b]]]]]\n",
         [("E152", 6, 7)], message={"E152": "once aliases are expanded"}, limits={"nesting": 14}),
    Case("E152-text-blocks", "x.arch", "network n\ninput 3x8x8\n"
         + "".join(f"block B{i} {{ B{i + 1} }}\n" for i in range(70)) + "block B70 { relu }\nB0\n",
         [("E152", 66, 13)], message={"E152": "blocks nested more than 64 deep"}),
    # ------------------------------------------------------------------ E153 tensor too large
    Case("E153-text", "x.arch", src("""
        network n
        input 3x8x8
        stem: conv2d(8, 1)
        wide: conv2d(2000000, 1) -> relu
        """), [("E153", 4, 7)], path={"E153": "wide"}, message={"E153": "has 2,000,000 channels; the limit is 1,048,576"},
         hint={"E153": "--limit channels="}),
    Case("E153-text-input", "x.arch", "network n\ninput 3x70000x8\nrelu\n", [("E153", 2, 7)],
         message={"E153": "input 3x70000x8 is larger than 65,536"}, hint={"E153": "--limit spatial="}),
    Case("E153-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - pad: conv2d(4, 1, padding = 50)
        - relu
        """), [("E153", 4, 8)], path={"E153": "pad"}, message={"E153": "4x108x108 is larger than 100"},
         limits={"spatial": 100}),
    Case("E153-yaml-features", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - flatten
        - fc: linear(10)
        """), [("E153", 4, 3)], message={"E153": "flat tensor has 192 features; the limit is 100"},
         limits={"channels": 100}),
    # ------------------------------------------------------------------ E154 parameter memory
    Case("E154-text", "x.arch", src("""
        network n
        input 1048576x1x1
        flatten
        fc: linear(1048576)
        """), [("E154", 4, 5)], path={"E154": "fc"}, message={"E154": "parameters need 4.0 TiB"},
         hint={"E154": "--limit memory_bytes="}),
    Case("E154-yaml", "x.yaml", src("""
        network: n
        input: 10x1x1
        layers:
        - flatten
        - fc: linear(10)
        """), [("E154", 5, 7)], path={"E154": "fc"},
         message={"E154": "parameters need 440 bytes (110 float32 values), more than the limit (439 bytes)"},
         limits={"memory_bytes": 439}),
    # ------------------------------------------------------------------ E160 error() in a spec
    Case("E160-text", "x.arch", src("""
        network n(depth = 7)
        input 3x8x8
        let width = if depth == 18 then 64 else error("unsupported depth")
        relu
        """), [("E160", 3, 41)], message={"E160": "unsupported depth"}),
    Case("E160-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - conv2d(error("no"), 1)
        """), [("E160", 4, 10)], message={"E160": "no"}),
    # ------------------------------------------------------------------ E301-E306 training settings
    Case("E301-text", "x.arch", src("""
        network n
        input 3x8x8
        loss crossentropy(label_smoothing = 0.1)
        flatten
        """), [("E301", 3, 1)], hint={"E301": "cross_entropy"}),
    Case("E302-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        settings:
          - init conv3d: zeros
        layers:
          - flatten
        """), [("E302", 4, 5)], hint={"E302": "conv2d"}),
    Case("E303-text", "x.arch", src("""
        network n
        input 3x8x8
        init conv2d: kaiming(mode = "fan_out")
        flatten
        """), [("E303", 3, 1)], hint={"E303": "kaiming_normal"}),
    Case("E304-text", "x.arch", src("""
        network n
        input 3x8x8
        init conv2d: normal(0, 1, 2)
        flatten
        """), [("E304", 3, 1)], message={"E304": "at most 2 positional arguments"}),
    Case("E304-yaml-unknown-param", "x.yaml", src("""
        network: n
        input: 3x8x8
        settings:
          - init linear: normal(0, 0.01, bais = 0)
        layers:
          - flatten
        """), [("E304", 4, 5)], hint={"E304": "bias"}),
    Case("E305-text", "x.arch", src("""
        network n
        input 3x8x8
        loss cross_entropy(label_smoothing = 1.5)
        flatten
        """), [("E305", 3, 1)], message={"E305": "[0, 1)"}),
    Case("E306-text", "x.arch", src("""
        network n
        input 3x8x8
        loss cross_entropy
        loss cross_entropy(label_smoothing = 0.1)
        flatten
        """), [("E306", 4, 1)], hint={"E306": "x.arch:3:1"}),
    # ------------------------------------------------------------------ E201-E210 shapes
    Case("E201-text", "x.arch", src("""
        network n
        input 3x8x8
        mix: concat {
            a: conv2d(4, 3)
            b: conv2d(4, 1)
        }
        """), [("E201", 3, 6)], message={"E201": "concat inputs differ in spatial size: branch `a` is 6x6, branch `b` is 8x8"},
         path={"E201": "mix.<concat>"}),
    Case("E201-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - concat:
          - conv2d(4, 3)
          - maxpool(2)
        """), [("E201", 4, 3)], message={"E201": "branch 1 is 6x6, branch 2 is 4x4"}, path={"E201": "<concat>"}),
    Case("E202-text", "x.arch", src("""
        network n
        input 16x8x8
        block Block(c, s) {
            residual { conv2d(c, 3, stride = s, padding = 1) }
        }
        layer: Block(32, 2)
        """), [("E202", 4, 5)], message={"E202": "body gives 32x4x4, shortcut gives 16x8x8"},
         hint={"E202": "shortcut downsample { conv2d(32, 1, stride = 2, bias = false) -> batchnorm }"},
         path={"E202": "layer.<add>"}),
    Case("E202-yaml", "x.yaml", src("""
        network: n
        input: 16x8x8
        layers:
        - r:
            residual:
            - conv2d(32, 1)
        """), [("E202", 5, 5)], hint={"E202": "shortcut downsample { conv2d(32, 1, bias = false)"}),
    Case("E204-text", "x.arch", src("""
        network n
        input 3x8x8
        relu
        conv2d(4, 11)
        """), [("E204", 4, 1)], message={"E204": "kernel 11 (effective) is larger than the padded input height 8"},
         path={"E204": "1"}),
    Case("E204-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - p: maxpool(3, dilation = 4)
        """), [("E204", 4, 6)], message={"E204": "kernel 9"}),
    Case("E205-text", "x.arch", src("""
        network n
        input 6x8x8
        conv2d(8, 3, groups = 4)
        """), [("E205", 3, 1)], message={"E205": "input channels 6 are not divisible by groups=4"}),
    Case("E205-yaml", "x.yaml", src("""
        network: n
        input: 8x8x8
        layers:
        - conv2d(6, 3, groups = 4)
        """), [("E205", 4, 3)], message={"E205": "output channels 6"}),
    Case("E206-text", "x.arch", src("""
        network n
        input 3x8x8
        global_avgpool
        fc: linear(10)
        """), [("E206", 4, 5)], hint={"E206": "flatten"}, path={"E206": "fc"}),
    Case("E206-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - flatten -> linear(10, in_features = 100)
        """), [("E206", 4, 14)], message={"E206": "its input has 192 features"}),
    Case("E207-text", "x.arch", src("""
        network n
        input 3x8x8
        flatten
        maxpool(2)
        """), [("E207", 4, 1)], message={"E207": "maxpool needs a C x H x W feature map"}),
    Case("E207-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - flatten -> conv2d(4, 1)
        """), [("E207", 4, 14)]),
    Case("E208-text", "x.arch", src("""
        network n
        input 3x8x8
        conv2d(4, 3, stride = 2, padding = "same")
        """), [("E208", 3, 1)]),
    Case("E208-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - conv2d(4, 3, stride = 2, padding = "same")
        """), [("E208", 4, 3)]),
    Case("E209-text", "x.arch", src("""
        network n
        input 3x8x8
        maxpool(3, stride = 1, padding = 2)
        """), [("E209", 3, 1)], message={"E209": "padding 2 exceeds half the kernel size 3"}),
    Case("E209-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - avgpool(2, padding = 2)
        """), [("E209", 4, 3)]),
    Case("E210-text", "x.arch", src("""
        network n
        input 3x8x8
        conv2d(8, 1) -> bn: batchnorm(num_features = 16)
        """), [("E210", 3, 21)], message={"E210": "num_features=16 but the input has 8 channels"}),
    Case("E210-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - batchnorm(num_features = 4)
        """), [("E210", 4, 3)]),
    # ------------------------------------------------------------------ E211-E215 layouts, gates, channel ops
    Case("E211-conv-on-channels-last", "x.arch", src("""
        network n
        input 3x8x8
        permute([0, 2, 3, 1]) -> conv2d(4, 3)
        """), [("E211", 3, 26)], message={"E211": "got N x 8 x 8 x 3 (channels-last)"}, hint={"E211": "permute([0, 3, 1, 2])"}),
    Case("E211-yaml-batchnorm", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - permute([0, 2, 3, 1])
        - bn: batchnorm
        """), [("E211", 5, 7)], path={"E211": "bn"}),
    Case("E211-add-layouts-differ", "x.arch", src("""
        network n
        input 8x8x8
        residual { permute([0, 2, 3, 1]) }
        """), [("E202", 3, 1)], hint={"E202": "channels-last: permute it back"}),
    Case("E212-gate-does-not-broadcast", "x.arch", src("""
        network n
        input 8x16x16
        se: gate { global_avgpool -> conv2d(4, 1) -> sigmoid }
        """), [("E212", 3, 5)], message={"E212": "gate gives 4x1x1, which does not broadcast to its input 8x16x16"},
        hint={"E212": "8x1x1"}),
    Case("E212-yaml", "x.yaml", src("""
        network: n
        input: 8x16x16
        layers:
        - gate:
          - conv2d(8, 3)
        """), [("E212", 4, 3)]),
    Case("E117-empty-gate", "x.arch", src("""
        network n
        input 8x16x16
        gate { }
        """), [("E117", 3, 1)], message={"E117": "gate body is empty"}),
    Case("E213-not-a-permutation", "x.arch", src("""
        network n
        input 3x8x8
        permute([0, 2, 2, 1])
        """), [("E213", 3, 1)], message={"E213": "not a permutation"}),
    Case("E213-channels-in-the-middle", "x.arch", src("""
        network n
        input 3x8x8
        permute([0, 2, 1, 3])
        """), [("E213", 3, 1)], message={"E213": "in the middle"}),
    Case("E106-permute-not-a-list", "x.arch", src("""
        network n
        input 3x8x8
        permute(2)
        """), [("E106", 3, 9)]),
    Case("E214-chunk-index", "x.arch", src("""
        network n
        input 8x8x8
        chunk(2, 2)
        """), [("E214", 3, 1)], message={"E214": "chunk index 2 is out of range"}),
    Case("E214-split-sizes", "x.arch", src("""
        network n
        input 8x8x8
        split([3, 4], 0)
        """), [("E214", 3, 1)], message={"E214": "add up to 7, not the input's 8 channels"}),
    Case("E214-shuffle-groups", "x.yaml", src("""
        network: n
        input: 6x8x8
        layers:
        - channel_shuffle(4)
        """), [("E214", 4, 3)]),
    Case("E215-groupnorm", "x.arch", src("""
        network n
        input 6x8x8
        gn: groupnorm(4)
        """), [("E215", 3, 5)], message={"E215": "groups=4 does not divide the 6 channels"}),
    Case("E206-linear-on-feature-map", "x.arch", src("""
        network n
        input 6x8x8
        linear(4)
        """), [("E206", 3, 1)], hint={"E206": "permute([0, 2, 3, 1])"}),
    Case("E106-drop-path-probability", "x.arch", src("""
        network n
        input 6x8x8
        residual { conv2d(6, 1) -> drop_path(1.5) }
        """), [("E106", 3, 38)]),
    Case("E001-keyword-label-hint", "x.arch", src("""
        network n
        input 3x8x8
        repeat: relu
        """), [("E001", 3, 7)], hint={"E001": "`repeat`"}),
    Case("E004-yaml-keyword-with-a-value", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - gate: relu
        """), [("E004", 4, 9)], hint={"E004": "'`gate`'"}),
    Case("E207-pad-channels-flat", "x.arch", src("""
        network n
        input 3x8x8
        flatten -> pad_channels(2)
        """), [("E207", 3, 12)]),
    Case("E001-yaml-keyword-label-hint", "x.yaml", src("""
        network: n
        input: 3x8x8
        layers:
        - block: relu
        """), [("E001", 4, 3)], hint={"E001": "'`block`'"}),
    # budgets (archdsl/budget.py; every case in tests/test_budget.py)
    Case("E401-budget-text", "x.arch", src("""
        network n
        input 3x8x8
        budget(depth <= 0, params <= 10)
        conv2d(4, 3) -> relu
        """), [("E401", 3, 8), ("E401", 3, 20)], message={"E401": "params 112 exceed the budget 10 by 102 (11.20x)"}),
    Case("E401-budget-yaml", "x.yaml", src("""
        network: n
        input: 3x8x8
        budget: {params: 0.01K}
        layers: ["conv2d(4, 3)"]
        """), [("E401", 3, 10)], message={"E401": "params 112 exceed the budget 0.01K by 102"}),
    Case("E402-budget-figure", "x.arch", src("""
        network n
        input 3x8x8
        budget(param <= 5M)
        relu
        """), [("E402", 3, 8)], hint={"E402": "did you mean 'params'?"}),
    Case("E001-budget-yaml-comparison", "x.yaml", src("""
        network: n
        input: 3x8x8
        budget: {depth: '>= 2'}
        layers: [relu]
        """), [("E001", 3, 18)]),
    Case("E402-budget-comparison", "x.arch", src("""
        network n
        input 3x8x8
        budget(depth >= 2)
        relu
        """), [("E402", 3, 14)], hint={"E402": "write 'depth <= ...'"}),
    Case("E403-budget-unit", "x.arch", src("""
        network n
        input 3x8x8
        budget(macs <= 2.5Gi)
        relu
        """), [("E403", 3, 19)], message={"E403": "unknown unit 'Gi'"}),
    Case("E403-budget-yaml-negative", "x.yaml", src("""
        network: n
        input: 3x8x8
        budget: {macs: -5}
        layers: [relu]
        """), [("E403", 3, 16)]),
    Case("E404-budget-twice", "x.arch", src("""
        network n
        input 3x8x8
        budget(depth <= 5)
        budget(depth <= 6)
        relu
        """), [("E404", 4, 8)], hint={"E404": "first given at "}),
]

def run_case(tmp_path: Path, case: Case, **kw) -> list[Diagnostic]:
    path = tmp_path / case.file
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_text(case.text, encoding="utf-8")
    with limits.scoped(case.limits):
        return analyze(path, **kw).diags.sorted()


def triples(diags: list[Diagnostic]) -> list[tuple[str, int, int]]:
    return [(d.code, d.loc.line, d.loc.col) for d in diags]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_diagnostic_code_and_location(tmp_path: Path, case: Case) -> None:
    diags = run_case(tmp_path, case)
    assert triples(diags) == case.expect, "\n".join(f"{d.loc}: {d.code} {d.message} | {d.hint}" for d in diags)
    by_code = {d.code: d for d in diags}
    for d in diags:
        assert d.loc.file == str(tmp_path / case.file)
    for code, text in case.message.items():
        assert text in by_code[code].message
    for code, text in case.hint.items():
        assert text in by_code[code].hint
    for code, path in case.path.items():
        assert by_code[code].path == path
    for d in diags:
        assert d.severity == ("warning" if d.code.startswith("W") else "error")


# ---------------------------------------------------------------------------------------- files


@pytest.mark.parametrize("suffix", [".arch", ".yaml"])
def test_E005_missing_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"missing{suffix}"
    diags = analyze(path).diags.sorted()
    assert [(d.code, d.loc) for d in diags] == [("E005", Loc(str(path), 1, 1))]
    assert "cannot read file" in diags[0].message


def test_E005_directory(tmp_path: Path) -> None:
    d = tmp_path / "dir.arch"
    d.mkdir()
    diags = analyze(d).diags.sorted()
    assert [(x.code, x.loc) for x in diags] == [("E005", Loc(str(d), 1, 1))]
    assert "directory" in diags[0].message


@pytest.mark.parametrize("suffix", [".arch", ".yaml"])
def test_E005_too_large(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"big{suffix}"
    path.write_text("# " + "x" * 100 + "\n")
    with limits.scoped({"file_bytes": 64}):
        diags = analyze(path).diags.sorted()
    assert [(x.code, x.loc) for x in diags] == [("E005", Loc(str(path), 1, 1))]
    assert "the limit is 64" in diags[0].message


def test_E005_default_limit_is_128_KiB(tmp_path: Path) -> None:
    path = tmp_path / "huge.arch"
    path.write_bytes(b"#" * (128 * 1024 + 1))
    assert triples(analyze(path).diags.sorted()) == [("E005", 1, 1)]


def test_E005_convert_cannot_write(tmp_path: Path) -> None:
    spec = tmp_path / "x.arch"
    spec.write_text("network n\ninput 3x8x8\nrelu\n")
    err = io.StringIO()
    with redirect_stderr(err):
        rc = main(["convert", str(spec), "-o", str(tmp_path / "no" / "such" / "dir" / "x.yaml")])
    assert rc == 1
    assert "error[E005]: cannot write" in err.getvalue()


# ---------------------------------------------------------------------------------------- imports


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(src(text), encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".arch", ".yaml"])
def test_E109_import_not_found(tmp_path: Path, suffix: str) -> None:
    if suffix == ".arch":
        spec = _write(tmp_path / "m.arch", """
            network n
            input 3x8x8
            use "lib/nope.arch"
            relu
            """)
        loc = (3, 5)
    else:
        spec = _write(tmp_path / "m.yaml", """
            network: n
            input: 3x8x8
            use:
            - lib/nope.arch
            layers: [relu]
            """)
        loc = (4, 3)
    diags = analyze(spec).diags.sorted()
    assert triples(diags) == [("E109", *loc)]
    assert "imported file not found: 'lib/nope.arch'" in diags[0].message
    assert str(tmp_path) in diags[0].hint


def test_E109_import_escapes_directory(tmp_path: Path) -> None:
    _write(tmp_path / "outside" / "lib.arch", "block B { relu }\n")
    spec = _write(tmp_path / "proj" / "m.arch", """
        network n
        input 3x8x8
        use "../outside/lib.arch"
        relu
        """)
    diags = analyze(spec).diags.sorted()
    assert triples(diags) == [("E109", 3, 5)]
    assert "escapes the spec's directory" in diags[0].message
    assert "--search-path" in diags[0].hint
    # ... and a search path makes it legal
    assert analyze(spec, search_paths=(str(tmp_path / "outside"),)).diags.sorted() == []


def test_E109_absolute_import(tmp_path: Path) -> None:
    lib = _write(tmp_path / "lib.arch", "block B { relu }\n")
    spec = tmp_path / "m.yaml"
    spec.write_text(f"network: n\ninput: 3x8x8\nuse: ['{lib}']\nlayers: [B]\n")
    diags = analyze(spec).diags.sorted()
    # the unresolved import leaves B unknown: that follows, at the call
    assert triples(diags) == [("E109", 3, 7), ("E101", 4, 10)]
    assert "must be relative" in diags[0].message


@pytest.mark.parametrize("suffix", [".arch", ".yaml"])
def test_E110_import_cycle(tmp_path: Path, suffix: str) -> None:
    _write(tmp_path / "lib" / "a.arch", """
        use "b.arch"
        block A { relu }
        """)
    _write(tmp_path / "lib" / "b.arch", """
        # b imports a back
        use "a.arch"
        block Bb { tanh }
        """)
    if suffix == ".arch":
        spec = _write(tmp_path / "m.arch", 'network n\ninput 3x8x8\nuse "lib/a.arch"\nA -> Bb\n')
    else:
        spec = _write(tmp_path / "m.yaml", "network: n\ninput: 3x8x8\nuse: [lib/a.arch]\nlayers: [A, Bb]\n")
    diags = analyze(spec).diags.sorted()
    assert len(diags) == 1
    d = diags[0]
    assert (d.code, d.loc.line, d.loc.col) == ("E110", 2, 5)
    assert d.loc.file.endswith("b.arch")
    assert d.message == "import cycle: a.arch -> b.arch -> a.arch"


def test_E110_self_import(tmp_path: Path) -> None:
    spec = _write(tmp_path / "m.arch", 'network n\ninput 3x8x8\nuse "m.arch"\nrelu\n')
    diags = analyze(spec).diags.sorted()
    assert triples(diags) == [("E110", 3, 5)]
    assert diags[0].message == "import cycle: m.arch -> m.arch"


def test_E111_duplicate_block_across_import_yaml(tmp_path: Path) -> None:
    _write(tmp_path / "lib.arch", "block B { relu }\n")
    spec = _write(tmp_path / "m.yaml", """
        network: n
        input: 3x8x8
        use: [lib.arch]
        blocks:
          B: [tanh]
        layers: [B]
        """)
    diags = analyze(spec).diags.sorted()
    assert triples(diags) == [("E111", 5, 3)]
    assert "lib.arch:1:7" in diags[0].hint


def test_E152_imports_too_deep(tmp_path: Path) -> None:
    for i in range(20):
        _write(tmp_path / f"l{i}.arch", f'use "l{i + 1}.arch"\nblock B{i} {{ relu }}\n')
    _write(tmp_path / "l20.arch", "block B20 { relu }\n")
    spec = _write(tmp_path / "m.arch", 'network n\ninput 3x8x8\nuse "l0.arch"\nB0\n')
    diags = analyze(spec).diags.sorted()
    assert [d.code for d in diags] == ["E152"]
    assert "imports nested more than 16 deep" in diags[0].message
    assert (diags[0].loc.line, diags[0].loc.col) == (1, 5)


def test_E150_yaml_alias_bomb(tmp_path: Path) -> None:
    lines = ["network: n", "input: 3x8x8", "layers:", "- g0: &a0 [relu, relu, relu, relu, relu, relu, relu, relu]"]
    for i in range(1, 8):
        lines.append(f"- g{i}: &a{i} [" + ", ".join([f"{{x: *a{i - 1}}}"] * 8) + "]")
    spec = tmp_path / "bomb.yaml"
    spec.write_text("\n".join(lines) + "\n")
    with limits.scoped({"yaml_nodes": 5000}):
        diags = analyze(spec).diags.sorted()
    # g3's list is the first node whose expansion (8**3 relus and their mappings) passes 5,000
    assert triples(diags) == [("E150", 7, 7)]
    assert "more than 5,000 nodes" in diags[0].message
    assert "aliases" in diags[0].hint


# ---------------------------------------------------------------------------------------- overrides


def test_E113_unknown_override(tmp_path: Path) -> None:
    spec = tmp_path / "x.arch"
    spec.write_text("network n(num_classes = 10)\ninput 3x8x8\nrelu\n")
    diags = analyze(spec, overrides=parse_overrides(["num_clases=5"])).diags.sorted()
    assert [(d.code, d.loc) for d in diags] == [("E113", Loc("<command line>", 1, 1))]
    assert diags[0].hint == "did you mean 'num_classes'?"


@pytest.mark.parametrize("pair, code, col", [
    ("k", "E113", 1),            # no '='
    ("1k=3", "E113", 1),         # not an identifier
    ("k=1+", "E001", 5),         # syntax error in the value, located just after the last token
    ("k=q", "E105", 3),          # names are not defined on the command line
    ("k=2**200", "E151", 4),
])
def test_bad_override_value(pair: str, code: str, col: int) -> None:
    from archdsl.diagnostics import DiagnosticError

    with pytest.raises(DiagnosticError) as info:
        parse_overrides([pair])
    d = info.value.diagnostic
    assert (d.code, d.loc) == (code, Loc("<command line>", 1, col))


def test_E203_cannot_follow_a_passing_E204_guard() -> None:
    """E203 (output size <= 0) is a defensive check: whenever the padded input holds the (dilated)
    kernel, PyTorch's formulas give at least 1, so conv/pool report E204 first.  Exhaustively over a
    small grid, including ceil_mode's dropped last window, no rule reaches E203."""
    from archdsl.ops import ShapeError, _conv_out, _pool_out

    for size in range(0, 9):
        for k in range(1, 6):
            for s in range(1, 5):
                for p in range(0, k // 2 + 1):
                    for d in (1, 2):
                        for ceil in (False, True):
                            for rule, rargs in ((_conv_out, (size, k, s, p, d, "height", "conv2d")),
                                                (_pool_out, (size, k, s, p, d, ceil, "height", "maxpool"))):
                                try:
                                    assert rule(*rargs) >= 1
                                except ShapeError as exc:
                                    assert exc.code != "E203" and exc.code == "E204", exc.code


# ---------------------------------------------------------------------------------------- hand-built graphs


def _hand_graph() -> Graph:
    g = Graph("hand", (3, 8, 8))
    loc = Loc("hand.arch", 1, 1)
    g.input_node = g.add_node("input", {}, "@input", loc, "", [])
    return g


def test_E120_cycle_in_hand_built_graph() -> None:
    g = _hand_graph()
    a = g.add_node("relu", {"inplace": False}, "a", Loc("hand.arch", 2, 3), "", [g.input_node])
    b = g.add_node("relu", {"inplace": False}, "b", Loc("hand.arch", 3, 5), "", [a])
    g.g.add_edge(b, a, index=1)  # b feeds a: a cycle the language cannot write
    g.outputs["main"] = g.add_node("output", {"name": "main"}, "@output", Loc("hand.arch", 4, 1), "", [b])
    bag = DiagnosticBag()
    validate_graph(g, bag)
    diags = bag.sorted()
    assert len(diags) == 1
    d = diags[0]
    assert d.code == "E120" and d.is_error
    assert (d.loc.line, d.loc.col) in {(2, 3), (3, 5)}
    assert "a -> b -> a" in d.message or "b -> a -> b" in d.message


def test_W121_unused_node_in_hand_built_graph() -> None:
    g = _hand_graph()
    a = g.add_node("relu", {"inplace": False}, "a", Loc("hand.arch", 2, 3), "", [g.input_node])
    g.add_node("tanh", {}, "dead", Loc("hand.arch", 3, 7), "", [g.input_node])
    g.outputs["main"] = g.add_node("output", {"name": "main"}, "@output", Loc("hand.arch", 4, 1), "", [a])
    bag = DiagnosticBag()
    validate_graph(g, bag)
    diags = bag.sorted()
    assert [(d.code, d.severity, d.loc.line, d.loc.col, d.path) for d in diags] == [
        ("W121", "warning", 3, 7, "dead")]
    assert "does not contribute to any output" in diags[0].message


def test_render_limits_are_located_diagnostics(tmp_path: Path, monkeypatch, capsys) -> None:
    # the two render limits listed by `archdsl limits` (E505 before dot runs, E502 when dot hangs)
    import subprocess

    from archdsl.backends import render as R
    from archdsl.cli import main

    spec = ROOT / "specs" / "resnet18.arch"
    assert main(["render", "--limit", "render_nodes=20", str(spec), "-o", str(tmp_path / "r.svg")]) == 1
    err = capsys.readouterr().err
    assert "E505" in err and "resnet18.arch:2:9: error[E505]: the diagram would have 71 nodes" in err

    def hang(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs.get("timeout"))

    monkeypatch.setattr(R, "find_dot", lambda: "/usr/bin/dot")
    monkeypatch.setattr(R.subprocess, "run", hang)
    assert main(["render", "--limit", "dot_seconds=3", str(spec), "-o", str(tmp_path / "r.svg")]) == 1
    err = capsys.readouterr().err
    assert "E502" in err and "error[E502]: Graphviz 'dot' did not finish within 3 s" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------- coverage of codes

CORE_SOURCES = [p for p in (ROOT / "archdsl").rglob("*.py")
                if not {"backends", "rules"} & set(p.relative_to(ROOT / "archdsl").parts)]
UNREACHABLE = {"E199"}  # internal "unexpected AST node": a programming error, not a spec error


def _tested_codes() -> set[str]:
    # archdsl train's codes (E36x data, E37x loop) are tested beside it, in tests/test_train_*.py
    files = [Path(__file__), *Path(__file__).parent.glob("test_train_*.py")]
    return set(re.findall(r'"([EW]\d{3})"', "".join(p.read_text(encoding="utf-8") for p in files)))


def test_every_core_code_has_a_test() -> None:
    used = set()
    for p in CORE_SOURCES:
        used |= set(re.findall(r'"([EW]\d{3})"', p.read_text(encoding="utf-8")))
    missing = sorted(used - UNREACHABLE - _tested_codes())
    assert not missing, f"diagnostic codes without a test in {Path(__file__).name}: {missing}"


def test_every_core_code_is_documented() -> None:
    doc = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    used = set()
    for p in CORE_SOURCES:
        used |= set(re.findall(r'"([EW]\d{3})"', p.read_text(encoding="utf-8")))
    missing = sorted(c for c in used - UNREACHABLE if f"| {c} |" not in doc)
    assert not missing, f"codes missing from docs/diagnostics.md: {missing}"


# ---------------------------------------------------------------------------------------- collected together


def test_independent_errors_are_all_reported(tmp_path: Path) -> None:
    spec = tmp_path / "many.arch"
    spec.write_text(src("""
        network n(width = 8)
        input 3x32x32
        aux side: { c: conv2d(4, 3, groups = 2) }
        aux side2: linear(10)
        mix: concat {
            x: conv2d(4, 3)
            y: conv2d(4, 1)
        }
        stem: conv2d(widht, 3)
        a: relu(inplce = true)
        b: convd(4, 3) -> maxpool(2, padding = -1)
        fc: linear(10)
        """))
    diags = analyze(spec).diags.sorted()
    # a shape error silences only its own downstream nodes, so errors on independent paths (aux
    # heads, main flow) are all reported; elaboration errors are all reported too, each failed
    # layer (also one in the middle of a chain) standing for an unknown shape from there on
    assert triples(diags) == [("E205", 3, 16), ("E206", 4, 12), ("E201", 5, 6), ("E105", 9, 14), ("E102", 10, 9),
                              ("E101", 11, 4), ("E106", 11, 40)]


def test_independent_errors_are_all_reported_yaml(tmp_path: Path) -> None:
    spec = tmp_path / "many.yaml"
    spec.write_text(src("""
        network: n(width = 8)
        input: 3x32x32
        blocks:
          B(c):
          - conv2d(c, 1, strid = 2)
        layers:
        - c: conv2d(4, 3, groups = 3)
        - stem: conv2d(widht, 3)
        - B(4)
        - conv2d(8, 1) -> batchnorm(num_features = 4)
        """))
    diags = analyze(spec).diags.sorted()
    assert triples(diags) == [("E102", 5, 18), ("E205", 7, 6), ("E105", 8, 16)]


def test_errors_in_several_files_are_all_reported(tmp_path: Path) -> None:
    a = tmp_path / "a.arch"
    a.write_text("network a\ninput 3x8x8\nconvd(4, 3)\n")
    b = tmp_path / "b.yaml"
    b.write_text("network: b\ninput: 3x8x8\nlayers:\n- linear(4)\n")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["check", str(a), str(b), "--format", "json"])
    assert rc == 1
    doc = json.loads(out.getvalue())
    assert [(d["file"], d["code"], d["line"], d["column"]) for d in doc["diagnostics"]] == [
        (str(a), "E101", 3, 1), (str(b), "E206", 4, 3)]


# ---------------------------------------------------------------------------------------- JSON and exit codes


def test_check_json_structure(tmp_path: Path) -> None:
    spec = tmp_path / "x.arch"
    spec.write_text("network n\ninput 16x8x8\nblock U { relu }\nr: residual { conv2d(32, 1) }\n")
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        rc = main(["check", str(spec), "--format", "json"])
    assert rc == 1
    doc = json.loads(out.getvalue())
    assert list(doc) == ["diagnostics"]
    keys = ["code", "severity", "message", "file", "line", "column", "path", "hint"]
    for d in doc["diagnostics"]:
        assert list(d)[: len(keys)] == keys
        assert isinstance(d["line"], int) and isinstance(d["column"], int)
    assert [(d["code"], d["severity"], d["line"], d["column"], d["path"]) for d in doc["diagnostics"]] == [
        ("W122", "warning", 3, 7, ""), ("E202", "error", 4, 4, "r.<add>")]
    assert doc["diagnostics"][1]["file"] == str(spec)
    assert "projection shortcut" in doc["diagnostics"][1]["hint"]


def test_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.arch"
    good.write_text("network n\ninput 3x8x8\nrelu\n")
    warn = tmp_path / "warn.arch"
    warn.write_text("network n\ninput 3x8x8\nblock U { relu }\nrelu\n")
    bad = tmp_path / "bad.arch"
    bad.write_text("network n\ninput 3x8x8\nrelu(\n")
    sink = io.StringIO()
    with redirect_stdout(sink), redirect_stderr(sink):
        assert main(["check", str(good)]) == 0
        assert main(["check", str(warn)]) == 0        # warnings do not fail
        assert main(["check", str(bad)]) == 1
        assert main(["check", str(good), str(bad)]) == 1
        assert main(["check", str(good), "--format", "json"]) == 0
        for argv in (["check"], ["check", str(good), "--format", "xml"], ["nosuchcommand"],
                     ["check", str(good), "--input", "3x8"], ["summary", str(good), "--depth", "x"]):
            with pytest.raises(SystemExit) as info:
                main(argv)
            assert info.value.code == 2


def test_clean_check_json_is_empty_list(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("network: n\ninput: 3x8x8\nlayers: [relu]\n")
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["check", str(good), "--format", "json"]) == 0
    assert json.loads(out.getvalue()) == {"diagnostics": []}


def test_format_json_helper_round_trips() -> None:
    d = Diagnostic("E201", "m", Loc("f.arch", 3, 4), path="a.<concat>", hint="h")
    assert json.loads(format_json([d])) == {"diagnostics": [{
        "code": "E201", "severity": "error", "message": "m", "file": "f.arch", "line": 3, "column": 4,
        "path": "a.<concat>", "hint": "h"}]}


# ---------------------------------------------------------------------------------------- text rendering (golden)

GOLDEN_SPECS = {
    "concat_mismatch.arch": src("""
        # two branches with different strides
        network broken(width = 16)
        input 3x32x32
        stem: conv2d(width, 3, padding = 1)
        mixed: concat {
            a: conv2d(8, 1)
            b: conv2d(8, 3, stride = 2, padding = 1)
        }
        """),
    "residual_mismatch.arch": src("""
        network broken
        input 64x56x56
        block Basic(planes, stride = 1) {
        \tresidual(post = "relu") {
        \t\tconv1: conv2d(planes, 3, stride = stride, padding = 1, bias = false)
        \t\tbn1: batchnorm
        \t}
        }
        layer2: Basic(128, stride = 2)
        """),
    "many_errors.arch": src("""
        network broken(num_classes = 10)
        input 3x32x32
        conv1: conv2d(64, 3, padng = 1)
        layer: repeat(2) as i { conv2d(64, 3, padding = 1, stride = if i == 0 then 2 else one) }
        pool: maxpol(2)
        fc: linear(num_clases)
        """),
    "syntax.arch": src("""
        network broken
        input 3x32x32
        conv1: conv2d(64, 3 padding = 1)
        """),
    "yaml_errors.yaml": src("""
        network: broken(num_classes = 10)
        input: 3x32x32
        blocks:
          Unused(c): [relu]
        layers:
        - conv1: "conv2d(64, 3, strde = 2, padding = 1)"
        - global_avgpool
        - fc: linear(num_classes)
        """),
    # issue 12, root cause first: a failed layer's output shape is unknown, so the residual's add
    # is not checked (no E202 "add a projection shortcut" derived from the missing kernel)
    "root_cause_missing_kernel.arch": src("""
        network broken
        input 8x32x32
        r: residual {
            conv1: conv2d(16, padding = 1)
            bn1: batchnorm
            relu
            conv2: conv2d(16, 3, padding = 1)
        }
        fc: linear(10)
        """),
    "root_cause_bad_kernel.arch": src("""
        network broken
        input 64x56x56
        block Basic(planes, stride = 1) {
            residual(post = "relu") {
                conv1: conv2d(planes, [3, 3, 3], stride = stride, padding = 1, bias = false)
                bn1: batchnorm
                relu
                conv2: conv2d(planes, 3, padding = 1, bias = false)
                bn2: batchnorm
            } shortcut downsample if stride != 1 { conv2d(planes, 1, stride = stride, bias = false) -> batchnorm }
        }
        layer2: Basic(128, stride = 2)
        """),
    # one mistake in a block used 9 times: one diagnostic, the instances in one note
    "block_instances.arch": src("""
        network broken
        input 16x8x8
        block B {
            conv1: conv2d(16, 3, padding = 1)
            bn1: batchnrom
            relu
        }
        layer1: repeat(9) { B }
        layer2: B
        """),
    # the branch that differs is named, with its size, and pointed at
    "concat_branches.arch": src("""
        network broken
        input 3x32x32
        mix: concat {
            a: conv2d(8, 1)
            b: avgpool(3, stride = 2, padding = 1) -> b2: conv2d(8, 1)
            conv2d(8, 3, padding = 1)
        }
        """),
    "residual_projection.arch": src("""
        network broken
        input 64x56x56
        layer: residual {
            conv1: conv2d(128, 3, padding = 1)
            relu
        } shortcut downsample { conv2d(128, 1, stride = 2) }
        """),
    "tuple_kernel.arch": src("""
        network broken
        input 3x32x32
        conv1: conv2d(16, (3, 3))
        """),
    "tuple_kernel_yaml.yaml": src("""
        network: broken
        input: 3x32x32
        let:
        - pad: (1, 1)
        layers:
        - conv1: conv2d(16, 3, padding = pad)
        """),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_SPECS))
def test_text_rendering_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path(name).write_text(GOLDEN_SPECS[name], encoding="utf-8")
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        rc = main(["check", name])
    assert rc == 1
    text = err.getvalue()
    assert "Traceback" not in text
    head = re.compile(r"^[\w./]+:\d+:\d+: (error|warning)\[[EW]\d{3}\]: .+$")
    assert any(head.match(line) for line in text.splitlines())
    assert_golden(f"diagnostics/{Path(name).stem}.txt", text)


def test_file_level_errors_are_located_at_1_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a missing file, a directory and an empty file: positions are 1-based, never nope.arch:0:0
    monkeypatch.chdir(tmp_path)
    Path("dir.arch").mkdir()
    Path("empty.arch").write_text("", encoding="utf-8")
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        rc = main(["check", "nope.arch", "dir.arch", "empty.arch"])
    assert rc == 1
    assert ":0:0" not in err.getvalue()
    assert_golden("diagnostics/file_level.txt", err.getvalue())


def test_a_library_that_does_not_parse_is_listed_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the unknown block in the importing file is a consequence of the library's syntax error
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "zlib" / "blocks.arch", """
        block B(c) {
            conv2d(c, 3 padding = 1)
        }
        """)
    _write(tmp_path / "a.arch", """
        network broken
        input 3x8x8
        use "zlib/blocks.arch"
        b: B(4)
        """)
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        assert main(["check", "a.arch"]) == 1
    assert_golden("diagnostics/library_syntax_first.txt", err.getvalue())


def test_block_instances_are_one_diagnostic(tmp_path: Path) -> None:
    spec = tmp_path / "x.arch"
    spec.write_text(GOLDEN_SPECS["block_instances.arch"], encoding="utf-8")
    diags = analyze(spec).diags.sorted()
    assert triples(diags) == [("E101", 5, 10)]
    assert diags[0].instances == tuple(f"layer1.{i}" for i in range(9)) + ("layer2",)
    assert diags[0].instance_note() == "in 10 instances: layer1.0, layer1.1, layer1.2 (and 7 more)"
    doc = json.loads(format_json(diags))["diagnostics"][0]
    assert doc["path"] == "layer1.0" and doc["instances"] == list(diags[0].instances)
    assert doc["notes"] == [diags[0].instance_note()]   # the differing "instantiated at" notes dropped


def test_concat_branches_json_has_the_secondary_location(tmp_path: Path) -> None:
    spec = tmp_path / "x.arch"
    spec.write_text(GOLDEN_SPECS["concat_branches.arch"], encoding="utf-8")
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        assert main(["check", str(spec), "--format", "json"]) == 1
    (d,) = json.loads(out.getvalue())["diagnostics"]
    assert (d["code"], d["line"], d["column"]) == ("E201", 3, 6)
    assert d["message"] == "concat inputs differ in spatial size: branch `b2` is 16x16, branches `a`, 3 are 32x32"
    # at the pool that halves the branch, not at the conv that ends it
    assert d["labels"] == [{"message": "branch `b2` is 16x16", "file": str(spec), "line": 5, "column": 8}]


def test_merged_diagnostics_keep_distinct_messages_apart() -> None:
    bag = DiagnosticBag()
    loc = Loc("f.arch", 3, 4)
    bag.add(Diagnostic("E106", "bad", loc, path="a.0", notes=("in B(...) instantiated at f.arch:9:1",)))
    bag.add(Diagnostic("E106", "bad", loc, path="a.1", notes=("in B(...) instantiated at f.arch:10:1",)))
    bag.add(Diagnostic("E106", "bad", loc, path="a.1"))               # the same instance again
    bag.add(Diagnostic("E106", "other", loc, path="a.2"))             # another message: its own
    bag.add(Diagnostic("W122", "bad", loc, severity="warning", path="a.3"))
    items = bag.sorted()
    assert [(d.code, d.message, d.instances) for d in items] == [
        ("E106", "bad", ("a.0", "a.1")), ("E106", "other", ()), ("W122", "bad", ())]
    assert items[0].notes == () and items[0].path == "a.0"


def test_format_text_layout() -> None:
    sources = SourceCache()
    sources.register("f.arch", "network n\n\tmix: concat {\n")
    d = Diagnostic("E201", "concat inputs differ in spatial size: 17x17 vs 8x8", Loc("f.arch", 2, 7),
                   path="mix.<concat>", hint="give every branch the same stride")
    assert format_text(d, sources) == (
        "f.arch:2:7: error[E201]: concat inputs differ in spatial size: 17x17 vs 8x8\n"
        "    \tmix: concat {\n"
        "    \t     ^\n"
        "    = in: mix.<concat>\n"
        "    = hint: give every branch the same stride")
    # unknown source: the head line and the hint only
    bare = Diagnostic("E005", "cannot read file", Loc("nope.arch", 1, 1))
    assert format_text(bare, sources) == "nope.arch:1:1: error[E005]: cannot read file"


def test_lsp_without_pygls_is_e345() -> None:
    # the subprocess form (pygls hidden from a real `archdsl lsp`) is in tests/test_lsp.py
    from archdsl.lsp.cli import missing_pygls

    d = missing_pygls(ImportError("No module named 'pygls'", name="pygls"))
    assert (d.code, d.loc, d.hint) == ("E345", Loc("<command line>", 1, 1), "pip install 'archdsl[lsp]'")
    assert format_text(d).startswith("<command line>:1:1: error[E345]: archdsl lsp needs pygls")


def test_budget_that_cannot_be_measured_is_w405(tmp_path: Path) -> None:
    # a shape left unknown (as after a layer whose shape could not be inferred); the symbolic-size
    # case is in tests/test_budget.py
    from archdsl.budget import Bound, check_budgets

    spec = tmp_path / "n.arch"
    spec.write_text("network n\ninput 3x8x8\nconv2d(4, 3)\n")
    graph = analyze(spec).graph
    graph.node(graph.main_output)["shape"] = None
    (d,) = check_budgets(graph, [Bound("macs", 1, "1", Loc(str(spec), 3, 8))])
    assert (d.code, d.severity, d.loc.line, d.loc.col) == ("W405", "warning", 3, 8)
    assert d.hint == "pass a concrete input size, e.g. --input 3x224x224"


# ---------------------------------------------------------------------------------------- symbolic input sizes


@pytest.mark.parametrize("ext, text, line, col", [
    (".arch", "network n\ninput 3xHxW\nrelu\nconcat {\n  conv2d(4, 1)\n  conv2d(4, 3)\n}\n", 4, 1),
    (".yaml", "network: n\ninput: 3xHxW\nlayers:\n  - relu\n  - concat:\n    - conv2d(4, 1)\n    - conv2d(4, 3)\n",
     5, 5),
])
def test_e216_branches_that_agree_for_no_size(tmp_path: Path, ext: str, text: str, line: int, col: int) -> None:
    spec = tmp_path / f"n{ext}"
    spec.write_text(text)
    res = analyze(spec)
    errs = [d for d in res.diags if d.is_error]
    assert {(d.code, d.loc.line, d.loc.col) for d in errs} == {("E216", line, col)}
