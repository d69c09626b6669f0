"""Word search in on-screen text and transcripts: SQLite FTS5 over folded text, tolerant of
recognition errors.

Both full-text tables (schema.OCR_FTS_DDL, schema.SPEECH_FTS_DDL) hold text folded by
textfold.fold, so accents and case never matter. OCR and speech recognizers also get letters
wrong ("floded" for "flooded", OCR's "Iụt" for "lụt"), so a search has two parts:
- exact: every word of the query, as written (folded);
- near: every word, or a term of the index within a small edit distance of it (NEAR_DISTANCE;
  short words: letters that print alike), for the keyframes or segments the exact part did
  not find: they rank below every exact match.
The terms of each table are kept in `fts_terms` (source, length, term) as texts are added, so
finding the near terms reads only the terms of about the word's length, not the whole index;
rapidfuzz measures the distances (C++, about 4 ms over 60,000 terms).
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

from sqlalchemy import column, func, literal_column, select, table, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from .schema import FtsTerm
from .textfold import fold, words

log = logging.getLogger(__name__)

OCR_FTS = table("ocr_fts", column("rowid"), column("text"))  # schema.OCR_FTS_DDL
SPEECH_FTS = table("speech_fts", column("rowid"), column("text"))  # schema.SPEECH_FTS_DDL
SOURCES = {"ocr_fts": "ocr", "speech_fts": "speech"}  # full-text table -> its fts_terms source
# How many letters a term may differ by from a query word of this many letters, and still match
# near: longer words one letter, long ones two. Shorter words only by letters that print alike
# (LOOKALIKES): one letter off turns "ha" into "he".
NEAR_DISTANCE = ((3, 1), (8, 2))
MAX_NEAR_TERMS = 20  # near terms taken per query word, the closest first
# Letters (folded) that print alike and OCR confuses: capital I, small l and the digit 1; O and 0.
LOOKALIKES = ("il1", "o0")


@dataclass(frozen=True)
class WordMatch:
    """How to look up a query's words: FTS5 MATCH expressions, each word quoted (so no user
    text can be FTS syntax) and all required."""

    exact: str  # every word as written
    near: str | None  # every word or one of its near terms; None when no word has any
    words: frozenset[str]  # the query's words and their near terms (to find where they are said)


def word_match(s: Session, fts_table: str, query: str, near: bool = True) -> WordMatch | None:
    """The match of `query`'s words in `fts_table` ("ocr_fts", "speech_fts"); None when it has
    no words. `near=False`: exact only (filters)."""
    wanted = words(query)
    if not wanted:
        return None
    exact = " ".join(_quoted(w) for w in wanted)
    variants = {w: near_terms(s, SOURCES[fts_table], w) for w in dict.fromkeys(wanted)} if near else {}
    if not any(variants.values()):
        return WordMatch(exact, None, frozenset(wanted))
    groups = [" OR ".join(_quoted(t) for t in [w, *variants[w]]) for w in wanted]
    found = frozenset(wanted) | {t for terms in variants.values() for t in terms}
    return WordMatch(exact, " AND ".join(f"({g})" for g in groups), found)


def near_terms(s: Session, source: str, word: str) -> list[str]:
    """Terms of `source`'s texts near `word` (the word itself left out), the closest first:
    within NEAR_DISTANCE edits, or for a word too short for that, the same word with letters
    that print alike swapped (LOOKALIKES: OCR reads "lũ" as "Iũ")."""
    from rapidfuzz import distance, process

    allowed = max((d for length, d in NEAR_DISTANCE if len(word) >= length), default=0)
    try:
        if not allowed:
            alike = sorted(_lookalikes(word) - {word})
            return s.scalars(select(FtsTerm.term).where(
                FtsTerm.source == source, FtsTerm.length == len(word), FtsTerm.term.in_(alike))
                .order_by(FtsTerm.term)).all() if alike else []
        # One string joined by SQLite: a row object per term would cost 4x the time (20,000 terms).
        joined = s.scalar(select(func.group_concat(FtsTerm.term, "\n")).where(
            FtsTerm.source == source, FtsTerm.length.between(len(word) - allowed, len(word) + allowed)))
        terms = joined.split("\n") if joined else []
    except OperationalError:  # an index from before fts_terms, opened by a reader: exact words only
        log.debug("no fts_terms table: words are matched exactly", exc_info=True)
        return []
    found = process.extract(word, terms, scorer=distance.Levenshtein.distance, score_cutoff=allowed, limit=None)
    return [term for term, d, _ in sorted(found, key=lambda f: (f[1], f[0])) if d > 0][:MAX_NEAR_TERMS]


def _lookalikes(word: str) -> set[str]:
    """`word` with each letter that prints like others replaced by each of them in turn."""
    options = [next((group for group in LOOKALIKES if c in group), c) for c in word]
    return {"".join(chosen) for chosen in itertools.product(*options)}


def fts_match(expression: str, fts_table: str):
    """SQL: the full-text table's rows that match `expression`."""
    return literal_column(fts_table).op("MATCH")(expression)


def add_texts(s: Session, fts_table: str, entries: list[tuple[int, str]]) -> None:
    """(rowid, text) entries into a full-text table, the text folded, and their terms into
    fts_terms."""
    if not entries:
        return
    folded = [(rowid, fold(said)) for rowid, said in entries]
    s.execute(text(f"INSERT INTO {fts_table}(rowid, text) VALUES (:id, :text)"),
              [{"id": rowid, "text": said} for rowid, said in folded])
    terms = {t for _, said in folded for t in words(said)}
    s.execute(text("INSERT OR IGNORE INTO fts_terms(source, length, term) VALUES (:source, :length, :term)"),
              [{"source": SOURCES[fts_table], "length": len(t), "term": t} for t in sorted(terms)])


def fill_terms(s: Session) -> None:
    """fts_terms from the full-text tables' own vocabularies (once, for an index written before
    fts_terms was kept)."""
    for fts_table, source in SOURCES.items():
        s.execute(text(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{fts_table}_vocab USING fts5vocab(main, {fts_table}, 'row')"))
        s.execute(text(f"INSERT OR IGNORE INTO fts_terms(source, length, term) "
                       f"SELECT '{source}', length(term), term FROM temp.{fts_table}_vocab"))
        s.execute(text(f"DROP TABLE temp.{fts_table}_vocab"))


def _quoted(word: str) -> str:
    return f'"{word}"'
