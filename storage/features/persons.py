"""Persons and poses: per keyframe how many people, the share of the frame they cover and where
(a small mask); per person a box, a score, 17 COCO keypoints and pose labels. Filters: people
in the frame (`--min-persons`, `--max-persons`), pose labels someone holds (`--pose`, each must
hold), and close-ups (`--min-person-area`: people cover at least that share of the frame)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import (
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..schema import Base, BoxColumns
from ..sqlutil import ids_param
from ..types import Box, KeyframeFilter
from .base import Condition, FeatureStorage, Field, FilterParam, Shape

# The pose labels stored per person (indexer/analyzers/persons/pose_labels.py says how each is
# read from keypoints), and that filters name: one posture each, and "arms_raised" when it applies.
POSTURES = ("standing", "sitting", "lying", "bending", "unknown")
POSE_LABELS = POSTURES + ("arms_raised",)
MAX_COUNT = 2**63 - 1  # SQLite's largest integer


@dataclass(frozen=True)
class PersonPose:
    box: Box
    score: float
    keypoints: list[tuple[float, float, float]]  # 17 COCO keypoints: x, y (fractions), visibility 0-1
    labels: list[str]  # from indexer/analyzers/persons/pose_labels.py


@dataclass(frozen=True)
class PersonsInFrame:
    persons: list[PersonPose]
    mask_area: float  # fraction of the frame covered by people
    mask_png: bytes | None  # the mask as a small 1-bit PNG


class KeyframePersons(Base):
    """How many people a keyframe shows and the share of it they cover (no row: the person
    analyzer did not run on it, so no person filter keeps it)."""

    __tablename__ = "keyframe_persons"
    keyframe_id: Mapped[int] = mapped_column(ForeignKey("keyframes.id", ondelete="CASCADE"), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, index=True)
    area: Mapped[float] = mapped_column(Float)  # mask area / frame area
    mask: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)  # a small 1-bit PNG


class Person(BoxColumns, Base):
    """One detected person: box (fractions of the frame), 17 COCO keypoints, pose labels."""

    __tablename__ = "persons"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    keyframe_id: Mapped[int] = mapped_column(ForeignKey("keyframes.id", ondelete="CASCADE"), index=True)
    score: Mapped[float] = mapped_column(Float)
    keypoints: Mapped[str] = mapped_column(Text)  # JSON [[x, y, visibility] x 17], x/y as fractions
    labels: Mapped[str] = mapped_column(Text)  # JSON list, e.g. ["standing", "arms_raised"]


class KeyframePose(Base):
    """A pose label that some person in the keyframe has: the pose filter's index (a range of
    the primary key per label), where Person.labels keeps each person's labels for display."""

    __tablename__ = "keyframe_poses"
    __table_args__ = (PrimaryKeyConstraint("label", "keyframe_id"), {"sqlite_with_rowid": False})
    label: Mapped[str] = mapped_column(String)
    keyframe_id: Mapped[int] = mapped_column(ForeignKey("keyframes.id", ondelete="CASCADE"), index=True)


def _count(value: int) -> str | None:
    return None if 0 <= value <= MAX_COUNT else f"must be a count between 0 and {MAX_COUNT}"


def _share(value: float) -> str | None:
    return None if 0 <= value <= 1 else "must be a share of the frame between 0 and 1"


