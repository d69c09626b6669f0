"""Filters: which keyframes pass a KeyframeFilter, in SQL, and the same as field conditions (for a
vector index that filters itself: Milvus renders them).

The core's conditions (videos, a time range) are on keyframe and video columns; each feature
adds its own (storage/features/). Every condition is on an indexed column or table.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from . import features
from .database import Database
from .errors import StoreError
from .features.base import Condition
from .schema import Keyframe, Video
from .sqlutil import id_array, ids_param
from .types import KeyframeFilter


def unknown_params(f: KeyframeFilter) -> list[str]:
    return [name for name, _ in f.features if features.param(name) is None]


def matching(f: KeyframeFilter, among: np.ndarray | None = None):
    """A SELECT of the ids of the keyframes that pass every condition of `f` (and are `among`
    those ids), or None when `f` can match nothing (words with no word in them)."""
    unknown = unknown_params(f)
    if unknown:
        raise StoreError(f"no feature filters by {unknown[0]!r}")
    stmt = select(Keyframe.id)
    if among is not None:
        stmt = stmt.where(Keyframe.id.in_(ids_param(among)))
    if f.videos:
        stmt = stmt.join(Video, Keyframe.video_id == Video.id).where(Video.stem.in_(f.videos))
    if f.time_from is not None:
        stmt = stmt.where(Keyframe.timestamp >= f.time_from)
    if f.time_to is not None:
        stmt = stmt.where(Keyframe.timestamp <= f.time_to)
    for feature in features.FEATURES.values():
        if feature.matches_nothing(f):
            return None
        condition = feature.condition(f, Keyframe.id, few=among is not None)
        for part in condition if isinstance(condition, list) else [condition] if condition is not None else []:
            stmt = stmt.where(part)
    return stmt


class Filters:
    def __init__(self, db: Database):
        self.db = db

    def ranked(self, feature, f: KeyframeFilter, limit: int) -> list[tuple[int, float]]:
        """The best `limit` keyframes that pass `f` by `feature.score` under its values in `f`,
        as (id, score), best first (ties by id)."""
        stmt = matching(f)
        score = feature.score(f, Keyframe.id)
        if stmt is None or score is None:
            return []
        with self.db.session() as s:
            rows = s.execute(
                select(Keyframe.id, score).where(Keyframe.id.in_(stmt)).order_by(score.desc(), Keyframe.id).limit(limit)
            ).all()
        return [(int(kid), float(value or 0.0)) for kid, value in rows]

    def ids(self, f: KeyframeFilter, among: np.ndarray | None = None) -> np.ndarray:
        """Ids of the keyframes that pass every condition of `f` (and are `among` those ids),
        sorted."""
        stmt = matching(f, among)
        if stmt is None:
            return np.zeros(0, np.int64)
        with self.db.session() as s:
            return np.sort(id_array(s, stmt))


def field_conditions(f: KeyframeFilter) -> tuple[list[Condition], KeyframeFilter | None]:
    """(the conditions of `f` that an index which filters itself evaluates beside the vectors, all
    of which must hold; the part of `f` that SQL must still turn into keyframe ids, or None)."""
    parts = []
    if f.videos:
        parts.append(Condition("video", "in", list(f.videos)))
    if f.time_from is not None:
        parts.append(Condition("time", ">=", float(f.time_from)))
    if f.time_to is not None:
        parts.append(Condition("time", "<=", float(f.time_to)))
    in_sql: dict[str, object] = {}
    for feature in features.FEATURES.values():
        more, needs_sql = feature.field_conditions(f)
        parts += more
        if needs_sql:
            in_sql.update({p.name: f.get(p.name) for p in feature.params if f.get(p.name) is not None})
    return parts, KeyframeFilter.of(**in_sql) if in_sql else None
