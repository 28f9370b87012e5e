"""Command-line conventions (issue 12): ``--color`` with NO_COLOR/FORCE_COLOR, ``-q`` on every
command that reports or writes, help text for every command and option, ``archdsl limits``, and
``archdsl completion bash|zsh|fish`` generated from the argparse tree."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_support import BROKEN_SPEC, run
from golden import assert_golden

from archdsl import cli, cli_color, completion, limits

ROOT = Path(__file__).resolve().parents[1]
ESC = "\x1b["

BROKEN = BROKEN_SPEC
CLEAN = """
    network t
    input 3x8x8
    conv2d(4, 3) -> relu
    """
# A 5x5 conv that 'transform --factorize=5x5' rewrites.
FACTORIZABLE = """
    network t
    input 16x28x28
    f: conv2d(32, 5, padding = 2, bias = false) -> batchnorm -> relu
    """


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No colour settings inherited from the shell that runs the tests."""
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)


def write(tmp_path: Path, text: str, name: str = "t.arch") -> Path:
    """Write a dedented spec into ``tmp_path`` and return its path."""
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


def parser() -> argparse.ArgumentParser:
    """The full parser, with the subcommands other modules register."""
    cli._load_extensions()
    return cli.build_parser()


def subcommands(ap: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every subcommand's parser, by name."""
    actions = [a for a in ap._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return dict(actions[0].choices)


COMMANDS = ("check", "summary", "convert", "schema", "sweep", "compile", "render", "lsp", "rules", "transform", "train",
            "limits", "completion")


# ------------------------------------------------------------------------------------------ help


def test_every_command_has_a_description_and_every_argument_help() -> None:
    ap = parser()
    subs = subcommands(ap)
    assert tuple(subs) == COMMANDS
    missing = []
    for name, p in [("archdsl", ap), *subs.items()]:
        if not (p.description or "").strip():
            missing.append(f"{name}: no description")
        for action in p._actions:
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{name}: {'/'.join(action.option_strings) or action.metavar or action.dest}")
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"archdsl {a.dest}: no one-line help" for a in action._choices_actions
                            if not (a.help or "").strip()]
    assert missing == []


def test_color_everywhere_and_quiet_where_a_command_reports_or_writes() -> None:
    for name, p in subcommands(parser()).items():
        flags = {s for a in p._actions for s in a.option_strings}
        assert "--color" in flags, name
        assert ({"-q", "--quiet"} <= flags) == (name not in ("rules", "limits", "completion")), name


def test_top_level_help_lists_each_command_with_its_line() -> None:
    rc, out, _ = run("--help")
    assert rc == 0
    for name in COMMANDS:
        assert re.search(rf"^    {name} +\S", out, flags=re.M), name
    assert "'archdsl limits' lists the" in out


@pytest.mark.parametrize("name", COMMANDS)
def test_command_help_opens_with_its_description(name: str) -> None:
    rc, out, _ = run(name, "--help")
    assert rc == 0
    after_usage = out.split("\n\n", 1)[1]
    description = subcommands(parser())[name].description
    assert after_usage.startswith(" ".join(description.split()[:4]))


def test_limit_help_is_one_line_pointing_to_the_limits_command() -> None:
    _, out, _ = run("check", "--help")
    block = out[out.index("  --limit NAME=VALUE"):]
    block = block[:block.index("\n  --", 1)]
    assert "archdsl" in block and "limits' lists them" in " ".join(block.split())
    assert len(block.splitlines()) <= 2
    assert "yaml_nodes" not in out and "dot_seconds" not in out   # the list lives in 'archdsl limits'


def test_spec_and_format_have_help() -> None:
    _, out, _ = run("check", "--help")
    assert re.search(r"^  SPEC +a spec file: the text language \(\.arch\) or YAML", out, flags=re.M)
    assert re.search(r"^  --format \{text,json,github,sarif\}\s+text: diagnostics for people", out, flags=re.M)


# ---------------------------------------------------------------------------------------- limits


def test_every_limit_has_a_meaning_and_a_code() -> None:
    assert sorted(limits.MEANINGS) == limits.names()
    assert all(re.fullmatch(r"E\d{3}", code) and text for code, text in limits.MEANINGS.values())


def test_limits_lists_each_limit_once_with_default_and_meaning() -> None:
    rc, out, err = run("limits")
    assert (rc, err) == (0, "")
    rows = [line for line in out.splitlines() if line.split()[:1] and line.split()[0] in limits.names()]
    assert [r.split()[0] for r in rows] == limits.names()
    nodes = next(r for r in rows if r.startswith("nodes "))
    assert nodes.split()[:4] == ["nodes", "10,000", "10,000", "E150"]
    assert "IR nodes" in nodes
    assert "--limit NAME=VALUE" in out and "ARCHDSL_LIMITS" in out


def test_limits_json_shows_the_values_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHDSL_LIMITS", "nodes=5000,repeat=7")
    rc, out, err = run("--limit", "repeat=9", "limits", "--format", "json", "--limit", "nesting=50")
    assert (rc, err) == (0, "")
    rows = {r["name"]: r for r in json.loads(out)["limits"]}
    assert list(rows) == limits.names()
    assert rows["nodes"] == {"name": "nodes", "default": 10_000, "value": 5000, "set_by": "ARCHDSL_LIMITS",
                             "code": "E150", "meaning": limits.MEANINGS["nodes"][1]}
    assert (rows["repeat"]["value"], rows["repeat"]["set_by"]) == (9, "--limit")
    assert (rows["nesting"]["value"], rows["nesting"]["set_by"]) == (50, "--limit")
    assert (rows["spatial"]["value"], rows["spatial"]["set_by"]) == (limits.DEFAULT.spatial, "default")
    monkeypatch.setenv("ARCHDSL_LIMITS", "nodes=x")
    rc, _, err = run("limits")
    assert rc == 2 and err.startswith("archdsl: error: ARCHDSL_LIMITS: bad limit 'nodes=x'")


# -------------------------------------------------------------------------------------- completion


def _long_options(p: argparse.ArgumentParser) -> list[str]:
    return [s for a in p._actions for s in a.option_strings if s.startswith("--")]


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_completion_names_every_command_and_option_deterministically(shell: str) -> None:
    rc, script, err = run("completion", shell)
    assert (rc, err) == (0, "")
    assert run("completion", shell)[1] == script
    for name, p in subcommands(parser()).items():
        assert re.search(rf"\b{name}\b", script), name
        flags = [o[2:] for o in _long_options(p)] if shell == "fish" else _long_options(p)
        assert all(f in script for f in flags), (name, [f for f in flags if f not in script])
    assert "nodes=" in script and "text json" in script       # limit names, choices
    checker = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-execute"]}[shell]
    if shutil.which(checker[0]):
        proc = subprocess.run([*checker, "/dev/stdin"], input=script, text=True, capture_output=True, timeout=30)
        assert proc.returncode == 0, proc.stderr


_BASH_DRIVER = r"""
source "$1"
t() { COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _archdsl; echo "${COMPREPLY[*]}"; }
t archdsl ch
t archdsl check --fo
t archdsl check --format ""
t archdsl completion ""
t archdsl --limit nod
t archdsl render x.arch --format ""
"""


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_completes(tmp_path: Path) -> None:
    script = tmp_path / "archdsl.bash"
    script.write_text(run("completion", "bash")[1], encoding="utf-8")
    driver = tmp_path / "driver.sh"
    driver.write_text(_BASH_DRIVER, encoding="utf-8")
    proc = subprocess.run(["bash", str(driver), str(script)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["check", "--format", "text json github sarif", "bash zsh fish", "nodes=",
                                        "svg png pdf dot html mmd"]


def test_completion_of_an_unknown_shell_is_a_usage_error() -> None:
    rc, out, err = run("completion", "tcsh")
    assert rc == 2 and "invalid choice: 'tcsh'" in err


# ------------------------------------------------------------------------------------------ colour


def test_color_always_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, BROKEN)
    rc, out, err = run("check", "t.arch", "--color", "always")
    rc_q, _, err_q = run("check", "t.arch", "--color", "always", "-q")
    assert (rc, out, rc_q) == (1, "", 1)
    assert_golden("cli/color_check.txt", err + "--- -q\n" + err_q)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", err)
    assert plain == run("check", "t.arch")[2]       # the same text, escape codes aside


def test_color_marks_each_part() -> None:
    text = "\n".join(["a.arch:3:5: error[E201]: concat inputs differ: 32x32 vs 16x16", "    concat {", "    ^",
                      "    = in: mixed.<concat>", "    = note: branch 2 is 16x16 (a.arch:5:9)",
                      "        conv2d(8, 3, stride = 2)", "        ^", "    = hint: give every branch the same stride"])
    painted = cli_color.paint_diagnostic(text).split("\n")
    red, blue, green, bold, reset = "\x1b[1;31m", "\x1b[1;34m", "\x1b[1;32m", "\x1b[1m", "\x1b[0m"
    assert painted[0] == (f"{bold}a.arch:3:5{reset}: {red}error[E201]{reset}: concat inputs differ: "
                          "32x32 vs 16x16")
    assert painted[1] == "    concat {" and painted[5] == "        conv2d(8, 3, stride = 2)"  # source untouched
    assert painted[2] == f"    {red}^{reset}"                # the primary caret in the severity's colour
    assert painted[6] == f"        {blue}^{reset}"           # a secondary caret in the note's colour
    assert painted[3] == f"    {blue}= in:{reset} mixed.<concat>"
    assert painted[7] == f"    {green}= hint:{reset} give every branch the same stride"
    assert cli_color.paint_counts("1 error, 0 warnings, 2 infos") == (f"{red}1 error{reset}, 0 warnings, "
                                                                      "\x1b[1;36m2 infos\x1b[0m")
    assert cli_color.paint_diagnostic("not a diagnostic\n    ^") == "not a diagnostic\n    ^"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("choice, env, tty, expected", [
    (None, {}, True, True), (None, {}, False, False),
    (None, {"TERM": "dumb"}, True, False), (None, {"TERM": "xterm-256color"}, True, True),
    (None, {"NO_COLOR": "1"}, True, False), (None, {"NO_COLOR": ""}, True, True),  # empty: not set
    (None, {"FORCE_COLOR": "1"}, False, True), (None, {"FORCE_COLOR": ""}, False, False),
    (None, {"FORCE_COLOR": "1", "TERM": "dumb"}, False, True),
    (None, {"FORCE_COLOR": "1", "NO_COLOR": "1"}, True, False),                     # NO_COLOR wins
    ("auto", {}, True, True),
    ("always", {"NO_COLOR": "1"}, False, True), ("never", {"FORCE_COLOR": "1"}, True, False),
])
def test_when_to_color(choice: str | None, env: dict[str, str], tty: bool, expected: bool) -> None:
    stream = _Tty() if tty else io.StringIO()
    assert cli.wants_color(choice, stream, env) is expected


def test_color_follows_the_environment_and_the_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = str(write(tmp_path, BROKEN))
    always = run("check", spec, "--color", "always")
    plain = run("check", spec)
    assert ESC in always[2] and ESC not in plain[2]            # in-process stderr is not a terminal
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert run("check", spec) == always
    assert run("check", spec, "--color", "never") == plain
    assert run("--color", "never", "check", spec) == plain     # before the command too
    assert run("--color", "never", "check", spec, "--color", "always") == always  # the command's own wins
    monkeypatch.setenv("NO_COLOR", "1")
    assert run("check", spec) == plain
    assert run("check", spec, "--color", "always") == always


def _failing_command(name: str, tmp_path: Path) -> list[str]:
    """A command line for ``name`` that reports an error diagnostic (or, for rules, a usage error)."""
    spec = str(write(tmp_path, BROKEN))
    out = str(tmp_path / "out")
    return {"check": ["check", spec], "summary": ["summary", spec], "compile": ["compile", spec],
            "render": ["render", spec, "-o", out + ".dot"], "transform": ["transform", spec, "--factorize", "-o", out + ".arch"],
            "convert": ["convert", str(write(tmp_path, "network t\nconv2d(4 3)\n", "bad.arch")), "-o",
                        out + ".yaml"],
            "rules": ["rules", "R999"]}[name]


@pytest.mark.parametrize("name", ["check", "summary", "compile", "render", "transform", "convert", "rules"])
def test_every_command_colours_its_errors(name: str, tmp_path: Path) -> None:
    argv = _failing_command(name, tmp_path)
    rc, out, err = run(*argv, "--color", "always")
    assert rc in (1, 2) and "\x1b[1;31merror" in err, err
    rc_plain, out_plain, err_plain = run(*argv)
    assert (rc_plain, out_plain) == (rc, out) and ESC not in err_plain and "error" in err_plain
    assert ESC not in run(*argv, "--color", "never")[2]


def _spawn(code: str, stderr: int | None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")} | {"TERM": "xterm"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=stderr if stderr is not None else subprocess.PIPE, timeout=120)


def test_auto_colours_a_terminal_not_a_pipe(tmp_path: Path) -> None:
    spec = write(tmp_path, BROKEN)
    code = (f"import sys\nfrom archdsl.cli import main\nrc = main(['check', {str(spec)!r}])\n"
            "print('rich' in sys.modules, 'archdsl.cli_color' in sys.modules)\n")
    pty = pytest.importorskip("pty")   # POSIX only
    piped = _spawn(code, None)
    assert piped.stdout.decode().split() == ["False", "False"]     # no colour, nothing imported for it
    assert b"error[E204]" in piped.stderr and b"\x1b[" not in piped.stderr
    primary, secondary = pty.openpty()
    try:
        on_tty = _spawn(code, secondary)
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
    assert on_tty.stdout.decode().split() == ["False", "True"]
    assert b"\x1b[1;31merror[E204]\x1b[0m" in b"".join(chunks)


# ------------------------------------------------------------------------------------------- quiet


def test_check_quiet_drops_the_ok_line(tmp_path: Path) -> None:
    spec, pin = str(write(tmp_path, CLEAN)), ("--select", "R301")   # no rule finding at all
    assert run("check", spec, *pin) == (0, "", "ok: 1 spec checked\n")
    assert run("check", spec, *pin, "-q") == (0, "", "")
    assert run("check", spec, *pin, "--severity", "error") == (0, "", "ok: 1 spec checked\n")


@pytest.mark.parametrize("name", ["convert", "transform", "render", "compile"])
def test_quiet_writers_print_nothing_on_success(name: str, tmp_path: Path) -> None:
    spec = str(write(tmp_path, FACTORIZABLE))
    out = tmp_path / {"convert": "o.yaml", "transform": "o.arch", "render": "o.dot", "compile": "o.py"}[name]
    extra = ["--factorize=5x5"] if name == "transform" else []
    loud = run(name, spec, *extra, "-o", str(out))
    assert loud[0] == 0 and f"wrote {out}" in loud[2]
    out.unlink()
    assert run(name, spec, *extra, "-o", str(out), "-q") == (0, "", "")
    assert out.is_file()


@pytest.mark.parametrize("name", ["convert", "transform"])
def test_quiet_still_reports_errors(name: str, tmp_path: Path) -> None:
    argv = _failing_command(name, tmp_path)
    rc, out, err = run(*argv, "-q")
    assert rc == 1 and out == "" and re.search(r"^\S+:\d+:\d+: error\[E\d+\]", err, flags=re.M)
