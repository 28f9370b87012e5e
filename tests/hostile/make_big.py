"""Big hostile specs, generated when the tests run so that the committed corpus stays small.

``tests/test_hostile.py`` writes them into a temporary directory and checks each like a corpus
file.  Run ``python tests/hostile/make_big.py OUTDIR`` to write them for a manual look.

Each case is a set of files (the first is the one to check) and the expected primary diagnostic,
``CODE LINE:COL`` or ``CODE FILE:LINE:COL`` when the error is in an imported file.  Positions
follow from how the text is built and the default limits (``nesting`` 200, ``call_depth`` 64,
``import_depth`` 16, ``file_bytes`` 256 KiB).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

#: Nesting depth of the deep cases: far beyond every limit and beyond Python's recursion limit.
DEEP = 5000
#: The default ``nesting`` limit (archdsl/limits.py).
NESTING = 200
HEAD = "network n\ninput 3x8x8\n"
YAML_HEAD = "network: n\ninput: 3x8x8\n"


@dataclass(frozen=True)
class BigCase:
    """Files to write (name -> bytes; the first is checked) and the expected diagnostic."""

    files: dict[str, bytes]
    expect: str

    @property
    def spec(self) -> str:
        """Name of the file to check."""
        return next(iter(self.files))


def _one(name: str, text: str | bytes, expect: str) -> tuple[str, BigCase]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return name, BigCase({name: data}, expect)


def cases() -> dict[str, BigCase]:
    """Every generated case by name."""
    n, lim = DEEP, NESTING
    out = dict([
        # the 201st '{' (each '{ ' is two columns)
        _one("deep_braces.arch", HEAD + "{ " * n + "relu" + " }" * n + "\n", f"E152 3:{2 * lim + 1}"),
        # conv2d's own '(' is the first level
        _one("deep_parens.arch", HEAD + "conv2d(" + "(" * n + "4" + ")" * n + ", 3)\n", f"E152 3:{7 + lim}"),
        _one("deep_lists.arch", HEAD + "let l = " + "[" * n + "1" + "]" * n + "\nrelu\n", f"E152 3:{9 + lim}"),
        # unary minus nests without brackets: reported at the operator whose operand is 200 deep
        _one("deep_unary.arch", HEAD + "conv2d(" + "-" * n + "4, 3)\n", f"E152 3:{7 + n - lim}"),
        _one("deep_if.arch", HEAD + "if true { " * n + "relu" + " }" * n + "\n", f"E152 3:{10 * lim + 9}"),
        _one("deep_flow_lists.yaml", YAML_HEAD + "let:\n  - l: " + "[" * n + "1" + "]" * n + "\nlayers: [relu]\n",
             f"E152 4:{7 + lim - 2}"),  # the document, 'let' and its item are three levels
        _one("deep_flow_maps.yaml", YAML_HEAD + "layers:\n  - " + "{g: " * n + "relu" + "}" * n + "\n",
             f"E152 4:{6 + 4 * (lim - 3)}"),  # keys count as a level: the 'g' 201 deep
        # 'block Bi { B(i+1) }': B0 is called at top level, the 64th nested call is refused
        _one("deep_block_calls.arch", HEAD + "".join(f"block B{i} {{ B{i + 1} }}\n" for i in range(200))
             + "block B200 { relu }\nB0\n", "E152 66:13"),
        _one("huge_int_5000_digits.arch", HEAD + "conv2d(" + "7" * 5000 + ", 3)\n", "E151 3:8"),
        _one("huge_int_5000_digits.yaml", YAML_HEAD + "let:\n  - w: " + "7" * 5000 + "\nlayers: [relu]\n",
             "E151 4:8"),
        # the error 100 KB into one line: the diagnostic shows a window around the column
        _one("long_line.arch", HEAD + "conv2d(4, 3)" + " " * 100_000 + "$\n", f"E002 3:{13 + 100_000}"),
        _one("too_big.arch", HEAD + "# padding\n" * 500_000, "E005 1:1"),
        _one("too_big.yaml", YAML_HEAD + "# padding\n" * 500_000, "E005 1:1"),
    ])
    # a chain of imports deeper than the limit: the 17th 'use' is refused, in the file that has it
    chain = {f"chain{i:02d}.arch": f'use "chain{i + 1:02d}.arch"\nblock C{i} {{ relu }}\n'.encode()
             for i in range(30)}
    chain = {"import_chain.arch": (HEAD + 'use "chain00.arch"\nrelu\n').encode(), **chain}
    out["import_chain.arch"] = BigCase(chain, "E152 chain15.arch:1:5")
    return out


def write(directory: Path, case: BigCase) -> Path:
    """Write ``case``'s files into ``directory``; returns the path of the file to check."""
    for name, data in case.files.items():
        (directory / name).write_bytes(data)
    return directory / case.spec


def main(argv: list[str]) -> int:
    """``make_big.py OUTDIR``: write every case into OUTDIR."""
    if len(argv) != 1:
        print("usage: make_big.py OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, case in cases().items():
        write(out, case)
        print(f"{name}: expect {case.expect}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
