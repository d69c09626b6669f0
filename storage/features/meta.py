"""A video's metadata: its title, author (or channel), publish date, keywords and description,
from an AI Challenge package's media-info or from the video file (its tags, and its modification
date as the date of a plain file). Filters `--date-from`, `--date-to` (YYYY-MM-DD, inclusive)
and `--author` (the whole name, case and accents ignored) keep the keyframes of the videos that
fit, in SQL and in Milvus; `--meta WORDS` keeps those whose title, keywords or description hold
every word, and alone ranks the keyframes of the videos that hold them best."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, delete, func, insert, literal_column, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..fulltext import WordMatch, add_texts, exact_first, fts, fts_ddl, fts_match
from ..schema import Base, Keyframe
from ..sqlutil import ids_param
from ..textfold import fold
from ..types import KeyframeFilter
from .base import Condition, Field, FilterParam, WordsFeature, checked_by, words_check

EPOCH = dt.date(1970, 1, 1)
AUTHOR_CHARS = 32  # an author is compared by its first 32 folded characters (a Milvus label's length)


@dataclass(frozen=True)
class VideoMeta:
    """What is known of a video besides its pictures and sound."""

    title: str = ""
    author: str = ""
    published: dt.date | None = None
    keywords: tuple[str, ...] = ()
    description: str = ""
    source: str = ""  # "media-info", "file tags", "file date"

    def text(self) -> str:
        """The words `--meta` searches."""
        return " ".join(part for part in (self.title, " ".join(self.keywords), self.description) if part)


def parse_date(value: str) -> dt.date:
    """A date as the filters take it (YYYY-MM-DD) or as packages and files write it
    (DD/MM/YYYY, YYYYMMDD, an ISO date and time); ValueError for anything else."""
    value = str(value).strip()
    for form in ("%Y-%m-%d", "%d/%m/%Y", "%Y%m%d", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(value, form).date()
        except ValueError:
            pass
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def author_key(author: str) -> str:
    """An author as filters compare it: folded (no case, no accents), its first AUTHOR_CHARS."""
    return " ".join(fold(author).split())[:AUTHOR_CHARS]


def day_number(date: dt.date) -> int:
    return (date - EPOCH).days


class MetaRow(Base):
    """A video's metadata (indexer/analyzers/meta/), one row per video that has any."""

    __tablename__ = "video_meta"
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    title: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(Text, default="")  # as written
    author_key: Mapped[str] = mapped_column(String, default="", index=True)  # author_key(author)
    published: Mapped[int | None] = mapped_column(Integer, index=True)  # days since 1970-01-01
    keywords: Mapped[str] = mapped_column(Text, default="")  # one line each
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String, default="")


