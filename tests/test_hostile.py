"""Hostile specs: every broken or malicious file in ``tests/hostile/`` fails every command with its
expected, located diagnostic, never a traceback, and leaves no output file behind.

Each corpus file states its primary (first) error on its first line, ``# expect: CODE LINE:COL``
(``CODE FILE:LINE:COL`` when the error is in a file it imports); files that cannot hold a comment
(empty, binary) are listed in ``tests/hostile/EXPECTED.txt``.  ``tests/hostile/make_big.py``
generates the big ones (5000-deep nesting, a 100 KB line, files over the size limit) at test time.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_support import run

from archdsl.diagnostics import DiagnosticError
from archdsl.frontend.loader import is_yaml, load_spec_file

HOSTILE = Path(__file__).resolve().parent / "hostile"
sys.path.insert(0, str(HOSTILE))
import make_big  # noqa: E402 - the generator lives next to the corpus it extends

SUFFIXES = (".arch", ".yaml")
EXPECT_LINE = re.compile(rb"^(?:\xef\xbb\xbf)?# expect: (.*?)\r?$", re.M)
EXPECT = re.compile(r"^(E\d{3}) (?:([^\s:]+):)?(\d+):(\d+)$")
#: The commands every hostile spec is run through; {out} is a fresh directory for outputs.
COMMANDS = ("check", "summary", "convert", "compile", "render", "transform")


@dataclass(frozen=True)
class Expect:
    """The primary diagnostic a hostile spec must produce."""

    code: str
    file: Path
    line: int
    col: int

    def header(self) -> str:
        """The start of its first text line: ``file:line:col: error[CODE]``."""
        return f"{self.file}:{self.line}:{self.col}: error[{self.code}]"


def _parse_expect(spec: Path, text: str) -> Expect:
    m = EXPECT.match(text.strip())
    assert m, f"{spec.name}: malformed expectation {text!r} (want 'CODE LINE:COL' or 'CODE FILE:LINE:COL')"
    code, other, line, col = m.groups()
    return Expect(code, spec.parent / other if other else spec, int(line), int(col))


def _sidecar() -> dict[str, str]:
    out = {}
    for raw in (HOSTILE / "EXPECTED.txt").read_text(encoding="utf-8").splitlines():
        if raw.strip() and not raw.startswith("#"):
            name, rest = raw.split(None, 1)
            assert name not in out, f"EXPECTED.txt lists {name} twice"
            out[name] = rest
    return out


SIDECAR = _sidecar()
CORPUS = sorted(p for p in HOSTILE.iterdir() if p.suffix in SUFFIXES)


def expectation(spec: Path) -> Expect:
    """The expected primary diagnostic of a corpus file."""
    if spec.name in SIDECAR:
        return _parse_expect(spec, SIDECAR[spec.name])
    head = spec.read_bytes().split(b"\n", 1)[0]
    m = EXPECT_LINE.match(head)
    assert m, f"{spec.name}: first line must be '# expect: CODE LINE:COL' (or list the file in EXPECTED.txt)"
    return _parse_expect(spec, m.group(1).decode("ascii"))


def shown_lines(path: Path) -> list[str]:
    """Lines of ``path`` as a diagnostic shows them: lossy UTF-8, BOM dropped, line breaks
    normalized, non-printable characters replaced by U+FFFD (an independent re-implementation)."""
    text = path.read_bytes().decode("utf-8", "replace").removeprefix("\ufeff")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return ["".join(c if c == "\t" or c.isprintable() else "\ufffd" for c in line) for line in text.split("\n")]


def assert_located(exp: Expect, rc: int, out: str, err: str, what: str) -> None:
    """Exit 1, no traceback, nothing unprintable, and the first error is ``exp`` with its source
    line and a caret under the column."""
    text = out + err
    assert rc == 1, f"{what}: exit {rc}\n{text}"
    assert "Traceback" not in text, f"{what}: traceback\n{text}"
    bad = sorted({c for c in text if c not in "\n\t" and not c.isprintable()})
    assert not bad, f"{what}: unprintable characters {bad!r} reach the terminal\n{text}"
    lines = err.splitlines()
    first = next((i for i, line in enumerate(lines) if ": error[" in line), None)
    assert first is not None, f"{what}: no located error\n{text}"
    assert lines[first].startswith(exp.header()), f"{what}: first error is not {exp.header()}\n{text}"
    if exp.code == "E005":
        return  # the file was not read (missing, too large): there is no line to show
    source = shown_lines(exp.file)
    if exp.line > len(source) or (exp.line == len(source) and source[-1] == ""):
        return  # an empty file: there is no line to show
    assert first + 2 < len(lines), f"{what}: no source line and caret\n{text}"
    shown, caret = lines[first + 1], lines[first + 2]
    assert re.fullmatch(r"    [ \t]*\^", caret), f"{what}: no caret under the source line\n{text}"
    want = source[exp.line - 1]
    if len(want) <= 200:
        assert shown == "    " + want, f"{what}: wrong source line\n{text}"
        assert len(caret) - 4 == exp.col, f"{what}: caret not under column {exp.col}\n{text}"
    else:  # a window around the column; the caret sits under the offending character
        assert shown.endswith(" ...") or shown.startswith("    ... "), f"{what}: long line not windowed\n{text}"
        assert want[exp.col - 1] == shown[len(caret) - 1], f"{what}: caret not under column {exp.col}\n{text}"


def argv_for(command: str, spec: Path, out: Path) -> list[str]:
    """The command line of ``command`` on ``spec``, writing into directory ``out``."""
    other = ".arch" if is_yaml(spec) else ".yaml"
    same = ".yaml" if is_yaml(spec) else ".arch"
    return {
        "check": ["check", str(spec)],
        "summary": ["summary", str(spec)],
        "convert": ["convert", str(spec), "-o", str(out / f"converted{other}")],
        "compile": ["compile", str(spec), "-o", str(out / "model.py")],
        "render": ["render", str(spec), "-o", str(out / "diagram.dot")],
        "transform": ["transform", str(spec), "--factorize", "-o", str(out / f"factorized{same}")],
    }[command]


def check_command(command: str, spec: Path, exp: Expect, out: Path) -> None:
    """Run ``command`` on a hostile ``spec`` and check the outcome (see the module docstring)."""
    out.mkdir()
    rc, stdout, stderr = run(*argv_for(command, spec, out))
    what = f"archdsl {command} {spec.name}"
    if command == "convert":
        # convert only parses: a spec whose errors are semantic converts, and the result parses
        try:
            load_spec_file(spec)
        except DiagnosticError:
            pass
        else:
            assert rc == 0, f"{what}: exit {rc}\n{stdout}{stderr}"
            assert "Traceback" not in stdout + stderr
            (written,) = list(out.iterdir())
            load_spec_file(written)
            return
    assert_located(exp, rc, stdout, stderr, what)
    assert list(out.iterdir()) == [], f"{what}: left {sorted(p.name for p in out.iterdir())} behind"


# ------------------------------------------------------------------------------------ the corpus


def test_corpus_is_large_varied_and_small_on_disk() -> None:
    suffixes = {p.suffix for p in CORPUS}
    assert len(CORPUS) >= 50 and suffixes == set(SUFFIXES), (len(CORPUS), suffixes)
    per = {s: sum(p.suffix == s for p in CORPUS) for s in SUFFIXES}
    assert min(per.values()) >= len(CORPUS) // 3, per  # roughly half each front end
    assert sum(p.stat().st_size for p in HOSTILE.iterdir() if p.is_file()) < 1 << 20
    assert set(SIDECAR) <= {p.name for p in CORPUS}, "EXPECTED.txt names a file that is not in the corpus"


@pytest.mark.parametrize("spec", CORPUS, ids=lambda p: p.name)
def test_every_corpus_file_has_one_expectation(spec: Path) -> None:
    inline = EXPECT_LINE.match(spec.read_bytes().split(b"\n", 1)[0]) is not None
    assert inline != (spec.name in SIDECAR), f"{spec.name}: state the expectation in exactly one place"
    exp = expectation(spec)
    assert exp.file.is_file(), f"{spec.name}: expected location in a missing file {exp.file}"


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("spec", CORPUS, ids=lambda p: p.name)
def test_hostile_spec_fails_cleanly(spec: Path, command: str, tmp_path: Path) -> None:
    check_command(command, spec, expectation(spec), tmp_path / "out")


@pytest.fixture(scope="session")
def big_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every generated big case, written once per test session (one directory per case)."""
    root = tmp_path_factory.mktemp("hostile-big")
    for name, case in make_big.cases().items():
        (root / name).mkdir()
        make_big.write(root / name, case)
    return root


