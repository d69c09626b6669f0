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
        for part in field_sql(feature, f, Keyframe.id, few=among is not None):
            stmt = stmt.where(part)
        condition = feature.condition(f, Keyframe.id, few=among is not None)
        for part in condition if isinstance(condition, list) else [condition] if condition is not None else []:
            stmt = stmt.where(part)
    return stmt


def field_sql(feature, f: KeyframeFilter, keyframe_id, few: bool) -> list:
    """The feature's field conditions in `f` (`field_conditions`) as SQL conditions on
    `keyframe_id` (a column), for the fields it keeps in a column: the comparisons on one table's
    columns hold together on its row, each label needs a row of its own. `few`: the keyframes are
    a given few, so each one's rows are probed by key rather than a whole list of ids read."""
    conditions, _ = feature.field_conditions(f)
    kept = {field.name: field for field in feature.fields if field.column is not None}
    compared: dict = {}  # a table's keyframe column -> the comparisons on its columns
    labels = []
    for c in conditions:
        field = kept.get(c.field)
        if field is None:
            continue  # not in a column: the feature's own `condition` says it
        if field.kind == "labels":
            values = [c.value] if c.op == "contains" else list(c.value)
            labels += [(field.keyframe_column, [field.column == value]) for value in values]
        else:
            compared.setdefault(field.keyframe_column, []).append(_compare(field.column, c))
    return [_rows_hold(key, holds, keyframe_id, few) for key, holds in [*compared.items(), *labels]]


def _compare(column, c: Condition):
    if c.op == "in":
        return column.in_(list(c.value))
    if c.op == ">=":
        return column >= c.value
    if c.op == "<=":
        return column <= c.value
    if c.op == "==":
        return column == c.value
    raise ValueError(f"{c.op!r} does not compare a column")


def _rows_hold(key, holds: list, keyframe_id, few: bool):
    """The keyframe has a row (keyed by `key`) where every one of `holds` is true."""
    if few:  # probe each candidate's rows by key: the table may hold a million rows that pass
        return select(key).where(key == keyframe_id, *holds).exists()
    return keyframe_id.in_(select(key).where(*holds))


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