class MetaStorage(WordsFeature):
    name = "meta"
    per_video = True
    fts_table = "meta_fts"
    words_param = "meta"
    ddl = (
        fts_ddl("meta_fts"),
        """CREATE TRIGGER IF NOT EXISTS meta_deleted AFTER DELETE ON video_meta BEGIN
    DELETE FROM meta_fts WHERE rowid = old.video_id;
END""",
    )
    params = (
        FilterParam(
            "date_from",
            str,
            "Published from (YYYY-MM-DD)",
            "videos published on or after this date (a plain file: its modification date)",
            metavar="DATE",
            check=checked_by(parse_date),
        ),
        FilterParam(
            "date_to",
            str,
            "Published until (YYYY-MM-DD)",
            "videos published on or before this date",
            metavar="DATE",
            check=checked_by(parse_date),
        ),
        FilterParam(
            "author",
            str,
            "Author or channel",
            "videos by this author or channel (the whole name; case and accents ignored)",
            metavar="NAME",
            check=lambda v: None if author_key(v) else "names no author",
        ),
        FilterParam(
            "meta",
            str,
            "Title, keywords, description (all words)",
            "videos whose title, keywords or description hold all these words (accents, case "
            "ignored); alone: their keyframes, the best videos first, no CLIP needed",
            metavar="WORDS",
            check=words_check,
            query=True,
        ),
    )
    hit_fields = ("meta",)
    fields = (Field("published_day", "int", nullable=True), Field("author", "labels"))

    def put(self, s: Session, results: Sequence[tuple[int, VideoMeta | None]]) -> None:
        rows = [
            {
                "video_id": vid,
                "title": m.title,
                "author": m.author,
                "author_key": author_key(m.author),
                "published": day_number(m.published) if m.published else None,
                "keywords": "\n".join(m.keywords),
                "description": m.description,
                "source": m.source,
            }
            for vid, m in results
            if m is not None
        ]
        if rows:
            s.execute(insert(MetaRow), rows)
            add_texts(s, "meta_fts", [(r["video_id"], m.text()) for r, (_, m) in zip(rows, results) if m.text()])

    def clear(self, s: Session, ids: Sequence[int]) -> None:
        s.execute(delete(MetaRow).where(MetaRow.video_id.in_(ids_param(ids))))  # the trigger empties meta_fts

    def hit_columns(self, keyframe) -> list:
        said = func.json_object("title", MetaRow.title, "author", MetaRow.author, "published", MetaRow.published)
        return [select(said).where(MetaRow.video_id == keyframe.video_id).scalar_subquery()]

    def hit_values(self, values: Sequence[Any]) -> dict[str, Any]:
        if values[0] is None:
            return {"meta": None}
        said = json.loads(values[0])
        day = said["published"]
        return {
            "meta": {
                "title": said["title"],
                "author": said["author"],
                "published": (EPOCH + dt.timedelta(days=day)).isoformat() if day is not None else None,
            }
        }

    def counts(self, s: Session) -> dict[str, int]:
        return {"videos_with_metadata": s.scalar(select(func.count()).select_from(MetaRow))}

    def facts(self, fields: dict[str, Any]) -> list[str]:
        meta = fields.get("meta") or {}
        said = [p for p in (meta.get("author"), meta.get("published")) if p]
        return [", ".join(said)] if said else []

    def check_filter(self, f: KeyframeFilter) -> str | None:
        start, end = f.get("date_from"), f.get("date_to")
        if start is not None and end is not None and parse_date(start) > parse_date(end):
            return f"--date-from {start} is after --date-to {end}"
        return None

    def _video_conditions(self, f: KeyframeFilter) -> list:
        out = []
        if f.get("date_from") is not None:
            out.append(MetaRow.published >= day_number(parse_date(f.get("date_from"))))
        if f.get("date_to") is not None:
            out.append(MetaRow.published <= day_number(parse_date(f.get("date_to"))))
        if f.get("author") is not None:
            out.append(MetaRow.author_key == author_key(f.get("author")))
        return out

    def condition(self, f: KeyframeFilter, keyframe_id, few: bool):
        """The videos that fit the date and author, and those whose words match (WordsFeature)."""
        out = [super().condition(f, keyframe_id, few)]
        video = self._video_conditions(f)
        if video:
            fitting = select(Keyframe.id).join(MetaRow, MetaRow.video_id == Keyframe.video_id).where(*video)
            out.append(keyframe_id.in_(fitting))
        return [c for c in out if c is not None]

    def words_condition(self, match: str, keyframe_id):
        matched = select(fts("meta_fts").c.rowid).where(fts_match(match, "meta_fts"))
        return keyframe_id.in_(select(Keyframe.id).where(Keyframe.video_id.in_(matched)))

    def field_values(self, s: Session, keyframe_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        found = {
            int(kid): (day, key)
            for kid, day, key in s.execute(
                select(Keyframe.id, MetaRow.published, MetaRow.author_key)
                .join(MetaRow, MetaRow.video_id == Keyframe.video_id)
                .where(Keyframe.id.in_(ids_param(keyframe_ids)))
            )
        }
        out = {}
        for kid in map(int, keyframe_ids):
            day, key = found.get(kid, (None, ""))
            out[kid] = {"published_day": day, "author": [key] if key else []}
        return out

    def field_conditions(self, f: KeyframeFilter) -> tuple[list[Condition], bool]:
        out = []
        if f.get("date_from") is not None:
            out.append(Condition("published_day", ">=", day_number(parse_date(f.get("date_from")))))
        if f.get("date_to") is not None:
            out.append(Condition("published_day", "<=", day_number(parse_date(f.get("date_to")))))
        if f.get("author") is not None:
            out.append(Condition("author", "contains", author_key(f.get("author"))))
        return out, f.get("meta") is not None  # only SQLite's full-text index matches words

    def ranked(self, s: Session, match: WordMatch, passing, limit: int) -> list[tuple[int, float, bool]]:
        """The keyframes of the videos whose metadata holds the words, the best video (BM25,
        those holding every word exactly first) first, each video's keyframes in time order."""
        expression, exact = exact_first("meta_fts", match)
        table, bm25 = fts("meta_fts"), func.bm25(literal_column("meta_fts"))
        videos = (
            select(table.c.rowid.label("video_id"), bm25.label("bm25"), exact.label("exact"))
            .where(fts_match(expression, "meta_fts"))
            .subquery()
        )
        stmt = (
            select(Keyframe.id, videos.c.bm25, videos.c.exact)
            .join(videos, videos.c.video_id == Keyframe.video_id)
            .order_by(videos.c.exact.desc(), videos.c.bm25, videos.c.video_id, Keyframe.timestamp, Keyframe.id)
            .limit(limit)
        )
        if passing is not None:
            stmt = stmt.where(Keyframe.id.in_(passing))
        return [(int(kid), -float(b), bool(is_exact)) for kid, b, is_exact in s.execute(stmt)]
