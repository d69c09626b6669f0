"""Result export: the AI Challenge submission CSVs and JSON.

AI Challenge format (../shared/contest/AIC_DATA.md): one line per hit, no header, at most 100
lines, best first. KIS: `video_id,frame_idx`; QA: `video_id,frame_idx,answer`, the one answer on
every line; TRAKE: `video_id,frame1,frame2,...,frameN`, one frame per event. A video_id holding
a comma or a quote would change the rows' fields, so such a file is refused (rename it); other ids are
written as search/printable.py's `csv_cell` says (control characters and undecodable bytes escaped,
an apostrophe before a formula: an id is a file name, and a file named like a formula is an
attack on whoever opens the CSV). The QA answer is the user's own words for the contest's grader:
it is written exactly as typed (`-1` stays `-1`), quoted by CSV's rules (RFC 4180) where it holds
a comma or a quote. The JSON export keeps any id exactly.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Sequence

from evr.search import Hit, QueryError
from evr.search.printable import csv_cell, json_text, printable

AIC_MAX_LINES = 100


def aic_csv(hits: Sequence[Hit], limit: int = AIC_MAX_LINES) -> str:
    """KIS lines, or TRAKE lines for temporal hits (their chains' frames)."""
    lines = []
    for h in hits[: min(limit, AIC_MAX_LINES)]:
        lines.append(",".join([_video_cell(h), *(str(event.frame_idx) for event in h.chain)]))
    return "".join(line + "\n" for line in lines)


def aic_qa_csv(hits: Sequence[Hit], answer: str, limit: int = AIC_MAX_LINES) -> str:
    """QA lines: `video_id,frame_idx,answer` (a temporal hit answers with its first event)."""
    answer = " ".join(answer.split())
    if not answer:
        raise QueryError("a QA file needs an answer")
    if printable(answer) != answer:
        raise QueryError(f"a QA answer cannot hold control characters or reordering marks: {printable(answer)}")
    cell = io.StringIO()
    csv.writer(cell, lineterminator="").writerow([answer])  # quoted only where it must be
    return "".join(f"{_video_cell(h)},{h.frame_idx},{cell.getvalue()}\n" for h in hits[: min(limit, AIC_MAX_LINES)])


def _video_cell(h: Hit) -> str:
    if any(c in h.video_id for c in ',"'):
        raise QueryError(
            f"video_id {printable(h.video_id)} (of {printable(h.video_path)}) holds a comma or a "
            "quote, which an AI Challenge CSV cannot carry: rename the file and index it again, "
            "or export JSON"
        )
    return csv_cell(h.video_id)


def file_stem(name: str, fallback: str = "answers") -> str:
    """A file name (no extension) from a user's name for it or a query's text: lower-case ASCII
    words joined by '-', at most 60 characters ('Lũ lụt ở Huế' -> 'lu-lut-o-hue')."""
    ascii_text = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    ascii_text = ascii_text.encode("ascii", "ignore").decode().lower()
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:60].strip("-")
    return stem or fallback


def hits_json(hits: Sequence[Hit]) -> str:
    return json_text([h.to_json() for h in hits]) + "\n"


# Each format: how hits (and a QA answer) are written, and what it is (`evr search --export
# FORMAT` offers each).
EXPORTS = {
    "aic": (
        lambda hits, answer: aic_csv(hits),
        "an AI Challenge KIS CSV: video_id,frame_idx (TRAKE: video_id,frame1,frame2,...), at most 100 lines",
    ),
    "qa": (aic_qa_csv, "an AI Challenge QA CSV: video_id,frame_idx,answer with --answer, at most 100 lines"),
    "json": (lambda hits, answer: hits_json(hits), "the hits' JSON, as --json prints it"),
}
FORMATS = tuple(EXPORTS)


def export(hits: Sequence[Hit], fmt: str, answer: str = "") -> str:
    if fmt not in EXPORTS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return EXPORTS[fmt][0](hits, answer)
