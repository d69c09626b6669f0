"""Captions: a sentence an image-to-text model wrote for each keyframe (indexer/analyzers/captions/),
a second channel of words for what the image-text embedding misses. Its folded words are in a
full-text table like on-screen text's: `--caption WORDS` keeps keyframes whose caption holds
every word (near-word matches, accents and case ignored); alone, the words are the query; beside
a text query, the caption ranking of the query's words is fused with the image-text ranking."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ForeignKey, Text, delete, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..fulltext import add_texts, fts_ddl
from ..schema import Base
from ..sqlutil import ids_param
from ..types import KeyframeFilter
from .base import Condition, Field, FilterParam, KeyframeWordsFeature, words_check


class KeyframeCaption(Base):
    """A keyframe's caption ("" when the model wrote none). No row: no captioner ran on it."""

    __tablename__ = "keyframe_captions"
    keyframe_id: Mapped[int] = mapped_column(ForeignKey("keyframes.id", ondelete="CASCADE"), primary_key=True)
    text: Mapped[str] = mapped_column(Text)


class CaptionStorage(KeyframeWordsFeature):
    name = "captions"
    fts_table = "caption_fts"
    words_param = "caption"
    # The full-text table (rowid = keyframe id), emptied with the captions it indexes.
    ddl = (
        fts_ddl("caption_fts"),
        """CREATE TRIGGER IF NOT EXISTS caption_deleted AFTER DELETE ON keyframe_captions BEGIN
    DELETE FROM caption_fts WHERE rowid = old.keyframe_id;
END""",
    )
    params = (
        FilterParam(
            "caption",
            str,
            "Caption words (all words; accents optional)",
            "keyframes whose caption (an image-to-text model's, [captions]) holds all these words; "
            "alone: search the captions only, no CLIP needed",
            metavar="WORDS",
            check=words_check,
            query=True,
        ),
    )
    hit_fields = ("caption",)
    fields = (Field("has_caption", "bool"),)

    def put(self, s: Session, results: Sequence[tuple[int, str | None]]) -> None:
        rows = [{"keyframe_id": kid, "text": " ".join(said.split())} for kid, said in results if said is not None]
        if rows:
            s.execute(insert(KeyframeCaption), rows)
            add_texts(s, self.fts_table, [(r["keyframe_id"], r["text"]) for r in rows if r["text"]])

    def clear(self, s: Session, ids: Sequence[int]) -> None:
        s.execute(delete(KeyframeCaption).where(KeyframeCaption.keyframe_id.in_(ids_param(ids))))  # and caption_fts

    def hit_columns(self, keyframe) -> list:
        return [select(KeyframeCaption.text).where(KeyframeCaption.keyframe_id == keyframe.id).scalar_subquery()]

    def hit_values(self, values: Sequence[Any]) -> dict[str, Any]:
        return {"caption": values[0]}

    def counts(self, s: Session) -> dict[str, int]:
        return {"captions": s.scalar(select(func.count()).select_from(KeyframeCaption))}

    def facts(self, fields: dict[str, Any]) -> list[str]:
        said = fields.get("caption")
        return [f'"{said[:60]}"'] if said else []

    def field_values(self, s: Session, keyframe_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        found = set(
            s.scalars(
                select(KeyframeCaption.keyframe_id).where(
                    KeyframeCaption.keyframe_id.in_(ids_param(keyframe_ids)), KeyframeCaption.text != ""
                )
            )
        )
        return {int(kid): {"has_caption": int(kid) in found} for kid in keyframe_ids}

    def field_conditions(self, f: KeyframeFilter) -> tuple[list[Condition], bool]:
        # An index cannot match the words: it keeps frames with a caption, SQLite picks the ids.
        return ([Condition("has_caption", "==", True)], True) if f.get("caption") is not None else ([], False)
