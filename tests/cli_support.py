"""Running the ``archdsl`` command line in process, for the tests of every command."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

from archdsl.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    """``archdsl ARGV`` in process: (exit code, stdout, stderr); argparse's exits count as exit codes."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main(list(argv))
        except SystemExit as exc:  # argparse usage errors and --help
            rc = exc.code if isinstance(exc.code, int) else 2
    return rc, out.getvalue(), err.getvalue()


#: One warning (W122, line 3, with a hint) and one error (E204, line 4, with '= in:' and a hint); the
#: design rules do not run on a spec with errors.  Shared by the CLI output tests.
BROKEN_SPEC = """
    network t
    input 3x8x8
    block Unused(c) { relu }
    conv2d(4, 3) -> conv2d(4, 9)
    """
