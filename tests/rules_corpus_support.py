"""The design-rule corpus (``tests/rules/``): header parsing, finding matching, fixes and scores.

Each corpus file is a small spec whose leading comment lines label it (``tests/rules/README.md`` is
the format).  This module turns a file into a :class:`Case`, runs the rules on it
(:func:`findings`), matches the findings with the labels (:func:`match`), applies the fix a bad
case prescribes (:func:`apply_fixes`) and scores the whole corpus per rule (:func:`score`).
``tests/test_rules_corpus.py`` holds the tests; nothing here asserts.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archdsl.diagnostics import WARNING, Diagnostic
from archdsl.pipeline import Analysis, analyze
from archdsl.rules import RuleRequest, lint

#: The corpus folder; ``ARCHDSL_RULES_CORPUS=DIR`` runs the corpus tests on another one (with its own
#: ``bad/`` and ``good/``), e.g. to try new cases before adding them.
CORPUS = Path(os.environ.get("ARCHDSL_RULES_CORPUS") or Path(__file__).resolve().parent / "rules").resolve()
SUFFIXES = (".arch", ".yaml", ".yml")
DIRECTIVES = ("expect", "fix", "remains", "why", "source")


class CorpusFormatError(Exception):
    """A corpus file whose header does not follow tests/rules/README.md."""


class FixError(Exception):
    """A fix that cannot be applied (OLD not found once, a missing evidence key, a failed transform)."""


# ---------------------------------------------------------------------------------- the header


@dataclass(frozen=True)
class Expect:
    """One ``# expect:`` line: a finding the rules must produce (``count`` times at that place)."""

    code: str
    line: int | None = None
    col: int | None = None
    count: int = 1
    header_line: int = 0

    def where(self) -> str:
        """``R301 @ 17:41`` as written (without the count)."""
        if self.line is None:
            return self.code
        return f"{self.code} @ {self.line}" + (f":{self.col}" if self.col is not None else "")

    def accepts(self, d: Diagnostic) -> bool:
        """Does finding ``d`` satisfy this expectation (code, and line/col when given)?"""
        return (d.code == self.code and (self.line is None or d.loc.line == self.line)
                and (self.col is None or d.loc.col == self.col))


@dataclass(frozen=True)
class Fix:
    """One ``# fix:`` line: ``replace`` (old -> new), ``transform`` (factorize kinds) or ``none``."""

    kind: str
    old: str = ""
    new: str = ""
    factorize: str = ""
    reason: str = ""
    header_line: int = 0


@dataclass
class Case:
    """A corpus file and its labels."""

    path: Path
    verdict: str                        # "bad" or "good"
    expects: list[Expect] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)
    remains: Counter = field(default_factory=Counter)
    source: str = ""
    why: str = ""
    header_lines: int = 0               # how many leading lines the header spans

    @property
    def name(self) -> str:
        """``bad/r301_5x5.arch``: the id the tests use."""
        return f"{self.verdict}/{self.path.name}"

    @property
    def no_fix_reason(self) -> str | None:
        """The reason of ``# fix: none (reason)``, or None when the case has a real fix."""
        for f in self.fixes:
            if f.kind == "none":
                return f.reason
        return None


_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][\w-]*)\s*:\s*(.*?)\s*$")
_EXPECT = re.compile(r"^(?P<code>R\d{3})(?:\s*@\s*(?P<line>\d+)(?::(?P<col>\d+))?)?"
                     r"(?:\s*[x×]\s*(?P<count>\d+))?(?:\s+(?:\(.*\)|--.*|—.*))?$")
_REPLACE = re.compile(r"^replace\s*<<(?P<old>.*?)>>\s*with\s*<<(?P<new>.*)>>$")
_TRANSFORM = re.compile(r"^transform\s+--factorize(?:=|\s+)(?P<kinds>\S+)$")
_NONE = re.compile(r"^none\s*\((?P<reason>.*\S.*)\)$")
_CODE = re.compile(r"^R\d{3}$")


def header_length(lines: list[str]) -> int:
    """Lines of the header: the leading comment (and blank) lines, up to the first other line."""
    n = 0
    for i, raw in enumerate(lines):
        s = raw.strip()
        if s and not s.startswith("#"):
            return i
        n = i + 1
    return n


