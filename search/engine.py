"""Search: a query (text, image or a stored keyframe) -> CLIP vector -> FAISS top-k -> ranked hits.

The CLI and the UI both call `SearchEngine.search`; there is no second search path.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from indexer.analyzers import ClipEncoder
from storage import Store, StoreError

from .hits import Hit

log = logging.getLogger(__name__)

GROUPS = (None, "video")


class QueryError(ValueError):
    """The query itself is wrong (empty, unknown keyframe, bad option); the message says how."""


@dataclass(frozen=True)
class Query:
    text: str | None = None
    image: np.ndarray | None = None  # RGB uint8
    like: int | None = None  # keyframe id
    k: int = 20
    group: str | None = None  # "video": at most k videos, each with its best `per_video` hits
    per_video: int = 1

    def validate(self) -> None:
        given = [self.text is not None, self.image is not None, self.like is not None]
        if sum(given) != 1:
            raise QueryError("give exactly one of: a text query, --image FILE or --like KEYFRAME_ID")
        if self.text is not None and not self.text.strip():
            raise QueryError("the text query is empty")
        if self.k < 1:
            raise QueryError("k must be at least 1")
        if self.group not in GROUPS:
            raise QueryError(f"group must be one of {', '.join(g for g in GROUPS if g)}, not {self.group!r}")
        if self.per_video < 1:
            raise QueryError("per_video must be at least 1")


def read_image(source: str | bytes) -> np.ndarray:
    """An image file path or its bytes -> RGB array, or QueryError if it is not a readable image."""
    import cv2

    if isinstance(source, bytes):
        bgr = cv2.imdecode(np.frombuffer(source, np.uint8), cv2.IMREAD_COLOR)
    else:
        bgr = cv2.imread(str(source), cv2.IMREAD_COLOR)
    if bgr is None:
        name = "the uploaded file" if isinstance(source, bytes) else source
        raise QueryError(f"cannot read {name} as an image (JPEG, PNG, WebP, BMP, TIFF)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class SearchEngine:
    def __init__(self, store: Store, clip: ClipEncoder):
        self.store = store
        self.clip = clip
        # A reader fixes its in-memory copy if the FAISS file lags behind SQLite (after a crash).
        store.repair()

    def query_vector(self, q: Query) -> np.ndarray:
        if q.like is not None:
            vec = self.store.vector(q.like)
            if vec is None:
                raise QueryError(f"no keyframe with id {q.like} in this index")
            return vec
        self.store.check_model(self.clip.info)
        if q.text is not None:
            return self.clip.encode_texts([q.text])[0]
        return self.clip.encode_images([q.image])[0]

    def search(self, q: Query) -> list[Hit]:
        q.validate()
        if self.store.model() is None:
            raise StoreError("the index is empty: run `evr index <folder>` first")
        vec = self.query_vector(q)
        ranked = self._rank(vec, q)
        rows = self.store.keyframes([kid for kid, _ in ranked])
        hits = []
        for kid, score in ranked:
            if kid in rows:
                hits.append(Hit.from_row(len(hits) + 1, rows[kid], score))
        return hits

    def _rank(self, vec: np.ndarray, q: Query) -> list[tuple[int, float]]:
        """(keyframe id, score) best first; with grouping, over-fetch until k videos are filled."""
        total = self.store.vectors.ntotal
        if q.group is None:
            scores, ids = self.store.vectors.search(vec, q.k)
            return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        fetch = q.k * q.per_video * 4
        while True:
            scores, ids = self.store.vectors.search(vec, fetch)
            video_of = {kid: row.video_db_id for kid, row in self.store.keyframes(ids[0][ids[0] >= 0]).items()}
            per_video: dict[int, list[tuple[int, float]]] = {}
            for i, s in zip(ids[0], scores[0]):
                v = video_of.get(int(i))
                if v is None:
                    continue
                group = per_video.setdefault(v, [])
                if len(group) < q.per_video:
                    group.append((int(i), float(s)))
            if len(per_video) >= q.k or fetch >= total:
                break
            fetch *= 4
        # Videos in order of their best hit; dicts keep insertion order, which is score order.
        return [hit for group in list(per_video.values())[: q.k] for hit in group]
