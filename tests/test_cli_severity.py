"""What the commands list: infos counted in one line by default, ``--severity``/``--show``/``-q``,
the closing count line, ``--format json`` unfiltered by default, exit status independent of listing."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from cli_support import BROKEN_SPEC, run

from archdsl.cli import closing_line, hidden_line
from archdsl.diagnostics import Diagnostic, Loc

ROOT = Path(__file__).resolve().parents[1]

# One R301 warning (line 3, 5x5 conv) and, with --select R301,R602, one R602 info (the network report).
RULES = """
    network t
    input 32x28x28
    f: conv2d(64, 5, padding = 2, bias = false) -> batchnorm -> relu
    b: conv2d(64, 1) -> batchnorm -> relu
    """
PIN = ("--select", "R301,R602")  # only these two rules: the counts below do not move with the rule set

BROKEN = BROKEN_SPEC

# One warning (W122) and no error.
WARNED = """
    network t
    input 3x8x8
    block Unused(c) { relu }
    conv2d(4, 3) -> relu
    """


def write(tmp_path: Path, text: str, name: str = "t.arch") -> Path:
    """Write a dedented spec into ``tmp_path`` and return its path."""
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


def heads(err: str) -> list[str]:
    """The ``severity[CODE]`` of every listed diagnostic, in order."""
    return re.findall(r"^\S+:\d+:\d+: (\w+\[\w+\]): ", err, flags=re.M)


# ------------------------------------------------------------------------------ the default


def test_default_lists_warnings_and_counts_infos(tmp_path: Path) -> None:
    spec = write(tmp_path, RULES)
    rc, out, err = run("check", str(spec), *PIN)
    assert (rc, out) == (0, "")
    assert heads(err) == ["warning[R301]"]
    assert err.startswith(f"{spec}:3:4: warning[R301]: 5x5 conv on 28x28x32 ")
    assert err.splitlines()[-2:] == ["1 info not shown (--show info lists it)", "0 errors, 1 warning, 1 info"]


def test_spec_with_only_infos_prints_no_info_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    rc, out, err = run("check", "specs/cifar_resnet20.arch")
    assert (rc, out) == (0, "")
    m = re.fullmatch(r"(\d+) infos? not shown \(--show info lists (?:them|it)\)\n"
                     r"0 errors, 0 warnings, (\d+) infos?\n", err)
    assert m, err
    assert m[1] == m[2] and int(m[1]) > 0
    assert "info[" not in err and "specs/" not in err


def test_clean_spec_still_says_ok(tmp_path: Path) -> None:
    spec = write(tmp_path, "network: o\ninput: 1x4x4\nlayers: [relu]\n", "o.yaml")
    assert run("check", str(spec), "--select", "R301") == (0, "", "ok: 1 spec checked\n")


# ------------------------------------------------------------------------------ --show / --severity / -q


def test_show_info_lists_the_infos(tmp_path: Path) -> None:
    spec = write(tmp_path, RULES)
    rc, out, err = run("check", str(spec), *PIN, "--show", "info")
    assert (rc, out) == (0, "")
    assert heads(err) == ["info[R602]", "warning[R301]"]  # file order: R602 sits on the network line
    assert "not shown" not in err
    assert err.endswith("\n0 errors, 1 warning, 1 info\n")
    assert run("check", str(spec), *PIN, "--severity", "info") == (rc, out, err)


def test_severity_warning_is_the_default(tmp_path: Path) -> None:
    spec = write(tmp_path, RULES)
    assert run("check", str(spec), *PIN, "--severity", "warning") == run("check", str(spec), *PIN)


def test_quiet_hides_warnings_too(tmp_path: Path) -> None:
    spec = write(tmp_path, RULES)
    expected = (0, "", "1 warning and 1 info not shown (--show info lists them)\n0 errors, 1 warning, 1 info\n")
    assert run("check", str(spec), *PIN, "-q") == expected
    assert run("check", str(spec), *PIN, "--quiet") == expected
    assert run("check", str(spec), *PIN, "--severity", "error") == expected
    assert run("check", str(spec), *PIN, "--show", "error") == expected


def test_the_last_listing_option_wins(tmp_path: Path) -> None:
    spec = write(tmp_path, RULES)
    assert run("check", str(spec), *PIN, "--show", "info", "-q") == run("check", str(spec), *PIN, "-q")
    assert run("check", str(spec), *PIN, "-q", "--show", "info") == run("check", str(spec), *PIN, "--show", "info")


def test_errors_are_always_listed(tmp_path: Path) -> None:
    spec = write(tmp_path, BROKEN)
    rc, out, err = run("check", str(spec), "-q")
    assert (rc, out) == (1, "")
    assert heads(err) == ["error[E204]"]
    assert err.splitlines()[0] == (f"{spec}:4:17: error[E204]: conv2d kernel 9 (effective) is larger than the "
                                   "padded input height 6+2*0 = 6")
    assert err.splitlines()[-2:] == ["1 warning not shown (--show warning lists it)", "1 error, 1 warning, 0 infos"]
    rc, _, err = run("check", str(spec))
    assert rc == 1 and heads(err) == ["warning[W122]", "error[E204]"] and "not shown" not in err
    assert err.endswith("\n1 error, 1 warning, 0 infos\n")


def test_bad_severity_is_a_usage_error(tmp_path: Path) -> None:
    rc, out, err = run("check", str(write(tmp_path, RULES)), "--severity", "loud")
    assert (rc, out) == (2, "")
    assert "argument --severity: invalid choice: 'loud'" in err and "Traceback" not in err


def test_check_help_documents_every_flag() -> None:
    rc, out, _ = run("check", "--help")
    text = " ".join(out.split())
    assert rc == 0
    assert "--severity {error,warning,info} list the diagnostics of this severity or worse (default: warning;" in text
    assert "--show {error,warning,info} the same as --severity: '--show info' lists the infos too" in text
    assert "-q, --quiet list only the errors (as --severity error)" in text
    assert "--format json lists every diagnostic unless --severity, --show or -q is given" in text
    assert "fail (exit 1) on warnings too, listed or not" in text


# ------------------------------------------------------------------------------ exit status


def test_strict_fails_on_hidden_warnings(tmp_path: Path) -> None:
    spec = write(tmp_path, RULES)
    assert run("check", str(spec), *PIN, "--strict")[0] == 1
    rc, _, err = run("check", str(spec), *PIN, "--strict", "-q")
    assert rc == 1 and heads(err) == []
    assert err == "1 warning and 1 info not shown (--show info lists them)\n0 errors, 1 warning, 1 info\n"
    assert run("check", str(spec), *PIN, "-q")[0] == 0
    assert run("check", str(spec), "--select", "R602", "--strict", "--show", "info")[0] == 0  # infos never fail


def test_errors_fail_whatever_is_listed(tmp_path: Path) -> None:
    spec = write(tmp_path, BROKEN)
    for flags in ((), ("-q",), ("--show", "info"), ("--format", "json", "-q")):
        assert run("check", str(spec), *flags)[0] == 1, flags


# ------------------------------------------------------------------------------ the closing line


@pytest.mark.parametrize(("counts", "line"), [
    ((0, 0, 0), "0 errors, 0 warnings, 0 infos"),
    ((1, 1, 1), "1 error, 1 warning, 1 info"),
    ((2, 3, 30), "2 errors, 3 warnings, 30 infos"),
])
def test_closing_line_counts_every_severity(counts: tuple[int, int, int], line: str) -> None:
    assert closing_line(diags(*counts)) == line


@pytest.mark.parametrize(("counts", "flag", "line"), [
    ((0, 0, 5), "--show", "5 infos not shown (--show info lists them)"),
    ((0, 0, 1), "--show", "1 info not shown (--show info lists it)"),
    ((0, 2, 0), "--severity", "2 warnings not shown (--severity warning lists them)"),
    ((0, 1, 3), "--show", "1 warning and 3 infos not shown (--show info lists them)"),
])
def test_hidden_line(counts: tuple[int, int, int], flag: str, line: str) -> None:
    assert hidden_line(diags(*counts), flag) == line


def diags(errors: int, warnings: int, infos: int) -> list[Diagnostic]:
    """That many diagnostics of each severity."""
    loc = Loc("x.arch", 1, 1)
    return [Diagnostic(f"X{i:03}", "m", loc, sev) for sev, n in (("error", errors), ("warning", warnings),
                                                                   ("info", infos)) for i in range(n)]


def test_multiple_specs_share_one_closing_line(tmp_path: Path) -> None:
    a, b = write(tmp_path, RULES, "a.arch"), write(tmp_path, BROKEN, "b.arch")
    rc, _, err = run("check", str(a), str(b), *PIN)
    assert rc == 1 and heads(err) == ["warning[R301]", "warning[W122]", "error[E204]"]
    assert err.splitlines()[-2:] == ["1 info not shown (--show info lists it)", "1 error, 2 warnings, 1 info"]


# ------------------------------------------------------------------------------ --format json


def test_json_lists_everything_by_default(tmp_path: Path) -> None:
    spec = write(tmp_path, RULES)
    rc, out, err = run("check", str(spec), *PIN, "--format", "json")
    assert (rc, err) == (0, "")
    assert [d["code"] for d in json.loads(out)["diagnostics"]] == ["R602", "R301"]


@pytest.mark.parametrize(("flags", "codes"), [
    (("--severity", "warning"), ["R301"]),
    (("--show", "info"), ["R602", "R301"]),
    (("-q",), []),
])
def test_json_filters_when_asked(tmp_path: Path, flags: tuple[str, ...], codes: list[str]) -> None:
    rc, out, err = run("check", str(write(tmp_path, RULES)), *PIN, "--format", "json", *flags)
    assert (rc, err) == (0, "")
    assert [d["code"] for d in json.loads(out)["diagnostics"]] == codes


# ------------------------------------------------------------------------------ the other commands


def test_summary_follows_the_same_policy(tmp_path: Path) -> None:
    spec = write(tmp_path, WARNED)
    rc, out, err = run("summary", str(spec))
    assert rc == 0 and "conv2d" in out
    assert heads(err) == ["warning[W122]"] and err.endswith("\n0 errors, 1 warning, 0 infos\n")
    rc, out2, err = run("summary", str(spec), "-q")
    assert (rc, out2) == (0, out)
    assert err == "1 warning not shown (--severity warning lists it)\n0 errors, 1 warning, 0 infos\n"


def test_summary_lists_errors_when_quiet(tmp_path: Path) -> None:
    rc, out, err = run("summary", str(write(tmp_path, BROKEN)), "-q")
    assert (rc, out) == (1, "")
    assert heads(err) == ["error[E204]"] and err.endswith("\n1 error, 1 warning, 0 infos\n")


def test_render_follows_the_same_policy(tmp_path: Path) -> None:
    spec = write(tmp_path, WARNED)
    rc, _, err = run("render", str(spec), "-o", str(tmp_path / "t.dot"))
    assert rc == 0 and heads(err) == ["warning[W122]"]
    rc, _, err = run("render", str(spec), "-o", str(tmp_path / "t.dot"), "-q")
    assert rc == 0
    # -q: the listing of --severity error, and no 'wrote' line (docs/diagnostics.md, "Colour and quiet")
    assert err == "1 warning not shown (--severity warning lists it)\n0 errors, 1 warning, 0 infos\n"


def test_compile_counts_the_kept_batch_norms(tmp_path: Path) -> None:
    spec = write(tmp_path, """
        network p
        input 3x8x8
        conv2d(4, 3, padding = 1) -> relu -> batchnorm -> conv2d(4, 1)
        """)
    out = tmp_path / "p.py"
    rc, _, err = run("compile", str(spec), "-o", str(out), "--fold-bn")
    assert rc == 0 and out.exists()
    assert err == f"1 info not shown (--severity info lists it)\n0 errors, 0 warnings, 1 info\nwrote {out}\n"
    rc, _, err = run("compile", str(spec), "-o", str(out), "--fold-bn", "--severity", "info")
    assert rc == 0 and heads(err) == ["info[I343]"] and err.endswith(f"\n0 errors, 0 warnings, 1 info\nwrote {out}\n")