def _unescape(text: str) -> str:
    r"""``\n`` in a fix stands for a line break, ``\\`` for a backslash."""
    return re.sub(r"\\(\\|n)", lambda m: "\n" if m.group(1) == "n" else "\\", text)


def parse_case(path: Path) -> Case:
    """Read ``path``'s header into a :class:`Case`; :class:`CorpusFormatError` on a malformed one."""
    verdict = path.parent.name
    if verdict not in ("bad", "good"):
        raise CorpusFormatError(f"{path}: a corpus file lives in tests/rules/bad or tests/rules/good")
    lines = path.read_text(encoding="utf-8").splitlines()
    n = header_length(lines)
    case = Case(path, verdict, header_lines=n)
    problems: list[str] = []
    for i, raw in enumerate(lines[:n], start=1):
        m = _DIRECTIVE.match(raw.strip())
        if m is None:
            continue
        key, value = m.group(1).lower(), m.group(2)
        if key not in DIRECTIVES:
            if any(key.startswith(d[:5]) for d in ("expect", "fix", "remains")) or key in ("expected", "fixes"):
                problems.append(f"line {i}: unknown directive '# {m.group(1)}:' (one of: {', '.join(DIRECTIVES)})")
            continue                    # free text such as "# Figure 5: ..."
        if key == "expect":
            e = _EXPECT.match(value)
            if e is None:
                problems.append(f"line {i}: '# expect: {value}' is not 'CODE', 'CODE @ LINE' or 'CODE @ LINE:COL' "
                                "(optionally 'x N')")
                continue
            case.expects.append(Expect(e.group("code"), int(e.group("line")) if e.group("line") else None,
                                       int(e.group("col")) if e.group("col") else None,
                                       int(e.group("count") or 1), i))
        elif key == "fix":
            if (f := _REPLACE.match(value)) is not None:
                case.fixes.append(Fix("replace", old=_unescape(f.group("old")), new=_unescape(f.group("new")),
                                      header_line=i))
                if not f.group("old"):
                    problems.append(f"line {i}: the OLD text of a fix is empty")
            elif (f := _TRANSFORM.match(value)) is not None:
                case.fixes.append(Fix("transform", factorize=f.group("kinds"), header_line=i))
            elif (f := _NONE.match(value)) is not None:
                case.fixes.append(Fix("none", reason=f.group("reason").strip(), header_line=i))
            else:
                problems.append(f"line {i}: '# fix: {value}' is not 'replace <<OLD>> with <<NEW>>', "
                                "'transform --factorize=KINDS' or 'none (reason)'")
        elif key == "remains":
            for code in value.replace(",", " ").split():
                if not _CODE.match(code):
                    problems.append(f"line {i}: '# remains: {value}' must list rule codes")
                case.remains[code] += 1
        elif key == "source":
            case.source = (case.source + " " + value).strip()
        else:
            case.why = (case.why + " " + value).strip()
    # a directive below the header would be silently ignored: refuse it
    for i, raw in enumerate(lines[n:], start=n + 1):
        m = _DIRECTIVE.match(raw.strip())
        if m is not None and m.group(1).lower() in ("expect", "fix", "remains"):
            problems.append(f"line {i}: '# {m.group(1)}:' below the header (which ends at line {n}) is ignored; "
                            "move it up")
    if verdict == "bad":
        if not case.expects:
            problems.append("a bad case needs at least one '# expect: CODE' line")
        if any(f.kind == "none" for f in case.fixes) and len(case.fixes) > 1:
            problems.append("'# fix: none (...)' cannot be combined with other fixes")
    else:
        if case.expects or case.fixes or case.remains:
            problems.append("a good case has no '# expect:', '# fix:' or '# remains:' lines (it must stay silent)")
        if not case.source:
            problems.append("a good case names its design's origin: '# source: <paper, section/figure>'")
    if problems:
        raise CorpusFormatError(f"{path}: malformed corpus header:\n  " + "\n  ".join(problems))
    return case


def corpus_files(verdict: str, root: Path = CORPUS) -> list[Path]:
    """The corpus files of one verdict, sorted by name (README.md and other files excluded)."""
    d = root / verdict
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix in SUFFIXES) if d.is_dir() else []


# ---------------------------------------------------------------------------------- running the rules


