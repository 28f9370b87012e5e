"""Rule configuration: the spec's rules(...) line (text and YAML), pyproject, the command line,
inline suppression, and `archdsl rules`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from cli_support import run

from archdsl.diagnostics import Diagnostic
from archdsl.pipeline import analyze
from archdsl.rules import RuleRequest, all_rules, lint

NO_PYPROJECT = RuleRequest(use_pyproject=False)

# A spec with one R301 (line 4) and one R401 (line 5), plus the R602 report.
BASE = """
    network t
    input 32x28x28
    {rules}
    f: conv2d(64, 5, padding = 2, bias = false) -> batchnorm -> relu{c1}
    b: conv2d(64, 1) -> batchnorm -> relu{c2}
    """


def write(tmp_path: Path, text: str, name: str = "t.arch") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


def codes(path: Path, request: RuleRequest = NO_PYPROJECT) -> list[tuple[str, int, int]]:
    res = analyze(path)
    assert res.ok
    return [(d.code, d.loc.line, d.loc.col) for d in sorted(lint(res, request), key=Diagnostic.sort_key)]


def base(tmp_path: Path, rules: str = "", c1: str = "", c2: str = "", name: str = "t.arch") -> Path:
    return write(tmp_path, BASE.format(rules=rules, c1=c1, c2=c2), name)


def test_baseline(tmp_path: Path) -> None:
    assert codes(base(tmp_path)) == [("R602", 1, 9), ("R301", 4, 4), ("R401", 5, 4)]


# ------------------------------------------------------------------------------ the spec's rules(...)


def test_spec_ignore_and_select(tmp_path: Path) -> None:
    assert codes(base(tmp_path, 'rules(ignore = ["R301", "R6"])')) == [("R401", 5, 4)]
    assert codes(base(tmp_path, 'rules(select = ["R3"])')) == [("R301", 4, 4)]
    assert codes(base(tmp_path, 'rules(select = "R401")')) == [("R401", 5, 4)]


def test_spec_unknown_option_and_bad_values(tmp_path: Path) -> None:
    path = base(tmp_path, 'rules(ignroe = ["R301"], grid = [20, 12], select = ["R399"], max_plain_depth = 2.5)')
    res = analyze(path)
    diags = sorted(lint(res, NO_PYPROJECT), key=Diagnostic.sort_key)
    errs = [d for d in diags if d.is_error]
    assert [(d.code, d.loc.line, d.loc.col) for d in errs] == [
        ("R001", 3, 7), ("R002", 3, 26), ("R003", 3, 43), ("R002", 3, 62)]
    assert errs[0].message == "unknown rules option 'ignroe'" and errs[0].hint == "did you mean 'ignore'?"
    assert "expected [low, high] grid sizes" in errs[1].message
    assert errs[2].message == "unknown rule code 'R399' in 'select'"
    assert "expected an integer" in errs[3].message
    # the rest of the rules still run with their defaults
    assert {d.code for d in diags if not d.is_error} == {"R301", "R401", "R602"}


def test_spec_positional_option_is_an_error(tmp_path: Path) -> None:
    res = analyze(base(tmp_path, 'rules("R301")'))
    errs = [d for d in lint(res, NO_PYPROJECT) if d.is_error]
    assert [(d.code, d.loc.line, d.loc.col) for d in errs] == [("R001", 3, 7)]


def test_yaml_rules_key(tmp_path: Path) -> None:
    path = write(tmp_path, """
        network: t
        input: 64x28x28
        rules: ignore = ["R6", "R401"], reduce_min_channels = 1000   # R201 off by threshold
        layers:
        - f: conv2d(64, 5, padding = 2, bias = false) -> batchnorm -> relu
        - b: conv2d(64, 1) -> batchnorm -> relu
        """, "t.yaml")
    assert codes(path) == [("R301", 5, 6)]


def test_thresholds_change_findings(tmp_path: Path) -> None:
    text = "network t\ninput 16x8x8\n{rules}\n" + "\n".join(f"c{i}: conv2d(16, 3, padding = 1) -> relu"
                                                           for i in range(6)) + "\n"
    assert ("R403", 1, 9) not in codes(write(tmp_path, text.format(rules="")))
    assert ("R403", 1, 9) in codes(write(tmp_path, text.format(rules="rules(max_unnormalized_depth = 5)")))


# ------------------------------------------------------------------------------ inline suppression


def test_inline_suppression_on_the_line(tmp_path: Path) -> None:
    assert codes(base(tmp_path, c1="   # archdsl: ignore[R301]")) == [("R602", 1, 9), ("R401", 5, 4)]
    assert codes(base(tmp_path, c1="  # archdsl: ignore[R3, R4]", c2="  # archdsl: ignore")) == [("R602", 1, 9)]
    # other codes on the line are not suppressed
    assert ("R301", 4, 4) in codes(base(tmp_path, c1="  # archdsl: ignore[R401]"))


def test_suppression_in_block_or_at_one_instance(tmp_path: Path) -> None:
    text = """
        network t
        input 16x28x28
        block B(c) {
            x: conv2d(c, 1) -> relu
            y: conv2d(c, 5, padding = 2) -> relu INSIDE
        }
        b1: B(16) AT1
        b2: B(16)
        """

    def fmt(inside: str, at1: str) -> str:
        return text.replace("INSIDE", inside).replace("AT1", at1)

    both = codes(write(tmp_path, fmt(inside="", at1="")), RuleRequest(select=("R301",), use_pyproject=False))
    assert both == [("R301", 5, 8), ("R301", 5, 8)]
    one = write(tmp_path, fmt(inside="", at1="  # archdsl: ignore[R301]"))
    res = analyze(one)
    left = [d.path for d in lint(res, RuleRequest(select=("R301",), use_pyproject=False))]
    assert left == ["b2.y"]
    none = write(tmp_path, fmt(inside="  # archdsl: ignore[R301]", at1=""))
    assert codes(none, RuleRequest(select=("R301",), use_pyproject=False)) == []


def test_network_level_findings_suppressed_on_the_network_line(tmp_path: Path) -> None:
    path = write(tmp_path, "network t  # archdsl: ignore[R602]\ninput 3x8x8\nconv2d(4, 3)\n")
    assert codes(path) == []


# ------------------------------------------------------------------------------ pyproject


def test_pyproject_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.archdsl.rules]\nignore = ["R6"]\nselect = ["R3", "R4", "R6"]\n')
    sub = tmp_path / "nets"
    sub.mkdir()
    path = base(sub)
    assert codes(path, RuleRequest()) == [("R301", 4, 4), ("R401", 5, 4)]
    # the spec's own options win over pyproject's select; ignores accumulate
    path = base(sub, 'rules(select = ["R4", "R6"])')
    assert codes(path, RuleRequest()) == [("R401", 5, 4)]
    # and the command line wins over both
    assert codes(path, RuleRequest(select=("R301",))) == [("R301", 4, 4)]


def test_pyproject_errors_are_located(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.archdsl.rules]\n\nbottleneck_factr = 3\ngrid = "x"\n')
    res = analyze(base(tmp_path))
    errs = [d for d in lint(res, RuleRequest()) if d.is_error]
    assert [(d.code, Path(d.loc.file).name, d.loc.line, d.loc.col) for d in errs] == [
        ("R001", "pyproject.toml", 3, 1), ("R002", "pyproject.toml", 4, 1)]
    assert errs[0].hint == "did you mean 'bottleneck_factor'?"


def test_pyproject_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.archdsl.rules\n")
    res = analyze(base(tmp_path))
    errs = [d for d in lint(res, RuleRequest()) if d.is_error]
    assert [d.code for d in errs] == ["R002"] and "cannot read rule options" in errs[0].message


# ------------------------------------------------------------------------------ command line


def test_check_runs_rules_and_strict(tmp_path: Path) -> None:
    path = base(tmp_path)
    rc, out, err = run("check", str(path), "--show", "info")
    assert rc == 0 and "warning[R301]" in err and "warning[R401]" in err and "info[R602]" in err
    assert err.rstrip().endswith("0 errors, 2 warnings, 1 info")
    assert run("check", str(path), "--strict")[0] == 1
    assert run("check", str(path), "--strict", "--ignore", "R301,R401")[0] == 0
    rc, _, err = run("check", str(path), "--select", "R3", "--select", "R6", "--show", "info")
    assert "R401" not in err and "R301" in err and "R602" in err
    rc, _, err = run("check", str(path), "--strict", "--select", "R6")
    assert rc == 0    # info never fails


def test_check_unknown_code_is_a_usage_error(tmp_path: Path) -> None:
    rc, _, err = run("check", str(base(tmp_path)), "--ignore", "R31")
    assert rc == 2 and "unknown rule code 'R31'" in err and "did you mean 'R301'?" in err
    assert run("check", str(base(tmp_path)), "--select", "X1")[0] == 2


def test_check_json_carries_evidence(tmp_path: Path) -> None:
    rc, out, _ = run("check", str(base(tmp_path)), "--format", "json", "--select", "R301")
    d = json.loads(out)["diagnostics"][0]
    assert d["code"] == "R301" and d["line"] == 4 and d["column"] == 4 and d["path"] == "f"
    assert d["evidence"]["weights_before"] == 51_200 and d["evidence"]["weights_after"] == 36_288


def test_rules_do_not_run_on_broken_specs(tmp_path: Path) -> None:
    path = write(tmp_path, "network t\ninput 64x28x28\nf: conv2d(64, 5, padding = 2) -> conv2d(8, 99)\n")
    rc, _, err = run("check", str(path))
    assert rc == 1 and "E204" in err and "[R" not in err


def test_rules_command_lists_every_rule() -> None:
    rc, out, _ = run("rules")
    assert rc == 0
    for r in all_rules():
        assert f"{r.code}  {r.severity:<7}  {r.name}" in out
    assert "Source: Szegedy et al. 2016" in out and "Why:" in out
    rc, out, _ = run("rules", "R3")
    assert rc == 0 and "R301" in out and "R401" not in out
    rc, out, _ = run("rules", "--format", "json")
    doc = json.loads(out)
    assert [r["code"] for r in doc["rules"]] == [r.code for r in all_rules()]
    assert doc["options"]["grid"]["default"] == [12, 20]
    rc, out, _ = run("rules", "--format", "md")
    assert out.startswith("| Code | Name | Severity |")
    assert run("rules", "R9")[0] == 2


def test_a_crashing_rule_is_reported_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from archdsl.rules import registry

    rule = registry.RULES["R301"]

    def boom(ctx):
        raise ZeroDivisionError("nope")
        yield

    monkeypatch.setitem(registry.RULES, "R301", rule.__class__(**{**rule.__dict__, "check": boom}))
    res = analyze(base(tmp_path))
    ds = lint(res, NO_PYPROJECT)
    crash = [d for d in ds if d.code == "R000"]
    assert len(crash) == 1 and "rule R301 failed: ZeroDivisionError" in crash[0].message
    assert {d.code for d in ds} >= {"R401", "R602"}


def test_rules_and_transform_never_import_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    spec = base(tmp_path)
    code = ("import sys; from archdsl.cli import main; "
            f"main(['rules']); main(['check', {str(spec)!r}]); "
            f"main(['transform', {str(spec)!r}, '--factorize', '-o', {str(tmp_path / 'o.arch')!r}]); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o.arch").is_file()
