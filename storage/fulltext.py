"""Word search in on-screen text and transcripts: SQLite FTS5 over folded text, tolerant of
recognition errors.

A feature searched by words (storage/features/: on-screen text, transcripts) keeps its text in
an FTS5 table (rowid, text), folded by textfold.fold, so accents and case never matter. OCR and
speech recognizers also get letters wrong ("floded" for "flooded", OCR's "Iụt" for "lụt"), so a search has two parts:
- exact: every word of the query, as written (folded);
- near: every word, or a term of the index within a small edit distance of it (NEAR_DISTANCE;
  short words: letters that print alike), for the keyframes or segments the exact part did
  not find: they rank below every exact match.
The terms of each table are kept in `fts_terms` (the table's name, length, term) as texts are
added, so finding the near terms reads only the terms of about the words' lengths, not the whole
index; rapidfuzz measures the distances (C++, about 4 ms over 60,000 terms).
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import column, func, literal_column, select, table, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from .schema import FtsTerm
from .textfold import fold, words

log = logging.getLogger(__name__)

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


def exact_match(query: str) -> WordMatch | None:
    """The words of `query` as written (filters match them so); None when it has none."""
    wanted = words(query)
    if not wanted:
        return None
    return WordMatch(" ".join(_quoted(w) for w in wanted), None, frozenset(wanted))


def _allowed(word: str) -> int:
    return max((d for length, d in NEAR_DISTANCE if len(word) >= length), default=0)


def near_terms(word: str, terms: Sequence[str]) -> list[str]:
    """Those of `terms` near `word` (the word itself left out), the closest first: within
    NEAR_DISTANCE edits, or for a word too short for that, the same word with letters that print
    alike swapped (LOOKALIKES: OCR reads "lũ" as "Iũ")."""
    from rapidfuzz import distance, process

    allowed = _allowed(word)
    if not allowed:
        alike = _lookalikes(word) - {word}
        return sorted(t for t in terms if t in alike)
    found = process.extract(word, terms, scorer=distance.Levenshtein.distance, score_cutoff=allowed, limit=None)
    return [term for term, d, _ in sorted(found, key=lambda f: (f[1], f[0])) if d > 0][:MAX_NEAR_TERMS]


def _lookalikes(word: str) -> set[str]:
    """`word` with each letter that prints like others replaced by each of them in turn."""
    options = [next((group for group in LOOKALIKES if c in group), c) for c in word]
    return {"".join(chosen) for chosen in itertools.product(*options)}


class Words:
    """Word search in the features' full-text tables, as search/ranking.py composes it: the
    match of a query's words in each table, exact and near (`matches`: one statement reads the
    terms of every table), and the keyframes a match finds (`ranked`)."""

    def __init__(self, db):
        self.db = db

    def matches(self, fts_tables: Sequence[str], query: str) -> dict[str, WordMatch] | None:
        """The match of `query`'s words in each of these full-text tables, for the tables where
        something can match (the terms say which: a table that holds neither a word nor a near
        term of it is left out, and asked nothing); None when the query has no words."""
        wanted = list(dict.fromkeys(words(query)))
        if not wanted:
            return None
        exact = " ".join(_quoted(w) for w in words(query))
        low = min(len(w) - _allowed(w) for w in wanted)
        high = max(len(w) + _allowed(w) for w in wanted)
        try:
            with self.db.session() as s:
                # One string per table, joined by SQLite: a row object per term costs 4x the time.
                joined = dict(
                    s.execute(
                        select(FtsTerm.source, func.group_concat(FtsTerm.term, "\n"))
                        .where(FtsTerm.source.in_(list(fts_tables)), FtsTerm.length.between(low, high))
                        .group_by(FtsTerm.source)
                    ).all()
                )
        except OperationalError:  # an index without fts_terms, opened by a reader: exact words only
            log.debug("no fts_terms table: words are matched exactly", exc_info=True)
            return {table: WordMatch(exact, None, frozenset(wanted)) for table in fts_tables}
        out = {}
        for name in fts_tables:
            terms = joined[name].split("\n") if name in joined else []
            present = set(terms)
            variants = {w: near_terms(w, [t for t in terms if abs(len(t) - len(w)) <= _allowed(w)]) for w in wanted}
            if any(w not in present and not variants[w] for w in wanted):
                continue  # a word that neither the table nor a near term of it holds: nothing matches
            if not any(variants.values()):
                out[name] = WordMatch(exact, None, frozenset(wanted))
                continue
            groups = [" OR ".join(_quoted(t) for t in [w, *variants[w]]) for w in words(query)]
            found = frozenset(wanted) | {t for near in variants.values() for t in near}
            out[name] = WordMatch(exact, " AND ".join(f"({g})" for g in groups), found)
        return out

    def ranked(self, feature, match: WordMatch, where, limit: int) -> list[tuple[int, float, bool]]:
        """`feature.ranked` (exact matches first) for keyframes that pass `where` (a
        KeyframeFilter, or None)."""
        from .filters import matching

        passing = matching(where) if where is not None and where.active else None
        if where is not None and where.active and passing is None:
            return []
        with self.db.session() as s:
            return feature.ranked(s, match, passing, limit)


def exact_first(fts_table: str, match: WordMatch):
    """(the MATCH expression to run, a SQL flag of the rows it finds that hold every word
    exactly): one statement finds both, exact matches and near ones."""
    if match.near is None:
        return match.exact, literal_column("1")
    # The same table again, under another name: FTS5's hidden column keeps the table's name.
    again = fts(fts_table).alias("exact_rows")
    exact_rows = select(again.c.rowid).where(literal_column(f"exact_rows.{fts_table}").op("MATCH")(match.exact))
    return match.near, fts(fts_table).c.rowid.in_(exact_rows)


@functools.cache
def fts(name: str):
    """A full-text table (rowid, text) for SQLAlchemy statements (one object per table, so a
    statement names it once)."""
    return table(name, column("rowid"), column("text"))


def fts_ddl(name: str) -> str:
    return f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5(text, tokenize = 'unicode61')"


def fts_match(expression: str, fts_table: str):
    """SQL: the full-text table's rows that match `expression`."""
    return literal_column(fts_table).op("MATCH")(expression)


def add_texts(s: Session, fts_table: str, entries: list[tuple[int, str]]) -> None:
    """(rowid, text) entries into a full-text table, the text folded, and their terms into
    fts_terms."""
    if not entries:
        return
    folded = [(rowid, fold(said)) for rowid, said in entries]
    s.execute(
        text(f"INSERT INTO {fts_table}(rowid, text) VALUES (:id, :text)"),
        [{"id": rowid, "text": said} for rowid, said in folded],
    )
    terms = {t for _, said in folded for t in words(said)}
    if not terms:  # texts of punctuation only ("--", "...")
        return
    s.execute(
        text("INSERT OR IGNORE INTO fts_terms(source, length, term) VALUES (:source, :length, :term)"),
        [{"source": fts_table, "length": len(t), "term": t} for t in sorted(terms)],
    )


def fill_terms(s: Session, fts_tables: Sequence[str]) -> None:
    """fts_terms from these full-text tables' own vocabularies (once, for an index written
    before fts_terms was kept)."""
    for name in fts_tables:
        s.execute(text(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{name}_vocab USING fts5vocab(main, {name}, 'row')"))
        s.execute(
            text(
                f"INSERT OR IGNORE INTO fts_terms(source, length, term) "
                f"SELECT '{name}', length(term), term FROM temp.{name}_vocab"
            )
        )
        s.execute(text(f"DROP TABLE temp.{name}_vocab"))


def _quoted(word: str) -> str:
    return f'"{word}"'
