"""Rule configuration: options, where they come from, and how they are validated.

Sources, later ones winning: the defaults below, the ``[tool.archdsl.rules]`` table of the nearest
``pyproject.toml`` above the spec, the spec's own ``rules(...)`` line (YAML: ``rules:``), and the
command line (``--select`` / ``--ignore``).  ``ignore`` lists accumulate across sources; ``select``
is replaced by the most specific source that sets it.  Every problem with an option is a located
error: ``R001`` unknown option (with a did-you-mean), ``R002`` bad value, ``R003`` unknown rule code.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import ast as A
from ..diagnostics import Diagnostic, DiagnosticError, Loc, did_you_mean
from ..expr import evaluate, show


class OptionError(Exception):
    """A bad option value; the message says what was expected."""


def _number(lo: float | None = None, hi: float | None = None, lo_open: bool = False,
            integer: bool = False) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            raise OptionError(f"expected {'an integer' if integer else 'a number'}, got {show(v)}")
        if lo is not None and (v <= lo if lo_open else v < lo):
            raise OptionError(f"must be {'>' if lo_open else '>='} {lo:g}, got {show(v)}")
        if hi is not None and v > hi:
            raise OptionError(f"must be <= {hi:g}, got {show(v)}")
        return float(v) if not integer else int(v)

    return check


def _grid(v: Any) -> tuple[int, int]:
    if (not isinstance(v, (tuple, list)) or len(v) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v) or v[0] > v[1]):
        raise OptionError(f"expected [low, high] grid sizes with 0 < low <= high, got {show(v)}")
    return (int(v[0]), int(v[1]))


def _codes(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = (v,)
    if not isinstance(v, (tuple, list)) or not all(isinstance(x, str) for x in v):
        raise OptionError(f"expected a list of rule codes such as [\"R301\", \"R4\"], got {show(v)}")
    return tuple(x.strip().upper() for x in v)


@dataclass(frozen=True)
class Option:
    """One configurable option: default, validator and what it means."""

    name: str
    default: Any
    check: Callable[[Any], Any]
    doc: str


OPTIONS: dict[str, Option] = {o.name: o for o in (
    Option("select", None, _codes, "only these rules (codes or prefixes: \"R3\" = every R3xx); default: all"),
    Option("ignore", (), _codes, "rules never reported (codes or prefixes)"),
    Option("bottleneck_factor", 4.0, _number(1, lo_open=True),
           "R101: largest allowed drop of the representation (per input pixel) from a peak to the next valley"),
    Option("expand_factor", 2.0, _number(1, lo_open=True),
           "R102: channel growth right after a pooling grid reduction that counts as pool-then-expand"),
    Option("reduce_min_channels", 64, _number(1, integer=True),
           "R201: input channels from which an unreduced k x k conv is expensive"),
    Option("reduce_ratio", 0.5, _number(0, 1, lo_open=True),
           "R201: width of the suggested 1x1 reduction, as a fraction of the input channels"),
    Option("reduce_min_saving", 0.25, _number(0, 1),
           "R201: report only when the reduction saves more than this fraction of the weights"),
    Option("bottleneck_min_channels", 256, _number(1, integer=True),
           "R202: output channels from which a two-3x3 residual body is compared with a bottleneck"),
    Option("grid", (12, 20), _grid,
           "R101/R302/R303: the medium grid range [low, high]; larger grids are 'early'"),
    Option("max_unnormalized_depth", 22, _number(1, integer=True),
           "R403: most weight layers in a row without batch normalization"),
    Option("max_plain_depth", 20, _number(1, integer=True),
           "R404: most weight layers in one plain chain (no shortcut or branch around them)"),
    Option("explosion_factor", 2.0, _number(1, lo_open=True),
           "R501: channel growth over consecutive pass-through concats that counts as an explosion"),
    Option("dense_bottleneck_factor", 4.0, _number(0, lo_open=True),
           "R502: input channels per growth-rate channel above which a dense layer needs a 1x1 bottleneck"),
    Option("transition_theta", 0.5, _number(0, 1, lo_open=True),
           "R503: compression factor suggested for DenseNet transitions"),
)}

CONFIG_ERROR, BAD_VALUE, UNKNOWN_CODE = "R001", "R002", "R003"


@dataclass
class RuleRequest:
    """What the command line asks of the rules (``check --select/--ignore``); None = not given."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    use_pyproject: bool = True


class RuleUsageError(Exception):
    """A bad ``--select`` / ``--ignore`` value (a usage error: exit status 2)."""


