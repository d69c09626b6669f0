"""What is said: each video's transcript as timed segments (text, language, confidence, the time
of every word) with a full-text table of their folded words. A keyframe hears a segment said
within SPEECH_REACH_S of it; the filter `--speech WORDS` keeps keyframes that hear one segment
holding every word; alone, the moments the words are said rank."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, delete, func, insert, literal_column, select
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from ..fulltext import WordMatch, add_texts, exact_first, fts, fts_ddl, fts_match
from ..schema import Base, Keyframe
from ..sqlutil import ids_param
from ..textfold import words
from .base import FilterParam, WordsFeature, words_check

# A keyframe hears the speech said within this many seconds of it: keyframes are at most
# keyframes.max_gap_s (2 s) apart, so every segment of speech has a keyframe within reach.
SPEECH_REACH_S = 2.0


@dataclass(frozen=True)
class SpeechSegment:
    """A stretch of speech in a video's sound track, as a recognizer heard it."""

    start: float  # seconds, on the keyframes' clock
    end: float
    text: str
    language: str  # ISO 639-1 ("en", "vi")
    confidence: float  # 0-1: the recognizer's mean word probability
    words: tuple[tuple[str, float, float], ...] = ()  # each word with its start and end (seconds)

    def to_json(self) -> dict:
        return {
            "text": self.text,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "language": self.language,
            "confidence": round(self.confidence, 4),
        }


