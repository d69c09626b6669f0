"""The example feature's storage: one row per keyframe with its brightness; a hit field
`brightness`; a filter `min_brightness` (`--min-brightness 0.5`), in SQL and as a field condition."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, ForeignKey, delete, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from evr.storage.features import Condition, FeatureStorage, Field, FilterParam
from evr.storage.schema import Base
from evr.storage.sqlutil import ids_param
from evr.storage.types import KeyframeFilter


class KeyframeBrightness(Base):
    __tablename__ = "keyframe_brightness"
    keyframe_id: Mapped[int] = mapped_column(ForeignKey("keyframes.id", ondelete="CASCADE"), primary_key=True)
    brightness: Mapped[float] = mapped_column(Float, index=True)


def _share(value: float) -> str | None:
    return None if 0 <= value <= 1 else "must be a brightness between 0 and 1"


class BrightnessStorage(FeatureStorage):
    name = "brightness"
    params = (
        FilterParam(
            "min_brightness",
            float,
            "At least this bright (0-1)",
            "the keyframe's mean luma is at least this (0 black, 1 white)",
            metavar="SHARE",
            check=_share,
        ),
    )
    hit_fields = ("brightness",)
    # Kept in a column: storage/filters.py renders its condition (below) as SQL, none written here.
    fields = (Field("brightness", "float", True, KeyframeBrightness.brightness, KeyframeBrightness.keyframe_id),)

    def put(self, s: Session, results: Sequence[tuple[int, float]]) -> None:
        rows = [{"keyframe_id": kid, "brightness": value} for kid, value in results if value is not None]
        if rows:
            s.execute(insert(KeyframeBrightness), rows)

    def clear(self, s: Session, ids: Sequence[int]) -> None:
        s.execute(delete(KeyframeBrightness).where(KeyframeBrightness.keyframe_id.in_(ids_param(ids))))

    def hit_columns(self, keyframe) -> list:
        return [
            select(KeyframeBrightness.brightness).where(KeyframeBrightness.keyframe_id == keyframe.id).scalar_subquery()
        ]

    def hit_values(self, values: Sequence[Any]) -> dict[str, Any]:
        return {"brightness": None if values[0] is None else round(values[0], 4)}

    def facts(self, fields: dict[str, Any]) -> list[str]:
        value = fields.get("brightness")
        return [] if value is None else [f"brightness {value:.2f}"]

    def field_values(self, s: Session, keyframe_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        found = dict(
            s.execute(
                select(KeyframeBrightness.keyframe_id, KeyframeBrightness.brightness).where(
                    KeyframeBrightness.keyframe_id.in_(ids_param(keyframe_ids))
                )
            ).all()
        )
        return {int(kid): {"brightness": found.get(int(kid))} for kid in keyframe_ids}

    def field_conditions(self, f: KeyframeFilter) -> tuple[list[Condition], bool]:
        low = f.get("min_brightness")
        return ([Condition("brightness", ">=", float(low))] if low is not None else []), False
