"""Result export: the AI Challenge submission CSV and JSON.

AI Challenge format: one `video_id,frame_idx` per line, no header, at most 100 lines, best first;
temporal hits (TRAKE) as `video_id,frame1,frame2,...,frameN`, one frame per event. A video_id holding
a comma or a quote would change the rows' fields, so such a file is refused (rename it); other ids are
written as search/printable.py's `csv_cell` says (control characters and undecodable bytes escaped,
an apostrophe before a formula). The JSON export keeps any id exactly.
"""
from __future__ import annotations

from collections.abc import Sequence

from .errors import QueryError
from .hits import Hit
from .printable import csv_cell, json_text, printable

AIC_MAX_LINES = 100


def aic_csv(hits: Sequence[Hit], limit: int = AIC_MAX_LINES) -> str:
    lines = []
    for h in hits[: min(limit, AIC_MAX_LINES)]:
        if any(c in h.video_id for c in ',"'):
            raise QueryError(f"video_id {printable(h.video_id)} (of {printable(h.video_path)}) holds a comma or a "
                             "quote, which an AI Challenge CSV cannot carry: rename the file and index it again, "
                             "or export JSON")
        lines.append(",".join([csv_cell(h.video_id), *(str(event.frame_idx) for event in h.chain)]))
    return "".join(line + "\n" for line in lines)


def hits_json(hits: Sequence[Hit]) -> str:
    return json_text([h.to_json() for h in hits]) + "\n"


# Each format: how hits are written, and what it is (`evr search --export FORMAT` offers each).
EXPORTS = {"aic": (aic_csv, "an AI Challenge CSV: video_id,frame_idx, at most 100 lines"),
           "json": (hits_json, "the hits' JSON, as --json prints it")}
FORMATS = tuple(EXPORTS)


def export(hits: Sequence[Hit], fmt: str) -> str:
    if fmt not in EXPORTS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return EXPORTS[fmt][0](hits)
