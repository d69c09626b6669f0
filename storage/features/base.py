"""The contract of a feature's storage: what storage asks of every feature (OCR, persons, speech,
and any other), so that the rest of storage has no feature's name in it.

A feature's module under storage/features/ defines its tables (ORM classes on schema.Base, plus
any DDL: full-text tables, triggers) and a FeatureStorage subclass that says
- how a result is written (`put`, many at once) and cleared (`clear`);
- what it adds to a hit (`hit_columns` -> `hit_values` -> `hit_fields`, JSON values), how a hit
  shows them in one line of text (`facts`), and what it found where in a keyframe (`shapes`,
  drawn on the frame);
- its filter: the parameters the edges ask for (`params`: CLI flags, app widgets), their checks,
  the SQL condition on keyframes (`condition`), and, for a vector index that filters beside the
  vectors itself, the fields it keeps (`fields`, `field_values`) and the conditions on them
  (`field_conditions`: neutral (field, operator, value) triples each backend renders);
- and, for a feature whose text can be searched by words (`WordsFeature`), its ranking.
A feature registers once (storage.features.register), with its analyzer (indexer/analyzers).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from sqlalchemy import func, literal_column, select
from sqlalchemy.orm import Session

from ..fulltext import exact_first, fts, fts_match
from ..textfold import fts_query, words
from ..types import Box, KeyframeFilter


@dataclass(frozen=True)
class FilterParam:
    """One parameter of a feature's filter, as the edges ask for it: a CLI flag (`--` + the
    name with dashes), an app widget, a key of KeyframeFilter."""

    name: str  # "min_persons": KeyframeFilter.of(min_persons=2), `--min-persons 2`
    kind: type  # int, float or str (a value's type; `many`: each one's)
    label: str  # its widget's label in the app ("At least N people")
    help: str  # what it keeps, for --help and the app
    many: bool = False  # repeatable: a tuple of values, every one must hold
    choices: tuple[str, ...] = ()  # the values it takes, when it is one of a few
    metavar: str = ""
    check: Callable[[Any], str | None] | None = None  # what is wrong with a value, or None
    # Alone, without a text, image or keyframe query, it is a query of its own: its words rank
    # (a WordsFeature), or the feature's `score`.
    query: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def words_check(value: str) -> str | None:
    """The check of a words parameter (`--ocr`, `--speech`, ...): it must hold a word to look for."""
    return None if words(value) else "has no words to look for"


def checked_by(parse: Callable[[Any], Any]) -> Callable[[Any], str | None]:
    """A FilterParam check from a parser of its values: what the parser's ValueError says, or None."""

    def check(value) -> str | None:
        try:
            parse(value)
        except ValueError as exc:
            return str(exc)
        return None

    return check


@dataclass(frozen=True)
class Field:
    """A value of a keyframe that this feature's filter compares: a vector index that filters
    itself keeps it beside each vector; where SQLite keeps it in a column (`column`, in a table
    whose `keyframe_column` says whose it is: one row per keyframe, or per label for "labels"),
    storage/filters.py renders the conditions on it as SQL too. Without a column, the feature's
    own `condition` says in SQL what the conditions on it ask."""

    name: str
    kind: str  # "int", "float", "bool" or "labels" (an array of short strings)
    nullable: bool = False
    column: Any = dataclass_field(default=None, compare=False)
    keyframe_column: Any = dataclass_field(default=None, compare=False)


OPERATORS = ("in", ">=", "<=", "==", "contains", "contains_all")


@dataclass(frozen=True)
class Condition:
    """One condition on a field: `field op value`. Operators: "in" (the value is one of a list),
    ">=", "<=", "==" (a number or a bool), "contains" (a labels field holds the value),
    "contains_all" (it holds every value of a list). A field without a value (NULL) fails every
    comparison. Each backend renders them in its own terms (storage/vectors/)."""

    field: str
    op: str
    value: Any

    def __post_init__(self):
        if self.op not in OPERATORS:
            raise ValueError(f"unknown operator {self.op!r}")


@dataclass(frozen=True)
class Shape:
    """Something a feature found at a place in a keyframe, to draw on it (coordinates are
    fractions of the frame's width and height)."""

    label: str  # what it is: 'text "LŨ LỤT"', "person 0.93 standing"
    box: Box | None = None
    points: tuple[tuple[float, float, float], ...] = ()  # (x, y, visibility): keypoints
    mask: Any = None  # a boolean array over the whole frame, any resolution


