"""The ranking policy: how the vector index, filters and word search make a ranked list.

- Nearest keyframes to a vector, exactly scored: an index whose scores are exact gives them
  itself; an approximate one's top 2k + 20 candidates are re-ranked with the stored vectors.
- A filter restricts that search exactly. An index that keeps filter fields (Milvus) evaluates
  the filter itself (words, which only SQLite's full-text index matches, become the ids it may
  return). Otherwise the filter is first applied to the nearest POST_FILTER x k candidates: a
  broad filter (say a third of the archive) keeps k of them, at the cost of one small query.
  When fewer than k pass, a second round fetches as many more as the share that passed asks
  for; a filter rarer still is selective, its matching ids are few and cheap to read, and the
  search runs again restricted to them.
- Words in a feature's text (on-screen text, transcripts): the exact words first, by BM25; then
  those where each word or a near term of it is found, below every exact one
  (storage/fulltext.py finds the near terms).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evr.storage import PRIMARY_MODEL, KeyframeFilter, Store
from evr.storage.features import Condition, WordsFeature
from evr.storage.filters import field_conditions
from evr.storage.fulltext import WordMatch

# A filtered search first keeps the passing ones among the nearest max(POST_FILTER_MIN,
# POST_FILTER x k) candidates, then searches only the passing keyframes.
POST_FILTER = 8
POST_FILTER_MIN = 100
# When fewer than k of them pass, a second round fetches POST_FILTER_ROOM times the candidates
# the share that passed asks for, up to POST_FILTER_MAX; a filter rarer than that searches only
# the passing keyframes.
POST_FILTER_ROOM = 2
POST_FILTER_MAX = 5000

Ranked = list[tuple[int, float]]  # (keyframe id, score), best first


def nearest(
    store: Store,
    vector: np.ndarray,
    k: int,
    where: KeyframeFilter | None = None,
    among: np.ndarray | None = None,
    model: str = PRIMARY_MODEL,
) -> Ranked:
    """The k keyframes most similar to `vector` by one model's vectors, as (id, cosine
    similarity) best first, among those that pass `where` (and are `among` those ids, when given)."""
    active = where is not None and where.active
    mirror = store.mirror(model)
    with mirror.lock:  # not while another thread's catch-up changes the index
        index = mirror.index
        if index.keeps_fields:
            conditions, in_sql = field_conditions(where) if active else ([], None)
            allowed = store.filters.ids(in_sql, among) if in_sql is not None else among
            return _ranked(store, model, vector, k, allowed, conditions)
        if among is not None:
            return _ranked(store, model, vector, k, store.filters.ids(where, among) if active else np.asarray(among))
        if not active:
            return _ranked(store, model, vector, k)
        fetch = max(POST_FILTER_MIN, POST_FILTER * k)
        for _ in range(2):
            _, ids = index.search(vector, fetch)
            candidates = ids[0][ids[0] >= 0]
            passing = candidates[np.isin(candidates, store.filters.ids(where, among=candidates))]
            if len(passing) >= k or len(candidates) < fetch:  # enough, or every keyframe was a candidate
                return exact(store, vector, passing, model)[:k]
            # Some passed: as many again as the share that passed says k needs, with room. Reading
            # every passing id instead costs with the archive (1 in 15 of 1M: 6x the plain search).
            need = int(np.ceil(POST_FILTER_ROOM * k * len(candidates) / max(len(passing), 1)))
            if not len(passing) or need > POST_FILTER_MAX:
                break
            fetch = need
        return _ranked(store, model, vector, k, store.filters.ids(where))


def _ranked(
    store: Store,
    model: str,
    vector: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
    conditions: Sequence[Condition] = (),
) -> Ranked:
    """Top k from the model's index, scored exactly (see the module's docstring)."""
    index = store.mirror(model).index
    fetch = k if index.exact else 2 * k + 20
    scores, ids = index.search(vector, fetch, allowed, conditions)
    if index.exact:  # ties by id, as `exact` orders them
        return sorted(((int(i), float(sc)) for i, sc in zip(ids[0], scores[0]) if i >= 0), key=lambda p: (-p[1], p[0]))
    return exact(store, vector, ids[0][ids[0] >= 0], model)[:k]


def exact(store: Store, vector: np.ndarray, keyframe_ids: np.ndarray, model: str = PRIMARY_MODEL) -> Ranked:
    """Those keyframes by exact cosine similarity to `vector` (one model's), best first (ties by id)."""
    ids, vectors = store.catalog.stored_vectors(keyframe_ids, model)
    if not len(ids):
        return []
    scores = vectors @ np.asarray(vector, dtype=np.float32)
    order = np.lexsort((ids, -scores))
    return [(int(ids[i]), float(scores[i])) for i in order]


def words(store: Store, feature: WordsFeature, match: WordMatch, where: KeyframeFilter | None, limit: int) -> Ranked:
    """The best `limit` keyframes whose feature text holds every word (accents and case ignored)
    and that pass `where`, as (keyframe id, -bm25); then, below them, those that hold each word
    or a near term of it, their scores shifted under the lowest exact one (their order kept), so
    a score never ranks a near match above an exact one."""
    found = store.words.ranked(feature, match, where, limit)
    exact = [(kid, score) for kid, score, is_exact in found if is_exact]
    near = [(kid, score) for kid, score, is_exact in found if not is_exact]
    if not near or not exact:
        return exact + near
    shift = min(score for _, score in exact) - max(score for _, score in near) - 1.0
    return exact + [(kid, score + min(shift, 0.0)) for kid, score in near]
