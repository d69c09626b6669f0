"""On-screen text: every box a keyframe's OCR read (text, position, confidence), the keyframe's
whole text in reading order, and its folded words in a full-text table; the filter `--ocr WORDS`
(every word on screen, accents and case ignored; alone, the words are the query)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, Text, delete, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..fulltext import add_texts, fts_ddl
from ..schema import Base, BoxColumns
from ..sqlutil import ids_param
from ..types import Box, KeyframeFilter
from .base import Condition, Field, FilterParam, KeyframeWordsFeature, Shape, words_check


@dataclass(frozen=True)
class TextBox:
    text: str
    box: Box
    confidence: float


class KeyframeText(Base):
    """A keyframe's on-screen text, its boxes in reading order joined by spaces ("" when OCR
    found none). No row: OCR did not run on the keyframe."""

    __tablename__ = "keyframe_text"
    keyframe_id: Mapped[int] = mapped_column(ForeignKey("keyframes.id", ondelete="CASCADE"), primary_key=True)
    text: Mapped[str] = mapped_column(Text)


class OcrBox(BoxColumns, Base):
    """One piece of on-screen text; coordinates are fractions of the frame's width and height."""

    __tablename__ = "ocr_boxes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    keyframe_id: Mapped[int] = mapped_column(ForeignKey("keyframes.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float)


class OcrStorage(KeyframeWordsFeature):
    name = "ocr"
    fts_table = "ocr_fts"
    words_param = "ocr"
    # The full-text table (rowid = keyframe id), emptied with the text it indexes.
    ddl = (
        fts_ddl("ocr_fts"),
        """CREATE TRIGGER IF NOT EXISTS keyframe_text_deleted AFTER DELETE ON keyframe_text BEGIN
    DELETE FROM ocr_fts WHERE rowid = old.keyframe_id;
END""",
    )
    params = (
        FilterParam(
            "ocr",
            str,
            "On-screen text (all words; accents optional)",
            "on-screen text holding all these words (accents, case ignored); alone: "
            "search on-screen text only, no CLIP needed",
            metavar="WORDS",
            check=words_check,
            query=True,
        ),
    )
    hit_fields = ("ocr_text",)
    fields = (Field("has_text", "bool"),)

    def put(self, s: Session, results: Sequence[tuple[int, list[TextBox]]]) -> None:
        if not results:
            return
        s.execute(
            insert(KeyframeText),
            [{"keyframe_id": kid, "text": " ".join(b.text for b in boxes)} for kid, boxes in results],
        )
        boxes = [
            {
                "keyframe_id": kid,
                "text": b.text,
                "x0": b.box[0],
                "y0": b.box[1],
                "x1": b.box[2],
                "y1": b.box[3],
                "confidence": b.confidence,
            }
            for kid, found in results
            for b in found
        ]
        if boxes:
            s.execute(insert(OcrBox), boxes)
        add_texts(s, "ocr_fts", [(kid, " ".join(b.text for b in found)) for kid, found in results if found])

    def clear(self, s: Session, ids: Sequence[int]) -> None:
        s.execute(delete(OcrBox).where(OcrBox.keyframe_id.in_(ids_param(ids))))
        s.execute(delete(KeyframeText).where(KeyframeText.keyframe_id.in_(ids_param(ids))))  # and ocr_fts

    def hit_columns(self, keyframe) -> list:
        return [select(KeyframeText.text).where(KeyframeText.keyframe_id == keyframe.id).scalar_subquery()]

    def hit_values(self, values: Sequence[Any]) -> dict[str, Any]:
        return {"ocr_text": values[0]}

    def shapes(self, s: Session, keyframe_id: int) -> list[Shape]:
        return [
            Shape(f'text "{b.text}" {b.confidence:.2f}', (b.x0, b.y0, b.x1, b.y1))
            for b in s.scalars(select(OcrBox).where(OcrBox.keyframe_id == keyframe_id).order_by(OcrBox.id))
        ]

    def facts(self, fields: dict[str, Any]) -> list[str]:
        said = fields.get("ocr_text")
        return [f'text "{said[:40]}"'] if said else []

    def field_values(self, s: Session, keyframe_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        found = {
            kid: bool(said)
            for kid, said in s.execute(
                select(KeyframeText.keyframe_id, KeyframeText.text).where(
                    KeyframeText.keyframe_id.in_(ids_param(keyframe_ids))
                )
            )
        }
        return {int(kid): {"has_text": found.get(int(kid), False)} for kid in keyframe_ids}

    def field_conditions(self, f: KeyframeFilter) -> tuple[list[Condition], bool]:
        # An index cannot match the words: it keeps frames with some text, SQLite picks the ids.
        return ([Condition("has_text", "==", True)], True) if f.get("ocr") is not None else ([], False)