BIG = make_big.cases()


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", sorted(BIG))
def test_big_hostile_spec_fails_cleanly(name: str, command: str, big_dir: Path, tmp_path: Path) -> None:
    case = BIG[name]
    spec = big_dir / name / case.spec
    check_command(command, spec, _parse_expect(spec, case.expect), tmp_path / "out")


@pytest.mark.parametrize("name, hint", [
    ("op_unknown.arch", "did you mean 'conv2d'?"),
    ("op_unknown_kwarg.arch", "did you mean 'inplace'?"),
    ("expr_undefined_name.arch", "did you mean 'width'?"),
    ("yaml_unknown_top_key.yaml", "did you mean 'layers'?"),
    ("yaml_unknown_op.yaml", "did you mean 'conv2d'?"),
    ("syntax_unclosed_brace.arch", "the '{' at line 4, column 12 is never closed"),
    ("syntax_unclosed_paren.arch", "the '(' at line 4, column 7 is never closed"),
    ("syntax_unterminated_string.arch", "unterminated string"),
    ("bytes_latin1_comment.arch", "save the file as UTF-8"),
])
def test_hostile_spec_hint(name: str, hint: str) -> None:
    """The hint under the primary diagnostic of some corpus files (did-you-mean, unclosed brackets)."""
    spec = HOSTILE / name
    rc, out, err = run("check", str(spec))
    first = err.split("error[", 2)[1]  # the primary diagnostic's text, up to the next error
    assert f"= hint: {hint}" in first, err


