"""Objects: per keyframe each detected object's label, score and box (a COCO detector at indexing,
or an AI Challenge package's OpenImages detections on import), labels in one lower-case
vocabulary. Filter: `--object car` (at least one), `--object person:3` (at least three),
`--object car@left` (its box's centre in that place: storage/regions.py), `car:2@bottom`,
repeatable, all must hold; alone, a query ranked by the summed scores of the matching objects."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, and_, delete, func, insert, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .. import regions
from ..schema import Base, BoxColumns
from ..sqlutil import ids_param
from ..types import Box, KeyframeFilter
from .base import Condition, FeatureStorage, Field, FilterParam, Shape, checked_by

# Distinct labels an index that filters itself keeps per keyframe (its labels field's
# capacity), the most frequent first: a frame with more loses its rarest ones to a label filter.
MAX_LABELS = 16
_SPEC = re.compile(r"^(?P<label>[^:@]+?)\s*(?::\s*(?P<count>\d+))?\s*(?:@(?P<where>.+))?$")


# OpenImages names (an AIC package's detector) that COCO (evr's detector) names otherwise, in
# lower case; every other name is kept, lower-cased ("Human face" -> "human face").
OPENIMAGES_TO_COCO = {
    "man": "person",
    "woman": "person",
    "boy": "person",
    "girl": "person",
    "person": "person",
    "human": "person",
    "motorcycle": "motorcycle",
    "bicycle": "bicycle",
    "car": "car",
    "bus": "bus",
    "truck": "truck",
    "boat": "boat",
    "traffic light": "traffic light",
    "dog": "dog",
    "cat": "cat",
    "horse": "horse",
    "bird": "bird",
    "airplane": "airplane",
    "aircraft": "airplane",
    "train": "train",
    "television": "tv",
    "mobile phone": "cell phone",
    "laptop": "laptop",
    "chair": "chair",
    "table": "dining table",
    "handbag": "handbag",
    "umbrella": "umbrella",
    "backpack": "backpack",
    "bench": "bench",
    "bottle": "bottle",
    "cup": "cup",
    "bowl": "bowl",
    "clock": "clock",
    "book": "book",
    "couch": "couch",
    "bed": "bed",
    "sheep": "sheep",
    "cattle": "cow",
    "elephant": "elephant",
    "bear": "bear",
    "zebra": "zebra",
    "giraffe": "giraffe",
    "kite": "kite",
    "skateboard": "skateboard",
    "surfboard": "surfboard",
    "tennis racket": "tennis racket",
    "ball": "sports ball",
    "football": "sports ball",
    "stop sign": "stop sign",
    "fire hydrant": "fire hydrant",
    "parking meter": "parking meter",
    "van": "car",
    "taxi": "car",
    "vehicle": "car",
    "land vehicle": "car",
}


def common_label(name: str) -> str:
    """A detector's class name in evr's vocabulary: lower case, COCO's name where it has one."""
    lower = " ".join(name.lower().split())
    return OPENIMAGES_TO_COCO.get(lower, lower)


@dataclass(frozen=True)
class DetectedObject:
    label: str  # lower case: "person", "car", "traffic light"
    score: float
    box: Box  # x0, y0, x1, y1 as fractions of the frame


@dataclass(frozen=True)
class ObjectsInFrame:
    objects: list[DetectedObject]


