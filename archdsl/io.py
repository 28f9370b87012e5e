"""Atomic output: a failed command never leaves a partial or clobbered file; a successful one says
``wrote PATH`` once, on stderr."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        # mkstemp creates the file 0600; give it the mode an ordinary open() would (or the mode of
        # the file it replaces) so that atomicity does not change permissions.
        os.chmod(tmp, _target_mode(target))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _target_mode(target: Path) -> int:
    """The permission bits the output should have: the existing file's, else 0666 minus the umask."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def report_written(path: str | os.PathLike, detail: str = "") -> None:
    """Print the one line every command that writes a file ends with: ``wrote PATH`` or ``wrote PATH
    (detail)``, on stderr so that stdout carries only what a command prints as its output.

    Non-printable characters are escaped: a path or a detail may come from an untrusted spec, and a
    control sequence in it must not reach the terminal."""
    from .cli import is_quiet  # -q: a command prints only errors (cli is loaded whenever a command runs)

    if is_quiet():
        return
    line = f"wrote {os.fspath(path)}" + (f" ({detail})" if detail else "")
    print("".join(c if c.isprintable() else ascii(c)[1:-1] for c in line), file=sys.stderr)