class Speech(Base):
    """A stretch of speech in a video's sound track (indexer/analyzers/speech/). A video whose
    sound was transcribed and holds no speech has none; its plan says it was transcribed."""

    __tablename__ = "speech_segments"
    __table_args__ = (Index("ix_speech_video_start", "video_id", "start"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    start: Mapped[float] = mapped_column(Float)  # seconds, on the keyframes' clock
    end: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String)
    confidence: Mapped[float] = mapped_column(Float)
    words: Mapped[str] = mapped_column(Text)  # JSON [[word, start, end], ...]: where each word is said


def within_reach(keyframe, segment):
    """SQL: the keyframe (a Keyframe entity or alias) is within SPEECH_REACH_S of the speech
    segment (the Speech entity, or a subquery's columns) in the same video."""
    return (
        (segment.video_id == keyframe.video_id)
        & (keyframe.timestamp >= segment.start - SPEECH_REACH_S)
        & (keyframe.timestamp <= segment.end + SPEECH_REACH_S)
    )


class SpeechStorage(WordsFeature):
    name = "speech"
    per_video = True
    fts_table = "speech_fts"
    words_param = "speech"
    ddl = (
        fts_ddl("speech_fts"),
        """CREATE TRIGGER IF NOT EXISTS speech_deleted AFTER DELETE ON speech_segments BEGIN
    DELETE FROM speech_fts WHERE rowid = old.id;
END""",
    )
    params = (
        FilterParam(
            "speech",
            str,
            "Spoken words (all words; accents optional)",
            f"all these words said within {SPEECH_REACH_S:g} s of the frame (accents, "
            "case ignored); alone: the moments they are said, no CLIP needed",
            metavar="WORDS",
            check=words_check,
            query=True,
        ),
    )
    hit_fields = ("speech",)

    def put(self, s: Session, results: Sequence[tuple[int, Sequence[SpeechSegment]]]) -> None:
        rows = [
            {
                "video_id": vid,
                "start": seg.start,
                "end": seg.end,
                "text": seg.text,
                "language": seg.language,
                "confidence": seg.confidence,
                "words": json.dumps([list(w) for w in seg.words], ensure_ascii=False),
            }
            for vid, segments in results
            for seg in segments
        ]
        if rows:
            s.execute(insert(Speech), rows)
            # Their ids, in insertion order: the videos' earlier segments were cleared first.
            ids = s.scalars(
                select(Speech.id).where(Speech.video_id.in_(ids_param([vid for vid, _ in results]))).order_by(Speech.id)
            ).all()
            add_texts(s, "speech_fts", [(sid, row["text"]) for sid, row in zip(ids, rows)])

    def clear(self, s: Session, ids: Sequence[int]) -> None:
        s.execute(delete(Speech).where(Speech.video_id.in_(ids_param(ids))))  # the trigger empties speech_fts

    def hit_columns(self, keyframe) -> list:
        """The segment said at the keyframe's time, else the nearest one within SPEECH_REACH_S
        (without its word times), as JSON. SQLite cannot order a correlated subquery by the outer
        row, so the nearest is the least of "distance, start, JSON" strings (zero-padded numbers
        sort as text)."""
        distance = func.max(Speech.start - keyframe.timestamp, keyframe.timestamp - Speech.end, 0.0)
        said = func.json_object(
            "text",
            Speech.text,
            "start",
            Speech.start,
            "end",
            Speech.end,
            "language",
            Speech.language,
            "confidence",
            Speech.confidence,
        )
        nearest = func.min(func.printf("%016.6f%016.6f", distance, Speech.start).op("||")(said))
        return [select(nearest).where(within_reach(keyframe, Speech)).scalar_subquery()]

    def hit_values(self, values: Sequence[Any]) -> dict[str, Any]:
        if values[0] is None:
            return {"speech": None}
        said = json.loads(values[0][32:])  # after the two 16-character numbers
        return {
            "speech": SpeechSegment(
                said["start"], said["end"], said["text"], said["language"], said["confidence"]
            ).to_json()
        }

    def counts(self, s: Session) -> dict[str, int]:
        return {"speech_segments": s.scalar(select(func.count()).select_from(Speech))}

    def facts(self, fields: dict[str, Any]) -> list[str]:
        said = fields.get("speech")
        return [f'said "{said["text"][:60]}"'] if said else []

    def words_condition(self, match: str, keyframe_id):
        # The keyframes within reach of a segment that says every word, found from the segments.
        said = (
            select(Speech)
            .where(Speech.id.in_(select(fts("speech_fts").c.rowid).where(fts_match(match, "speech_fts"))))
            .subquery()
        )
        near = aliased(Keyframe)
        return keyframe_id.in_(select(near.id).join(said, within_reach(near, said.c)))

    def ranked(self, s: Session, match: WordMatch, passing, limit: int) -> list[tuple[int, float, bool]]:
        """For each of the best segments by BM25 (those holding every word exactly first), the
        keyframe (that `passing` allows) nearest the moment the first of the match's words is
        said, from the recognizer's word times; a keyframe near several segments counts once."""
        expression, exact = exact_first("speech_fts", match)
        table, bm25 = fts("speech_fts"), func.bm25(literal_column("speech_fts"))
        found = (
            select(table.c.rowid.label("id"), bm25.label("bm25"), exact.label("exact"))
            .where(fts_match(expression, "speech_fts"))
            .order_by(exact.desc(), bm25, table.c.rowid)
            .limit(4 * limit)
            .subquery()
        )
        # Each segment (best first) with the keyframes within its reach, in one query.
        stmt = (
            select(Speech.id, Speech.start, Speech.words, found.c.bm25, found.c.exact, Keyframe.id, Keyframe.timestamp)
            .join(found, found.c.id == Speech.id)
            .join(Keyframe, within_reach(Keyframe, Speech))
            .order_by(found.c.exact.desc(), found.c.bm25, Speech.id)
        )
        if passing is not None:
            stmt = stmt.where(Keyframe.id.in_(passing))
        segments: dict[int, tuple[float, str, float, bool, list[tuple[int, float]]]] = {}
        for seg, start, said, score, is_exact, kid, t in s.execute(stmt):
            segments.setdefault(seg, (start, said, score, bool(is_exact), []))[4].append((kid, t))
        out: dict[int, tuple[float, bool]] = {}
        for start, said, score, is_exact, keyframes in segments.values():
            moment = next((t for w, t, _ in json.loads(said) if set(words(w)) & match.words), start)
            out.setdefault(min((abs(t - moment), kid) for kid, t in keyframes)[1], (-float(score), is_exact))
            if len(out) == limit:
                break
        return [(kid, score, is_exact) for kid, (score, is_exact) in out.items()]