class KeyframeObjects(Base):
    """How many objects were found in a keyframe (no row: nothing looked for them)."""

    __tablename__ = "keyframe_objects"
    keyframe_id: Mapped[int] = mapped_column(ForeignKey("keyframes.id", ondelete="CASCADE"), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class ObjectRow(BoxColumns, Base):
    __tablename__ = "objects"
    __table_args__ = (Index("ix_objects_label_keyframe", "label", "keyframe_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    keyframe_id: Mapped[int] = mapped_column(ForeignKey("keyframes.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String)
    score: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class ObjectSpec:
    label: str
    count: int  # at least this many
    place: tuple[float, float, float, float] | None  # where their centres are; None: anywhere


def parse_spec(spec: str) -> ObjectSpec:
    """ "car", "person:3", "car@left", "car:2@bottom-left" -> ObjectSpec; ValueError."""
    found = _SPEC.match(spec.strip())
    if not found or not found["label"].strip():
        raise ValueError("must be LABEL, LABEL:N, LABEL@WHERE or LABEL:N@WHERE (car, person:3, car@left)")
    place = regions.place(found["where"]) if found["where"] else None
    count = int(found["count"]) if found["count"] else 1
    if not 1 <= count <= 10_000:
        raise ValueError("asks for a count from 1 to 10000")
    return ObjectSpec(found["label"].strip().lower(), count, place)


def _specs(f: KeyframeFilter) -> list[ObjectSpec]:
    """The filter's object specs, parsed."""
    return [parse_spec(spec) for spec in f.get("object", ())]


def _matches(spec: ObjectSpec):
    """SQL: an object row of the spec's label, centred in its place."""
    parts = [ObjectRow.label == spec.label]
    if spec.place is not None:
        x0, y0, x1, y1 = spec.place
        cx, cy = (ObjectRow.x0 + ObjectRow.x1) / 2, (ObjectRow.y0 + ObjectRow.y1) / 2
        parts += [cx >= x0, cx < (x1 + 1e-9 if x1 >= 1 else x1), cy >= y0, cy < (y1 + 1e-9 if y1 >= 1 else y1)]
    return parts


class ObjectStorage(FeatureStorage):
    name = "objects"
    params = (
        FilterParam(
            "object",
            str,
            "Objects (each must be there)",
            "an object in the frame: car, person:3 (at "
            "least 3), car@left (in that place), car:2@bottom (repeatable; all must hold; alone, a "
            "query)",
            many=True,
            metavar="LABEL[:N][@WHERE]",
            check=checked_by(parse_spec),
            query=True,
        ),
    )
    hit_fields = ("objects",)
    fields = (Field("objects", "labels"),)

    def put(self, s: Session, results: Sequence[tuple[int, ObjectsInFrame]]) -> None:
        if not results:
            return
        s.execute(
            insert(KeyframeObjects), [{"keyframe_id": kid, "count": len(found.objects)} for kid, found in results]
        )
        rows = [
            {
                "keyframe_id": kid,
                "label": o.label,
                "score": o.score,
                "x0": o.box[0],
                "y0": o.box[1],
                "x1": o.box[2],
                "y1": o.box[3],
            }
            for kid, found in results
            for o in found.objects
        ]
        if rows:
            s.execute(insert(ObjectRow), rows)

    def clear(self, s: Session, ids: Sequence[int]) -> None:
        for table in (ObjectRow, KeyframeObjects):
            s.execute(delete(table).where(table.keyframe_id.in_(ids_param(ids))))

    def hit_columns(self, keyframe) -> list:
        seen = select(KeyframeObjects.count).where(KeyframeObjects.keyframe_id == keyframe.id)
        labels = select(func.json_group_array(ObjectRow.label)).where(ObjectRow.keyframe_id == keyframe.id)
        return [seen.scalar_subquery(), labels.scalar_subquery()]

    def hit_values(self, values: Sequence[Any]) -> dict[str, Any]:
        count, labels = values
        if count is None:
            return {"objects": None}
        return {"objects": dict(Counter(json.loads(labels)).most_common())}

    def shapes(self, s: Session, keyframe_id: int) -> list[Shape]:
        return [
            Shape(f"{o.label} {o.score:.2f}", (o.x0, o.y0, o.x1, o.y1))
            for o in s.scalars(select(ObjectRow).where(ObjectRow.keyframe_id == keyframe_id).order_by(ObjectRow.id))
        ]

    def facts(self, fields: dict[str, Any]) -> list[str]:
        found = fields.get("objects")
        if not found:
            return []
        return ["objects " + ", ".join(f"{label} x{n}" if n > 1 else label for label, n in list(found.items())[:5])]

    def condition(self, f: KeyframeFilter, keyframe_id, few: bool):
        specs = _specs(f)
        parts = []
        for spec in specs:
            having = select(ObjectRow.keyframe_id).where(*_matches(spec))
            if few:
                counted = (
                    select(func.count())
                    .select_from(ObjectRow)
                    .where(*_matches(spec), ObjectRow.keyframe_id == keyframe_id)
                )
                parts.append(counted.scalar_subquery() >= spec.count)
            else:
                parts.append(keyframe_id.in_(having.group_by(ObjectRow.keyframe_id).having(func.count() >= spec.count)))
        return parts or None

    def score(self, f: KeyframeFilter, keyframe_id):
        """Alone, the summed detection scores of the objects that match any spec."""
        specs = _specs(f)
        if not specs:
            return None
        matching = or_(*[and_(*_matches(spec)) for spec in specs])
        return (
            select(func.coalesce(func.sum(ObjectRow.score), 0.0))
            .where(ObjectRow.keyframe_id == keyframe_id, matching)
            .scalar_subquery()
        )

    def field_values(self, s: Session, keyframe_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        labels: dict[int, Counter] = {}
        for kid, label in s.execute(
            select(ObjectRow.keyframe_id, ObjectRow.label).where(ObjectRow.keyframe_id.in_(ids_param(keyframe_ids)))
        ):
            labels.setdefault(kid, Counter())[label] += 1
        return {
            int(kid): {
                "objects": sorted(label[:32] for label, _ in labels.get(int(kid), Counter()).most_common(MAX_LABELS))
            }
            for kid in keyframe_ids
        }

    def field_conditions(self, f: KeyframeFilter) -> tuple[list[Condition], bool]:
        """A label that must be there is a field condition; counts and places are SQL's."""
        specs = _specs(f)
        parts = [Condition("objects", "contains", spec.label) for spec in specs]
        return parts, any(spec.count > 1 or spec.place is not None for spec in specs)
