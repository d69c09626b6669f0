"""One rule for writing untrusted text where a person or a program reads it: a terminal, a log,
a CSV cell, a JSON document. File names, on-screen text, transcripts, a package's media-info and
a contest server's words are all untrusted: a name may hold an escape sequence that a terminal
obeys, a line break that splits a hit over two lines, or bytes that are not UTF-8 at all (Python
keeps those as surrogate escapes, PEP 383, which no UTF-8 output can carry).

- `printable`: what a terminal would act on is made visible; everything else, accents and other
  scripts included, stays as it is.
- `csv_cell`: `printable`, and a cell that a spreadsheet would take for a formula starts with
  an apostrophe (OWASP's rule for CSV injection).
- `json_text`: JSON that keeps every value exactly: a name's undecodable bytes become \\udcXX
  escapes, which Python's json reads back to the same string (os.fsencode then gives the bytes).
  Strict JSON (RFC 8259): a NaN or an infinity is a ValueError here, never written; numbers are
  checked finite where they enter (settings, imported files), so none should reach it.
"""

from __future__ import annotations

import json
import re

# C0 controls, DEL and C1 controls (a terminal acts on them), marks that reorder the text shown
# around them (bidirectional overrides and isolates), and surrogates (undecodable bytes).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_FORMULA = ("=", "+", "-", "@")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    c = match.group()
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a name that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if c in _SHORT:
        return _SHORT[c]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object) -> str:
    """`text` as one line that shows what it holds: control characters as \\n, \\r, \\t or \\xNN,
    reordering marks as \\uNNNN, a file name's undecodable bytes as \\xNN."""
    return _UNSAFE.sub(_escape, str(text))


def csv_cell(text: object) -> str:
    """`printable(text)`, starting with an apostrophe where it would start a formula."""
    cell = printable(text)
    return "'" + cell if cell.startswith(_FORMULA) else cell


def json_text(value, indent: int | None = 2) -> str:
    """`value` as JSON text (UTF-8 characters as they are), any surrogate escaped as \\uXXXX."""
    dumped = json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=False)  # NaN is not JSON
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)
