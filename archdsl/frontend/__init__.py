"""Front ends: the text language (lark) and YAML, both producing :mod:`archdsl.ast`."""

from __future__ import annotations

from .loader import load_spec_file, parse_source

__all__ = ["load_spec_file", "parse_source"]
