"""Colour for the command line's diagnostics: ANSI styles laid over the plain text.

The text is what :func:`archdsl.diagnostics.format_text` and the listing lines produce, unchanged
but for the escape codes, so the coloured and the plain forms never drift apart.  Plain SGR codes,
no dependency.  The command line imports this module only when :func:`archdsl.cli.wants_color`
says yes, so a run without colour pays nothing for it.
"""

from __future__ import annotations

import re

RESET = "\x1b[0m"
BOLD = "\x1b[1m"
#: One style per severity, used for ``severity[CODE]``, the carets and the non-zero counts.
SEVERITY_STYLE = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "info": "\x1b[1;36m"}
#: The ``= in:``, ``= hint:`` and ``= note:`` prefixes.
LABEL_STYLE = {"in": "\x1b[1;34m", "hint": "\x1b[1;32m", "note": "\x1b[1;34m"}
OK_STYLE = "\x1b[1;32m"

_HEAD = re.compile(r"^(?P<loc>.*?:\d+:\d+): (?P<sev>error|warning|info)(?P<code>\[[^\]\s]*\]):(?= |$)")
_LABEL = re.compile(r"^(?P<indent>\s+)= (?P<label>in|hint|note):")
_CARETS = re.compile(r"^(?P<lead>[ \t]*)(?P<marks>[\^~-]+)")
_COUNT = re.compile(r"\b(?P<n>\d+) (?P<sev>error|warning|info)s?\b")


def _style(text: str, style: str) -> str:
    return f"{style}{text}{RESET}" if text else text


def paint_diagnostic(text: str) -> str:
    """``format_text``'s rendering of one diagnostic, coloured.

    The head's location is bold and ``severity[CODE]`` in the severity's colour; source lines are
    left alone; the ``= in:``/``= hint:``/``= note:`` prefixes are coloured.  Source and caret lines
    come in pairs, after the head (the primary location: carets in the severity's colour) and after
    an ``= note:`` line that names a secondary location (carets in the note's colour).
    """
    lines = text.split("\n")
    head = _HEAD.match(lines[0])
    if head is None:  # not a diagnostic head: leave the text as it is
        return text
    caret_style = sev_style = SEVERITY_STYLE[head["sev"]]
    out = [f"{_style(head['loc'], BOLD)}: {_style(head['sev'] + head['code'], sev_style)}:"
           f"{lines[0][head.end():]}"]
    excerpt = 0   # lines since the head or the last '= ' line: a source line, then its caret line
    for line in lines[1:]:
        label = _LABEL.match(line)
        if label is not None:
            excerpt, caret_style = 0, LABEL_STYLE["note"]
            out.append(f"{label['indent']}{_style('= ' + label['label'] + ':', LABEL_STYLE[label['label']])}"
                       f"{line[label.end():]}")
            continue
        out.append(_paint_carets(line, caret_style) if excerpt % 2 == 1 else line)
        excerpt += 1
    return "\n".join(out)


def _paint_carets(line: str, style: str) -> str:
    """The marks of a caret line (``^``, ``~``, ``-``) coloured; a label after them stays plain."""
    match = _CARETS.match(line)
    if match is None:
        return line
    return f"{match['lead']}{_style(match['marks'], style)}{line[match.end():]}"


def paint_counts(text: str) -> str:
    """The closing line (``1 error, 2 warnings, 0 infos``) or the ``not shown`` line: every
    non-zero count in its severity's colour."""
    def one(m: re.Match[str]) -> str:
        return m[0] if m["n"] == "0" else _style(m[0], SEVERITY_STYLE[m["sev"]])
    return _COUNT.sub(one, text)


def paint_ok(text: str) -> str:
    """``ok: 3 specs checked`` with ``ok`` in green."""
    head, sep, rest = text.partition(":")
    return f"{_style(head, OK_STYLE)}{sep}{rest}" if sep else text


def paint_error_prefix(text: str) -> str:
    """``archdsl check: error: ...`` (a usage error the command reports itself) with ``error`` in red."""
    before, sep, after = text.partition(": error: ")
    return f"{before}: {_style('error', SEVERITY_STYLE['error'])}: {after}" if sep else text