def analyse(path: Path | str, search_paths: tuple[str, ...] = ()) -> tuple[Analysis, list[Diagnostic]]:
    """Analyse a spec and run every rule on it (pyproject settings ignored); findings sorted."""
    res = analyze(str(path), search_paths=search_paths)
    return res, sorted(lint(res, RuleRequest(use_pyproject=False)), key=Diagnostic.sort_key)


def analysis_errors(res: Analysis) -> list[str]:
    """The analysis errors of ``res`` as ``line:col CODE message`` lines (empty when it analysed)."""
    errs = [f"{d.loc.line}:{d.loc.col} {d.code} {d.message}" for d in res.diags.sorted() if d.is_error]
    if not errs and res.graph is None:
        errs = ["no network (a library of blocks?)"]
    return errs


def show(ds: Iterable[Diagnostic]) -> str:
    """Findings one per line: ``  warning R301 @ 17:41 inception3a.branch3.1.conv: message``."""
    rows = [f"  {d.severity} {d.code} @ {d.loc.line}:{d.loc.col} {d.path}: {d.message}" for d in ds]
    return "\n".join(rows) if rows else "  (none)"


def show_expects(expects: Iterable[Expect]) -> str:
    """Expectations one per line, as the header writes them."""
    rows = [f"  {e.where()}" + (f" x{e.count}" if e.count > 1 else "") for e in expects]
    return "\n".join(rows) if rows else "  (none)"


@dataclass
class Match:
    """How a case's findings line up with its expectations."""

    matched: list[tuple[Expect, Diagnostic]]    # one pair per expected finding found
    missing: list[Expect]                        # expected findings not found (count 1 each)
    unexpected: list[Diagnostic]                 # warnings no expectation accounts for

    @property
    def ok(self) -> bool:
        """Every expected finding found, no unexpected warning."""
        return not self.missing and not self.unexpected


def match(expects: list[Expect], found: list[Diagnostic]) -> Match:
    """Pair expectations with findings, each finding used once; located expectations first.

    An expectation ``x N`` needs N findings.  Left-over *warnings* are unexpected; left-over infos
    are not (infos are only checked when expected)."""
    pool = list(found)
    matched: list[tuple[Expect, Diagnostic]] = []
    missing: list[Expect] = []
    order = sorted(expects, key=lambda e: (e.line is None, e.col is None, e.header_line))
    for e in order:
        for _ in range(e.count):
            hit = next((d for d in pool if e.accepts(d)), None)
            if hit is None:
                missing.append(e)
            else:
                pool.remove(hit)
                matched.append((e, hit))
    matched.sort(key=lambda p: p[0].header_line)
    return Match(matched, missing, [d for d in pool if d.severity == WARNING])


# ---------------------------------------------------------------------------------- fixes


