"""``check --format github`` and ``--format sarif``: diagnostics for CI systems.

* ``github``: one GitHub Actions workflow command per diagnostic,
  ``::error file=F,line=L,col=C,endLine=L,endColumn=E,title=archdsl CODE::message``, escaped as
  actions/toolkit escapes them (data: ``%`` ``\\r`` ``\\n``; properties also ``:`` and ``,``), so a
  message can never end the command early or start another one.
* ``sarif``: a SARIF 2.1.0 log (what GitHub code scanning and other SAST dashboards read): the tool
  with one rule per code used, one result per diagnostic, secondary labels as related locations.

Columns are 1-based; an end column is the column just past the flagged token (SARIF's convention,
which GitHub's annotations follow too), found from the source line (the token under the caret).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePath
from urllib.parse import quote

from .diagnostics import ERROR, INFO, SUPPRESSED, WARNING, Diagnostic, Loc, SourceCache

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
#: The uriBaseId every artifact location is relative to: the directory ``check`` ran in.
SRCROOT = "%SRCROOT%"
_GITHUB_LEVEL = {ERROR: "error", WARNING: "warning", INFO: "notice"}
_SARIF_LEVEL = {ERROR: "error", WARNING: "warning", INFO: "note"}
#: Rule-configuration codes, documented in prose in docs/rules.md (not in a table).
CONFIG_CODES = {
    "R000": "A design rule crashed (a bug in archdsl); reported instead of stopping check",
    "R001": "Unknown design-rule option",
    "R002": "Bad value for a design-rule option",
    "R003": "Unknown rule code in select or ignore",
}
# A token under a caret: a name (or a backquoted label), a number, a string literal, an arrow.
_TOKEN = re.compile(r"`[^`\n]*`|[A-Za-z_][A-Za-z0-9_]*|[0-9][0-9.xeE+-]*|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|->")


# ------------------------------------------------------------------------------ shared


def visible(text: str) -> str:
    """``text`` with control and other unprintable characters as ``\\x1b``-style escapes, line breaks
    and tabs kept (each format escapes those its own way).  Spec text is untrusted: an escape
    sequence must not reach a CI log viewer."""
    if text.isprintable():
        return text
    return "".join(ch if ch in "\r\n\t" or ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def shown(diags: Sequence[Diagnostic]) -> list[Diagnostic]:
    """The diagnostics a CI format lists: every one but suppressed follow-ons, in ``check``'s order."""
    return [d for d in diags if d.severity != SUPPRESSED]


def token_end(line: str | None, col: int) -> int | None:
    """The column just past the token starting at ``col`` of ``line`` (1-based), or None if unknown."""
    if line is None or col < 1 or col > len(line) + 1:
        return None
    m = _TOKEN.match(line, col - 1)
    return col + (len(m.group()) if m else (1 if col <= len(line) else 0))


def end_of(loc: Loc, sources: SourceCache) -> tuple[int, int] | None:
    """``(end line, end column)`` of a location: its own end when it has one, else its token's."""
    end_line, end_col = getattr(loc, "end_line", None), getattr(loc, "end_col", None)
    if isinstance(end_line, int) and isinstance(end_col, int) and end_line >= loc.line:
        return end_line, end_col
    end = token_end(sources.line(loc.file, loc.line), loc.col)
    return None if end is None else (loc.line, end)


def located(loc: Loc) -> bool:
    """True when ``loc`` is a position in a file (not ``<unknown>``, the command line or a pipe)."""
    return loc.line >= 1 and bool(loc.file) and not loc.file.startswith("<")


def relative_path(file: str) -> str | None:
    """``file`` relative to the working directory with ``/`` separators, or None when it lies outside."""
    path = Path(file)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return None
    parts = PurePath(os.path.normpath(path)).parts
    return None if not parts or parts[0] == ".." else "/".join(parts)


def full_message(d: Diagnostic) -> str:
    """The message with its module path, notes, secondary labels and hint, one per line."""
    lines = [d.message]
    if d.path:
        lines.append(f"in: {d.path}")
    lines += [f"note: {lb.message} ({lb.loc})" for lb in d.labels]
    lines += [f"note: {n}" for n in (*d.notes, d.instance_note()) if n]
    if d.hint:
        lines.append(f"hint: {d.hint}")
    return visible("\n".join(lines))


# ------------------------------------------------------------------------------ GitHub