def split_codes(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """``["R301,R302", "R4"]`` -> ``("R301", "R302", "R4")``; None stays None."""
    if values is None:
        return None
    out = []
    for v in values:
        out.extend(x.strip().upper() for x in v.split(",") if x.strip())
    return tuple(out)


def unknown_codes(codes: Sequence[str], known: Sequence[str]) -> list[tuple[str, str]]:
    """``(code, hint)`` for every pattern that is not a prefix of a known rule code."""
    bad = []
    for c in codes:
        if not re.fullmatch(r"R[0-9]{0,3}", c) or not any(k.startswith(c) for k in known):
            bad.append((c, did_you_mean(c, known) or f"known rules: {', '.join(known)}"))
    return bad


def request_from_cli(select: Sequence[str] | None, ignore: Sequence[str] | None) -> RuleRequest:
    """Validate ``--select`` / ``--ignore``; raises :class:`RuleUsageError` on an unknown code."""
    from .registry import all_rules

    known = [r.code for r in all_rules()]
    sel = split_codes(select)
    ign = split_codes(ignore) or ()
    for code, hint in unknown_codes(list(sel or ()) + list(ign), known):
        raise RuleUsageError(f"unknown rule code {code!r}" + (f" ({hint})" if hint else ""))
    return RuleRequest(sel, ign)


@dataclass
class Config:
    """Effective options for one spec, and the diagnostics produced while reading them."""

    values: dict[str, Any] = field(default_factory=lambda: {k: o.default for k, o in OPTIONS.items()})
    ignore: list[str] = field(default_factory=list)
    diags: list[Diagnostic] = field(default_factory=list)

    def enabled(self, code: str) -> bool:
        """Is rule ``code`` selected and not ignored?"""
        sel = self.values["select"]
        if sel is not None and not any(code.startswith(p) for p in sel):
            return False
        return not any(code.startswith(p) for p in self.ignore)

    def set(self, name: str, value: Any, loc: Loc, known_codes: Sequence[str]) -> None:
        """Validate and set one option; problems become located diagnostics."""
        opt = OPTIONS.get(name)
        if opt is None:
            hint = did_you_mean(name, OPTIONS) or f"options: {', '.join(OPTIONS)}"
            self.diags.append(Diagnostic(CONFIG_ERROR, f"unknown rules option '{name}'", loc, hint=hint))
            return
        try:
            checked = opt.check(value)
        except OptionError as exc:
            self.diags.append(Diagnostic(BAD_VALUE, f"rules option '{name}': {exc}", loc, hint=opt.doc))
            return
        if name in ("select", "ignore"):
            bad = unknown_codes(checked, known_codes)
            for code, hint in bad:
                self.diags.append(Diagnostic(UNKNOWN_CODE, f"unknown rule code '{code}' in '{name}'", loc,
                                             hint=hint))
            checked = tuple(c for c in checked if c not in {b for b, _ in bad})
            if bad and not checked:
                return  # nothing valid left: keep what was there (an empty select would silence every rule)
        if name == "ignore":
            self.ignore.extend(checked)
        else:
            self.values[name] = checked


def load_config(spec: A.SpecFile | None, spec_path: str, env: dict[str, Any], request: RuleRequest,
                known_codes: Sequence[str]) -> Config:
    """Merge defaults, pyproject, the spec's ``rules(...)`` and the command line."""
    cfg = Config()
    if request.use_pyproject:
        _apply_pyproject(cfg, spec_path, known_codes)
    if spec is not None:
        for arg in spec.rules:
            if arg.name is None:
                cfg.diags.append(Diagnostic(CONFIG_ERROR, "rules options are named: rules(name = value)", arg.loc,
                                            hint=f"options: {', '.join(OPTIONS)}"))
                continue
            try:
                value = evaluate(arg.value, env)
            except DiagnosticError as exc:
                cfg.diags.append(exc.diagnostic)
                continue
            cfg.set(arg.name, value, arg.loc, known_codes)
    if request.select is not None:
        cfg.values["select"] = tuple(request.select)
    cfg.ignore.extend(request.ignore)
    return cfg


# ---------------------------------------------------------------------------------- pyproject

_PYPROJECT_CACHE: dict[str, tuple[float, str, dict | None, str]] = {}


def find_pyproject(spec_path: str) -> Path | None:
    """The nearest ``pyproject.toml`` in the spec's directory or above."""
    d = Path(os.path.abspath(spec_path)).parent
    for cand in (d, *d.parents):
        p = cand / "pyproject.toml"
        if p.is_file():
            return p
    return None


def _read_pyproject(path: Path) -> tuple[dict | None, str, str]:
    """(table, text, error) for ``[tool.archdsl.rules]``; cached by mtime."""
    key = str(path)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None, "", ""
    hit = _PYPROJECT_CACHE.get(key)
    if hit and hit[0] == mtime:
        return hit[2], hit[1], hit[3]
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10 without tomllib
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            return None, "", ""
    text = ""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
        err = ""
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        data, err = {}, str(exc)
    table = data.get("tool", {}).get("archdsl", {}).get("rules") if isinstance(data, dict) else None
    if table is not None and not isinstance(table, dict):
        table, err = None, "[tool.archdsl] 'rules' must be a table"
    _PYPROJECT_CACHE[key] = (mtime, text, table, err)
    return table, text, err


def _key_loc(path: Path, text: str, key: str) -> Loc:
    """Where ``key = ...`` sits inside ``[tool.archdsl.rules]`` (line 1 when it cannot be found)."""
    in_table = False
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s.startswith("["):
            in_table = s.replace(" ", "") in ("[tool.archdsl.rules]",)
            continue
        m = re.match(r"\s*([A-Za-z0-9_\-\"']+)\s*=", line)
        if in_table and m and m.group(1).strip("\"'") == key:
            return Loc(str(path), i, m.start(1) + 1)
    return Loc(str(path), 1, 1)


def _apply_pyproject(cfg: Config, spec_path: str, known_codes: Sequence[str]) -> None:
    path = find_pyproject(spec_path)
    if path is None:
        return
    table, text, err = _read_pyproject(path)
    if err:
        cfg.diags.append(Diagnostic(BAD_VALUE, f"cannot read rule options from {path.name}: {err}",
                                    Loc(str(path), 1, 1)))
        return
    for key, value in (table or {}).items():
        if isinstance(value, list):
            value = tuple(value)
        cfg.set(key.replace("-", "_"), value, _key_loc(path, text, key), known_codes)