def spec_literal(v: Any) -> Any:
    """Evidence values as archdsl literals when formatted: lists ``[5, 5]``, strings in lists quoted."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, (list, tuple)):
        return SpecList(spec_literal(x) for x in v)
    return v


class SpecList(list):
    """A list that formats as an archdsl list literal (``[1, 7]``, ``["3x3", "3x3"]``)."""

    def __str__(self) -> str:
        return "[" + ", ".join(f'"{x}"' if isinstance(x, str) else str(x) for x in self) + "]"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class Evidence(dict):
    """The evidence of a finding, for ``str.format_map``: a missing key is a :class:`FixError`."""

    def __init__(self, code: str, evidence: Mapping[str, Any]) -> None:
        super().__init__({k: spec_literal(v) for k, v in evidence.items()})
        self.code = code

    def __missing__(self, key: str) -> Any:
        raise FixError(f"the fix uses {{{key}}}, which is not in the evidence of {self.code}; "
                       f"it has: {', '.join(sorted(self)) or '(no evidence)'}")


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_]\w*(?:\[\d+\])*(?::[^{}]*)?)\}")


def fill(template: str, evidence: Evidence) -> str:
    """Fill ``{name}``, ``{name[0]}`` and ``{name:fmt}`` from the evidence.

    Other braces (the spec's own groups, ``{ conv2d(8, 1) }``) are left as they are; ``{{`` and
    ``}}`` stand for a literal brace where a group would otherwise look like a placeholder."""
    def one(m: re.Match) -> str:
        if m.group(1) is None:
            return m.group(0)[0]
        return ("{" + m.group(1) + "}").format_map(evidence)
    return _PLACEHOLDER.sub(one, template)


def replace_once(text: str, header_lines: int, old: str, new: str) -> str:
    """Replace the single occurrence of ``old`` below the header (where the fix lines themselves sit)."""
    lines = text.splitlines(keepends=True)
    head, body = "".join(lines[:header_lines]), "".join(lines[header_lines:])
    n = body.count(old)
    if n != 1:
        raise FixError(f"the fix's OLD text <<{old}>> occurs {n} times below the header; it must occur exactly once")
    return head + body.replace(old, new, 1)


def run_transform(text: str, suffix: str, kinds: str, workdir: Path, step: int,
                  search_paths: tuple[str, ...]) -> str:
    """``archdsl transform --factorize=KINDS`` on ``text`` (in process), returning what it writes."""
    from cli_support import run

    src = workdir / f"before_transform_{step}{suffix}"
    out = workdir / f"after_transform_{step}{suffix}"
    src.write_text(text, encoding="utf-8")
    argv = ["transform", str(src), f"--factorize={kinds}", "-o", str(out)]
    for sp in search_paths:
        argv += ["--search-path", sp]
    rc, stdout, stderr = run(*argv)
    if rc != 0 or not out.is_file():
        raise FixError(f"`archdsl {' '.join(argv)}` failed (exit {rc}):\n{stdout}{stderr}")
    return out.read_text(encoding="utf-8")


def apply_fixes(case: Case, text: str, first: Diagnostic | None, workdir: Path) -> str:
    """The case's text after every ``# fix:`` step, in order (``first``: the first expected finding)."""
    evidence = Evidence(first.code if first else "(no finding)", first.evidence if first else {})
    header = case.header_lines
    for step, f in enumerate(case.fixes):
        if f.kind == "replace":
            text = replace_once(text, header, f.old, fill(f.new, evidence))
        elif f.kind == "transform":
            text = run_transform(text, case.path.suffix, f.factorize, workdir, step, (str(case.path.parent),))
            header = header_length(text.splitlines())   # the printer drops comments
        else:
            raise FixError(f"'# fix: none ({f.reason})' has nothing to apply")
    return text


# ---------------------------------------------------------------------------------- scores


@dataclass
class Score:
    """True positives, false positives and false negatives of one rule over the corpus."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        """TP / (TP + FP), None when the rule found nothing."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """TP / (TP + FN), None when no case expects the rule."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def score(results: Iterable[tuple[Case, Match | None, list[Diagnostic]]], codes: Iterable[str]) -> dict[str, Score]:
    """Per rule: a TP per expected finding found, a FN per one missed, a FP per unexpected warning.

    ``results``: each case, its match (None for a good case) and its findings.  Every warning on a
    good case is a FP."""
    out: dict[str, Score] = {c: Score() for c in codes}
    for _case, m, found in results:
        if m is None:
            for d in found:
                if d.severity == WARNING:
                    out.setdefault(d.code, Score()).fp += 1
            continue
        for e, _ in m.matched:
            out.setdefault(e.code, Score()).tp += 1
        for e in m.missing:
            out.setdefault(e.code, Score()).fn += 1
        for d in m.unexpected:
            out.setdefault(d.code, Score()).fp += 1
    return dict(sorted(out.items()))


def score_table(scores: Mapping[str, Score], n_bad: int, n_good: int) -> str:
    """The per-rule table the corpus test prints."""
    def ratio(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f}"
    rows = [("rule", "TP", "FP", "FN", "precision", "recall")]
    rows += [(c, str(s.tp), str(s.fp), str(s.fn), ratio(s.precision), ratio(s.recall)) for c, s in scores.items()]
    tot = Score(sum(s.tp for s in scores.values()), sum(s.fp for s in scores.values()),
                sum(s.fn for s in scores.values()))
    rows.append(("all", str(tot.tp), str(tot.fp), str(tot.fn), ratio(tot.precision), ratio(tot.recall)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"design-rule corpus: {n_bad} bad, {n_good} good designs"]
    for i, r in enumerate(rows):
        if i == len(rows) - 1:
            lines.append("  ".join("-" * w for w in widths))
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"