def escape_data(text: str) -> str:
    """Escape a workflow command's message as actions/toolkit's ``escapeData`` does."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value as actions/toolkit's ``escapeProperty`` does."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_command(d: Diagnostic, sources: SourceCache) -> str:
    """One diagnostic as a workflow command (``::error file=...::message``)."""
    props: list[tuple[str, object]] = []
    file = relative_path(d.loc.file) if located(d.loc) else None
    if file is not None:
        props += [("file", file), ("line", d.loc.line), ("col", d.loc.col)]
        end = end_of(d.loc, sources)
        if end is not None:
            props += [("endLine", end[0]), ("endColumn", end[1])]
    props.append(("title", f"archdsl {d.code}"))
    head = ",".join(f"{k}={escape_property(visible(str(v)))}" for k, v in props)
    return f"::{_GITHUB_LEVEL[d.severity]} {head}::{escape_data(full_message(d))}"


def format_github(diags: Sequence[Diagnostic], sources: SourceCache) -> str:
    """Every listed diagnostic as a workflow command, one per line ("" when there are none)."""
    return "\n".join(github_command(d, sources) for d in shown(diags))


# ------------------------------------------------------------------------------ SARIF


def code_description(code: str) -> tuple[str, str]:
    """``(short, full)`` description of a diagnostic code, from the docs tables or the rule registry."""
    from .code_descriptions_generated import DESCRIPTIONS
    from .rules.registry import all_rules

    rules = {r.code: r for r in all_rules()}
    if code in rules:
        return rules[code].summary, rules[code].rationale
    if code in CONFIG_CODES:
        return CONFIG_CODES[code], CONFIG_CODES[code]
    if code in DESCRIPTIONS:
        return DESCRIPTIONS[code]
    return code, code


def parse_code_table(markdown: str) -> dict[str, tuple[str, str]]:
    """``{code: (short, full)}`` from the ``| CODE | meaning | example |`` rows of docs/diagnostics.md."""
    out: dict[str, tuple[str, str]] = {}
    for m in re.finditer(r"^\| ([EWI][0-9]{3}) \| (.+?) \|", markdown, re.M):
        full = re.sub(r"``\s?(.*?)\s?``", r"\1", m.group(2)).replace("`", "").strip()
        short = re.split(r" \(|; |\. ", full, maxsplit=1)[0].strip().rstrip(".")
        out.setdefault(m.group(1), (short, full))
    return dict(sorted(out.items()))


def render_code_table(table: dict[str, tuple[str, str]]) -> str:
    """The source of :mod:`archdsl.code_descriptions_generated` for ``table``."""
    lines = ['"""Short and full descriptions of the diagnostic codes, generated from docs/diagnostics.md.',
             "",
             "Do not edit: tests/test_ci_formats.py regenerates it with ARCHDSL_UPDATE_GOLDEN=1 (the docs are",
             'not installed with the package, SARIF output needs the descriptions)."""',
             "", "DESCRIPTIONS: dict[str, tuple[str, str]] = {"]
    lines += [f"    {code!r}: ({short!r},\n             {full!r})," for code, (short, full) in table.items()]
    return "\n".join(lines + ["}", ""])


def _artifact(loc: Loc, sources: SourceCache) -> dict:
    """A SARIF physicalLocation for ``loc`` (relative to %SRCROOT% when under the working directory)."""
    rel = relative_path(loc.file)
    artifact = {"uri": quote(rel), "uriBaseId": SRCROOT} if rel is not None else \
        {"uri": Path(loc.file).resolve().as_uri()}
    region: dict[str, int] = {"startLine": loc.line, "startColumn": max(loc.col, 1)}
    end = end_of(loc, sources)
    if end is not None:
        region.update(endLine=end[0], endColumn=max(end[1], region["startColumn"]))
    return {"artifactLocation": artifact, "region": region}


def sarif_result(d: Diagnostic, rule_index: int, sources: SourceCache) -> dict:
    """One diagnostic as a SARIF result."""
    result: dict = {"ruleId": d.code, "ruleIndex": rule_index, "level": _SARIF_LEVEL[d.severity],
                    "message": {"text": full_message(d)}}
    if located(d.loc):
        location: dict = {"physicalLocation": _artifact(d.loc, sources)}
        if d.path:
            location["logicalLocations"] = [{"fullyQualifiedName": d.path, "kind": "module"}]
        result["locations"] = [location]
    related = [{"id": i, "physicalLocation": _artifact(lb.loc, sources), "message": {"text": visible(lb.message)}}
               for i, lb in enumerate((lb for lb in d.labels if located(lb.loc)), 1)]
    if related:
        result["relatedLocations"] = related
    return result


def sarif_log(diags: Sequence[Diagnostic], sources: SourceCache) -> dict:
    """The SARIF 2.1.0 log of a ``check`` run: one run, its rules (the codes used) and results."""
    from . import __version__

    listed = shown(diags)
    codes = sorted({d.code for d in listed})
    index = {code: i for i, code in enumerate(codes)}
    rules = []
    for code in codes:
        short, full = code_description(code)
        level = _SARIF_LEVEL[next(d.severity for d in listed if d.code == code)]
        rules.append({"id": code, "shortDescription": {"text": short}, "fullDescription": {"text": full},
                      "defaultConfiguration": {"level": level}})
    driver = {"name": "archdsl", "version": __version__, "semanticVersion": __version__, "rules": rules}
    run = {"tool": {"driver": driver},
           "originalUriBaseIds": {SRCROOT: {"uri": Path.cwd().as_uri().rstrip("/") + "/"}},
           "columnKind": "unicodeCodePoints",
           "results": [sarif_result(d, index[d.code], sources) for d in listed]}
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def format_sarif(diags: Sequence[Diagnostic], sources: SourceCache) -> str:
    """The SARIF log as indented JSON."""
    return json.dumps(sarif_log(diags, sources), indent=2, ensure_ascii=False)