class PersonStorage(FeatureStorage):
    name = "persons"
    params = (
        FilterParam(
            "min_persons", int, "At least N people", "at least N people in the frame", metavar="N", check=_count
        ),
        FilterParam("max_persons", int, "At most N people", "at most N people in the frame", metavar="N", check=_count),
        FilterParam(
            "pose",
            str,
            "Poses (someone has each)",
            "someone in the frame has this pose label (repeatable; all must hold)",
            many=True,
            choices=POSE_LABELS,
            metavar="LABEL",
        ),
        FilterParam(
            "min_person_area",
            float,
            "Close-up: people cover at least (share)",
            "a close-up: people cover at least this share of the frame (0-1)",
            metavar="SHARE",
            check=_share,
        ),
    )
    hit_fields = ("person_count", "person_area", "poses")
    # A keyframe the person analyzer never saw has no row: it passes no person condition.
    fields = (
        Field("persons", "int", True, KeyframePersons.count, KeyframePersons.keyframe_id),
        Field("person_area", "float", True, KeyframePersons.area, KeyframePersons.keyframe_id),
        Field("poses", "labels", False, KeyframePose.label, KeyframePose.keyframe_id),
    )

    def put(self, s: Session, results: Sequence[tuple[int, PersonsInFrame]]) -> None:
        if not results:
            return
        s.execute(
            insert(KeyframePersons),
            [
                {"keyframe_id": kid, "count": len(found.persons), "area": found.mask_area, "mask": found.mask_png}
                for kid, found in results
            ],
        )
        people = [
            {
                "keyframe_id": kid,
                "x0": p.box[0],
                "y0": p.box[1],
                "x1": p.box[2],
                "y1": p.box[3],
                "score": p.score,
                "keypoints": json.dumps([[round(v, 4) for v in kp] for kp in p.keypoints]),
                "labels": json.dumps(p.labels),
            }
            for kid, found in results
            for p in found.persons
        ]
        if people:
            s.execute(insert(Person), people)
        poses = [
            {"label": label, "keyframe_id": kid}
            for kid, found in results
            for label in sorted({lb for p in found.persons for lb in p.labels})
        ]
        if poses:
            s.execute(insert(KeyframePose), poses)

    def clear(self, s: Session, ids: Sequence[int]) -> None:
        for table in (Person, KeyframePose, KeyframePersons):
            s.execute(delete(table).where(table.keyframe_id.in_(ids_param(ids))))

    def hit_columns(self, keyframe) -> list:
        seen = select(KeyframePersons).where(KeyframePersons.keyframe_id == keyframe.id)
        # Each person's labels in detection order (the index on keyframe_id keeps rowid order).
        labels = select(func.json_group_array(func.json(Person.labels))).where(Person.keyframe_id == keyframe.id)
        return [
            seen.with_only_columns(KeyframePersons.count).scalar_subquery(),
            seen.with_only_columns(KeyframePersons.area).scalar_subquery(),
            labels.scalar_subquery(),
        ]

    def hit_values(self, values: Sequence[Any]) -> dict[str, Any]:
        count, area, labels = values
        if count is None:
            return {"person_count": None, "person_area": None, "poses": []}
        return {"person_count": count, "person_area": round(area, 4), "poses": json.loads(labels)}

    def shapes(self, s: Session, keyframe_id: int) -> list[Shape]:
        """Each person's box and keypoints, and where people are (the mask, as stored)."""
        found = [
            Shape(
                f"person {p.score:.2f} {' '.join(json.loads(p.labels))}",
                (p.x0, p.y0, p.x1, p.y1),
                tuple(tuple(kp) for kp in json.loads(p.keypoints)),
            )
            for p in s.scalars(select(Person).where(Person.keyframe_id == keyframe_id).order_by(Person.id))
        ]
        png = s.scalar(select(KeyframePersons.mask).where(KeyframePersons.keyframe_id == keyframe_id))
        return found + ([Shape("people", mask=decode_mask(png))] if png else [])

    def facts(self, fields: dict[str, Any]) -> list[str]:
        count = fields.get("person_count")
        return [] if count is None else [f"{count} {'person' if count == 1 else 'people'}"]

    def check_filter(self, f: KeyframeFilter) -> str | None:
        low, high = f.get("min_persons"), f.get("max_persons")
        if low is not None and high is not None and low > high:
            return f"min_persons {low} is more than max_persons {high}"
        return None

    def field_values(self, s: Session, keyframe_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        seen = {
            kid: (count, area)
            for kid, count, area in s.execute(
                select(KeyframePersons.keyframe_id, KeyframePersons.count, KeyframePersons.area).where(
                    KeyframePersons.keyframe_id.in_(ids_param(keyframe_ids))
                )
            )
        }
        poses: dict[int, list[str]] = {}
        for kid, label in s.execute(
            select(KeyframePose.keyframe_id, KeyframePose.label).where(
                KeyframePose.keyframe_id.in_(ids_param(keyframe_ids))
            )
        ):
            poses.setdefault(kid, []).append(label)
        return {
            int(kid): {
                "persons": seen.get(int(kid), (None, None))[0],
                "person_area": seen.get(int(kid), (None, None))[1],
                "poses": sorted(poses.get(int(kid), [])),
            }
            for kid in keyframe_ids
        }

    def field_conditions(self, f: KeyframeFilter) -> tuple[list[Condition], bool]:
        # A NULL count (no person analysis) fails every comparison, as in SQLite.
        parts = []
        if f.get("min_persons") is not None:
            parts.append(Condition("persons", ">=", int(f.get("min_persons"))))
        if f.get("max_persons") is not None:
            parts.append(Condition("persons", "<=", int(f.get("max_persons"))))
        if f.get("min_person_area") is not None:
            parts.append(Condition("person_area", ">=", float(f.get("min_person_area"))))
        if f.get("pose"):
            parts.append(Condition("poses", "contains_all", list(f.get("pose"))))
        return parts, False


def decode_mask(png: bytes) -> np.ndarray:
    """A stored mask as a boolean array (True: a person)."""
    import cv2

    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE) > 127
