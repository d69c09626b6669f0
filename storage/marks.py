"""A team's marks on hits, kept beside the index in its database: which keyframes someone
submitted (with DRES's verdict) or checked and found not to be it. Each browser on the index
reads the marks made since the last it saw (`since`), a second or so apart, so a teammate's
mark shows within seconds without another server to run.

The table is not part of the index's schema (nothing in the index depends on it): it is made at
the first mark, and an index without it has no marks. Marks are only ever added; "not it"
taken back is a mark of its own, so a reader that saw the first sees the second."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, insert, inspect, select
from sqlalchemy.exc import OperationalError

from .database import Database
from .errors import DataDirError

MARK_KINDS = ("submitted", "not_it", "not_it_undone")
MAX_MARKS_READ = 2000  # one read's worth: a reader asks again from the last it got

TEAM_MARKS = Table(
    "team_marks",
    MetaData(),
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("keyframe_id", Integer, nullable=False, index=True),
    Column("kind", String, nullable=False),  # one of MARK_KINDS
    Column("verdict", String),  # DRES's, of a submission (CORRECT, WRONG, ...)
    Column("who", String, nullable=False),  # as the marking browser named its user
    Column("at", Float, nullable=False),  # seconds since the epoch
)


@dataclass(frozen=True)
class Mark:
    seq: int
    keyframe_id: int
    kind: str
    verdict: str | None
    who: str
    at: float

    def to_json(self) -> dict:
        return {
            "seq": self.seq,
            "keyframe_id": self.keyframe_id,
            "kind": self.kind,
            "verdict": self.verdict,
            "who": self.who,
            "at": round(self.at, 3),
        }


class Marks:
    def __init__(self, db: Database):
        self.db = db
        self._table_seen = False

    def add(self, keyframe_ids: Iterable[int], kind: str, who: str, verdict: str | None = None) -> None:
        if kind not in MARK_KINDS:
            raise ValueError(f"a mark is one of {', '.join(MARK_KINDS)}, not {kind!r}")
        rows = [
            {"keyframe_id": int(k), "kind": kind, "verdict": verdict, "who": who, "at": time.time()}
            for k in keyframe_ids
        ]
        if not rows:
            return
        try:
            with self.db.transaction() as s:
                TEAM_MARKS.create(s.connection(), checkfirst=True)
                s.execute(insert(TEAM_MARKS), rows)
        except OperationalError as exc:  # a read-only folder or database: the index is still there to search
            raise DataDirError(f"cannot keep the team's marks in {self.db.db_path}: {exc.orig}") from None
        self._table_seen = True

    def since(self, seq: int) -> list[Mark]:
        """The marks made after the one numbered `seq` (0: all), oldest first, at most
        MAX_MARKS_READ."""
        with self.db.session() as s:
            if not self._table_seen:
                if not inspect(s.connection()).has_table(TEAM_MARKS.name):
                    return []
                self._table_seen = True
            rows = s.execute(
                select(TEAM_MARKS).where(TEAM_MARKS.c.seq > seq).order_by(TEAM_MARKS.c.seq).limit(MAX_MARKS_READ)
            )
            return [Mark(**row._mapping) for row in rows]