class FeatureStorage(ABC):
    name: str  # the analyzer's name: it keys results, hit fields and filters
    per_video: bool = False  # one result per video (speech) rather than per keyframe
    ddl: tuple[str, ...] = ()  # created with the tables (full-text tables, triggers)
    params: tuple[FilterParam, ...] = ()
    hit_fields: tuple[str, ...] = ()  # keys it adds to a hit; None when it did not run there
    fields: tuple[Field, ...] = ()

    @abstractmethod
    def put(self, s: Session, results: Sequence[tuple[int, Any]]) -> None:
        """Store (keyframe id, result) pairs, or (video id, result) when `per_video`."""

    @abstractmethod
    def clear(self, s: Session, ids: Sequence[int]) -> None:
        """Delete what was stored for these keyframes (or videos, when `per_video`)."""

    @abstractmethod
    def hit_columns(self, keyframe) -> list:
        """Scalar SQL expressions on `keyframe` (the Keyframe entity) whose values `hit_values`
        turns into the hit fields: read with the keyframe's own row, so any number of hits is
        one statement."""

    @abstractmethod
    def hit_values(self, values: Sequence[Any]) -> dict[str, Any]:
        """The hit fields (`hit_fields`, JSON values; None where it did not run) from the values
        of `hit_columns`."""

    def counts(self, s: Session) -> dict[str, int]:
        """What `evr stats` counts of this feature's results, by key ("speech_segments")."""
        return {}

    def shapes(self, s: Session, keyframe_id: int) -> list[Shape]:
        """What it found where in one keyframe (the app draws them on the frame)."""
        return []

    def facts(self, fields: dict[str, Any]) -> list[str]:
        """A hit's fields as short phrases for one line of text ("2 people", 'text "..."')."""
        return []

    def check_filter(self, f: KeyframeFilter) -> str | None:
        """What is wrong across this feature's filter values (min above max), or None."""
        return None

    def condition(self, f: KeyframeFilter, keyframe_id, few: bool):
        """The SQL condition on `keyframe_id` (a column) that this feature's filter values in `f`
        ask for beyond the field conditions storage/filters.py renders (those on fields kept in a
        column); None when there is none. `few`: the keyframes are a given few (probe
        each one rather than read a whole list of ids)."""
        return None

    def score(self, f: KeyframeFilter, keyframe_id):
        """A scalar SQL expression scoring the keyframe `keyframe_id` (a column) under this
        feature's query parameters in `f` (higher is better), for a feature whose filter alone is
        a query ranked by it (`FilterParam.query`, words aside: colours, objects); None when `f`
        sets none of them."""
        return None

    def matches_nothing(self, f: KeyframeFilter) -> bool:
        """Whether the values in `f` can match no keyframe at all (words with no word in them)."""
        return False

    def field_values(self, s: Session, keyframe_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Each keyframe's `fields` values (the ones it has none for: absent)."""
        return {}

    def field_conditions(self, f: KeyframeFilter) -> tuple[list[Condition], bool]:
        """(the conditions on `fields` that this feature's values in `f` ask for, whether SQL must
        still pick the keyframes: words, which only SQLite's full-text index matches)."""
        return [], False


class WordsFeature(FeatureStorage):
    """A feature whose text is searched by words in a full-text table (OCR, speech): alone, its
    words are a query ranked by BM25; beside another query, a filter."""

    fts_table: str  # "ocr_fts"
    words_param: str  # the filter parameter holding the words ("ocr")

    def matches_nothing(self, f: KeyframeFilter) -> bool:
        said = f.get(self.words_param)
        return said is not None and fts_query(said) is None

    def condition(self, f: KeyframeFilter, keyframe_id, few: bool):
        said = f.get(self.words_param)
        match = fts_query(said) if said is not None else None
        return None if match is None else self.words_condition(match, keyframe_id)

    @abstractmethod
    def words_condition(self, match: str, keyframe_id):
        """The SQL condition on `keyframe_id` (a column): its text matches the FTS5 MATCH
        expression `match` (every word of the filter)."""

    def field_conditions(self, f: KeyframeFilter) -> tuple[list[Condition], bool]:
        return [], f.get(self.words_param) is not None  # only SQLite's full-text index matches words

    @abstractmethod
    def ranked(self, s: Session, match, passing, limit: int) -> list[tuple[int, float, bool]]:
        """The best `limit` keyframes that a fulltext.WordMatch finds, as (keyframe id, -bm25,
        whether it holds every word exactly), the exact ones first, each part best first;
        `passing`: None, or a SELECT of the keyframe ids that may be returned."""


class KeyframeWordsFeature(WordsFeature):
    """A WordsFeature whose full-text table holds one row per keyframe, its rowid the keyframe's
    id (on-screen text, captions): matched and ranked on that table alone."""

    def words_condition(self, match: str, keyframe_id):
        return keyframe_id.in_(select(fts(self.fts_table).c.rowid).where(fts_match(match, self.fts_table)))

    def ranked(self, s: Session, match, passing, limit: int) -> list[tuple[int, float, bool]]:
        expression, exact = exact_first(self.fts_table, match)
        table, bm25 = fts(self.fts_table), func.bm25(literal_column(self.fts_table))
        stmt = select(table.c.rowid, bm25, exact).where(fts_match(expression, self.fts_table))
        if passing is not None:
            stmt = stmt.where(table.c.rowid.in_(passing))
        stmt = stmt.order_by(exact.desc(), bm25, table.c.rowid).limit(limit)
        return [(int(kid), -float(b), bool(is_exact)) for kid, b, is_exact in s.execute(stmt)]
