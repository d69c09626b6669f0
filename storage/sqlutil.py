"""SQL building blocks the storage rooms share: id lists as one parameter, id columns as arrays,
vectors as blobs, and the commit counter readers watch."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from sqlalchemy import func, literal_column, select, text
from sqlalchemy.orm import Session


def ids_param(ids: Sequence[int] | np.ndarray):
    """A SELECT of the given ids, passed as one JSON parameter: any number of them, where a
    bound parameter each would meet SQLite's limit on parameters."""
    return select(literal_column("value")).select_from(func.json_each(json.dumps(np.asarray(ids).tolist())))


def id_array(s: Session, stmt) -> np.ndarray:
    """The integer column of `stmt` as an array, joined into one string by SQLite and parsed by
    numpy: a million ids cost no Python object each (about 4x faster than fetching rows)."""
    sub = stmt.subquery()
    joined = s.scalar(select(func.group_concat(list(sub.c)[0])))
    return np.fromstring(joined, dtype=np.int64, sep=",") if joined else np.zeros(0, np.int64)


def vector_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f2").tobytes()


def unpack_vectors(rows: Sequence[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    """(keyframe id, float16 blob) rows -> (ids, float32 unit vectors). Normalised again: float16
    rounding leaves a norm off 1 by up to 1e-3, and a vector must score 1 against itself."""
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f2").reshape(len(rows), -1).astype(np.float32)
    return ids, vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def count_commit(s: Session) -> None:
    """Count a commit that changed keyframes: readers compare the counter to know when their
    in-memory vectors are behind."""
    s.execute(
        text(
            "INSERT INTO meta(key, value) VALUES ('generation', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )
    )