# ------------------------------------------------------------------------------------ outputs


FAILING = HOSTILE / "op_unknown.arch"


@pytest.mark.parametrize("command, output", [
    ("compile", "model.py"), ("render", "diagram.dot"), ("transform", "new.arch"), ("convert", "new.yaml"),
])
def test_failed_command_does_not_clobber_existing_output(command: str, output: str, tmp_path: Path) -> None:
    spec = HOSTILE / "syntax_missing_comma.arch" if command == "convert" else FAILING
    target = tmp_path / output
    target.write_text("ORIGINAL\n")
    extra = ["--factorize"] if command == "transform" else []
    rc, out, err = run(command, str(spec), *extra, "-o", str(target))
    assert rc == 1 and "Traceback" not in out + err
    assert target.read_text() == "ORIGINAL\n"
    assert [p.name for p in tmp_path.iterdir()] == [output]  # no temporary file left either


def test_write_atomic_failure_keeps_the_old_file(tmp_path: Path) -> None:
    from archdsl.io import write_atomic

    target = tmp_path / "model.py"
    target.write_text("ORIGINAL\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "x = 1\n\ud800")  # fails after the temporary file exists
    assert target.read_text() == "ORIGINAL\n"
    assert [p.name for p in tmp_path.iterdir()] == ["model.py"]


def test_use_through_a_symlink_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "lib.arch").write_text("block Lib { relu }\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "lib.arch").symlink_to(outside / "lib.arch")
    spec = tree / "net.arch"
    spec.write_text('use "lib.arch"\nnetwork n\ninput 3x8x8\nLib\n')
    rc, out, err = run("check", str(spec))
    assert_located(Expect("E109", spec, 1, 5), rc, out, err, "use through a symlink")


def test_spec_path_with_control_characters_is_printed_safely(tmp_path: Path) -> None:
    spec = tmp_path / "evil\x1b[2J\nname.arch"
    spec.write_text("network n\ninput 3x8x8\nconvd(4, 3)\n")
    rc, out, err = run("check", str(spec))
    assert rc == 1 and "\x1b" not in out + err and "Traceback" not in out + err
    assert "error[E101]" in err


@pytest.mark.parametrize("stem", ["a[bold]b", "e\x1b[31mred", "t\u202eevil"], ids=ascii)
def test_summary_title_from_a_hostile_file_name(stem: str, tmp_path: Path) -> None:
    """Without a 'network' line the file's stem names the network in the summary table: no rich
    markup is interpreted and no control character reaches the terminal."""
    spec = tmp_path / f"{stem}.arch"
    spec.write_text("input 3x8x8\nconv2d(4, 3)\n")
    rc, out, err = run("summary", str(spec))
    assert rc == 0, err
    title = out.splitlines()[0].strip()
    assert title.startswith(stem if stem.isprintable() else ascii(stem)[1:-1])
    assert all(c == "\n" or c.isprintable() for c in out)
