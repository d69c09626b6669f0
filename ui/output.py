"""What the command line prints: results on stdout, messages on stderr, every line through one
escaping rule (search/printable.py), and the exit codes."""

from __future__ import annotations

import sys

from evr.search.printable import json_text, printable

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_MODEL = 0, 1, 2, 3


def say(*values, file=None) -> None:
    """Print a line, results and messages alike: file names and the texts of files, packages
    and servers are untrusted."""
    print(*(printable(v) for v in values), file=file)


def fail(message: str, code: int) -> int:
    say(f"evr: error: {message}", file=sys.stderr)
    return code


def print_json(obj) -> None:
    sys.stdout.write(json_text(obj) + "\n")


def clock_text(seconds: float) -> str:
    """A time as the command line shows it: m:ss.s (search/summary.py's clock)."""
    from evr.search.summary import clock

    return clock(seconds, 1)
