"""Search: query -> vector search -> filters -> word rankings and fusion / temporal chains -> hits.

The CLI and the app both call `SearchEngine`; there is no second search path, and neither
reaches into the store: what they show besides hits (the index's overview, a video's shots, a
hit's neighbours, what features found where) comes from here too.

Ranking rules (README.md, "Search rules"; search/ranking.py for the vector and word searches):
- A text, image or keyframe query ranks keyframes by CLIP cosine similarity; filters restrict
  that search exactly.
- Words of a feature searched by words (on-screen text, speech) without another query: the
  keyframes they are found at, ranked by BM25 (speech: the keyframe nearest the moment the first
  word is said). Both kinds at once: the rankings fused, each filtered by the other's words.
- A text query is also looked up in those features' text. When some of it holds all its words,
  the rankings (CLIP and each feature's) are fused by reciprocal rank fusion, score = sum over
  rankings of 1 / (60 + rank), so a frame that literally shows or says the words ranks near the top.
- Temporal (`then`, `within`): chains of keyframes of one video, one per event in order, each
  0 < S' <= within seconds after the previous; ranked by the sum of their similarities. Each
  first-event keyframe gives at most one chain, its best.
- Relevance feedback (`more_like`, `less_like`): the query vector q becomes, by Rocchio,
  ROCCHIO_ALPHA q + ROCCHIO_BETA mean(liked) - ROCCHIO_GAMMA mean(disliked), normalised; without
  another query, the liked keyframes are the query. Disliked keyframes are left out of the hits.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from indexer.encoders import ClipEncoder
from storage import KeyframeFilter, KeyframeRow, ModelInfo, ShotRow, Store, StoreError, VideoRow
from storage.features import FEATURES, words_features

from . import ranking
from .errors import QueryError
from .hits import Hit
from .multilingual import EncodedText, QuerySettings, TextRouter
from .query import Query, check_keyframe_id, no_keyframe
from .summary import Summarizer, SummarySettings

log = logging.getLogger(__name__)

RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al., 2009)
# Rocchio's weights as the SMART system set them (Rocchio 1971; Manning et al., "Introduction to
# Information Retrieval", 9.1.1): judged-relevant frames pull the query hard, judged-irrelevant
# ones push it gently (a disliked frame says less about what is wanted than a liked one).
ROCCHIO_ALPHA, ROCCHIO_BETA, ROCCHIO_GAMMA = 1.0, 0.75, 0.15


@dataclass(frozen=True)
class Overview:
    videos: int
    keyframes: int
    model: ModelInfo | None
    writer_active: bool  # an `evr index` run holds the data folder now


class SearchEngine:
    def __init__(self, store: Store, clip: ClipEncoder, query: QuerySettings | None = None):
        self.store = store
        self.clip = clip
        self.text = TextRouter(query or QuerySettings(), clip)

    # -- searching --------------------------------------------------------------------------------

    def search(self, q: Query) -> list[Hit]:
        q.validate()
        # The vector index lags SQLite by up to a checkpoint during a run: answer from everything
        # committed (this also reads the index's facts, once).
        self.store.vectors.sync()
        if self.store.facts.model() is None:
            if self.store.writer_active():
                raise StoreError("nothing is indexed yet: an `evr index` run has just started; "
                                 "search again once it has committed its first video")
            raise StoreError("the index is empty: run `evr index <folder>` first")
        if q.text is not None or q.image is not None or q.then:
            # Vectors of another model would compare as noise: refuse before encoding anything.
            self.store.facts.check_model(self.clip.info)
        # Without a vector query the words rank (in _ranking) rather than filter.
        filters = q.filters if q.has_vector_query else q.filters.replace(
            **{f.words_param: None for f in words_features()})
        encoded = self.text.encode(q.text, q.lang) if q.text is not None else None
        vec = encoded.vector if encoded else self.query_vector(q) if q.image is not None or q.like is not None else None
        if q.then:
            return _encoded_by(self._temporal(vec, q, filters), encoded)
        if q.more_like or q.less_like:
            vec = self._rocchio(vec, q)
        fetch = q.k * q.per_video * 4 if q.group else q.k
        while True:
            ranked, match = self._ranking(q, vec, filters, fetch + len(q.less_like))
            ranked = [(kid, score) for kid, score in ranked if kid not in q.less_like]
            if q.group is None:
                return _encoded_by(self._hits(ranked[: q.k], match), encoded)
            grouped, filled = self._grouped(ranked, q)
            if filled or len(ranked) < fetch:  # k videos (or hits) found, or nothing more to fetch
                return _encoded_by(self._hits(grouped, match), encoded)
            fetch *= 4

    def query_vector(self, q: Query) -> np.ndarray:
        """The vector of an image or keyframe query (text goes through self.text, which says who read it)."""
        if q.like is not None:
            return self._keyframe_vectors([q.like])[0]
        return self.clip.encode_images([q.image])[0]

    def _keyframe_vectors(self, keyframe_ids) -> np.ndarray:
        ids, vectors = self.store.catalog.stored_vectors(list(keyframe_ids))
        missing = sorted(set(keyframe_ids) - set(ids.tolist()))
        if missing:
            raise no_keyframe(missing[0])
        return vectors

    def _rocchio(self, vec: np.ndarray | None, q: Query) -> np.ndarray:
        """Rocchio's query: ALPHA q + BETA mean(liked) - GAMMA mean(disliked), unit length.
        Without a query of its own (feedback alone), q is 0 and the liked frames lead."""
        moved = np.zeros(self.store.vectors.index.dim, np.float32) if vec is None else ROCCHIO_ALPHA * vec
        if q.more_like:
            moved = moved + ROCCHIO_BETA * self._keyframe_vectors(q.more_like).mean(axis=0)
        if q.less_like:
            moved = moved - ROCCHIO_GAMMA * self._keyframe_vectors(q.less_like).mean(axis=0)
        norm = float(np.linalg.norm(moved))
        if norm < 1e-6:
            raise QueryError("the liked and disliked keyframes cancel out: like or dislike other frames")
        return (moved / norm).astype(np.float32)

    def _ranking(self, q: Query, vec: np.ndarray | None, filters: KeyframeFilter, fetch: int):
        """The top `fetch` (keyframe id, score) and how they matched ("clip", a feature's name,
        or per id)."""
        rankings: dict[str, list[tuple[int, float]]] = {}
        if vec is None:  # the words themselves are the query, each ranking filtered by the others' words
            for name, said in q.word_queries.items():
                feature = FEATURES[name]
                match = self.store.words.matches([feature.fts_table], said).get(feature.fts_table)
                others = q.filters.replace(**{feature.words_param: None})
                rankings[name] = ranking.words(self.store, feature, match, others, fetch) if match else []
        else:
            rankings["clip"] = ranking.nearest(self.store, vec, fetch, filters)
            if q.text is not None:
                rankings.update(self._word_rankings(q.text, filters, fetch))
        return _best_or_fused(rankings)

    def _word_rankings(self, text: str, filters: KeyframeFilter, fetch: int) -> dict[str, list[tuple[int, float]]]:
        """The text's words looked up in every feature searched by words, by feature name."""
        features = words_features()
        matches = self.store.words.matches([f.fts_table for f in features], text) or {}
        return {f.name: ranking.words(self.store, f, matches[f.fts_table], filters, fetch)
                for f in features if f.fts_table in matches}

    def words_instead(self, q: Query) -> list[Hit]:
        """A text query answered from the features searched by words alone (on-screen text,
        speech), fused, for when CLIP's weights cannot be loaded: the app says so."""
        q.validate()
        self.store.vectors.sync()
        filters = q.filters.replace(**{f.words_param: None for f in words_features()})
        ranked, match = _best_or_fused(self._word_rankings(q.text, filters, q.k))
        return self._hits(ranked[: q.k], match)

    def summarizer(self, settings: SummarySettings) -> Summarizer:
        """Event summaries of this index's hits (its own CLIP for the zero-shot tags)."""
        return Summarizer(self.store, self.clip, settings)


    def _grouped(self, ranked: list[tuple[int, float]], q: Query) -> tuple[list[tuple[int, float]], bool]:
        """The ranking grouped as q.group says (see GROUPS), and whether it filled k videos
        ("video") or k hits ("limit")."""
        video_of = self.store.catalog.video_of([i for i, _ in ranked])
        per_video: dict[int, list[tuple[int, float]]] = {}
        kept: list[tuple[int, float]] = []  # "limit": in rank order
        for kid, score in ranked:
            if kid not in video_of:  # deleted since the search (a concurrent re-index)
                continue
            group = per_video.setdefault(video_of[kid], [])
            if len(group) < q.per_video:
                group.append((kid, score))
                kept.append((kid, score))
        if q.group == "limit":
            return kept[: q.k], len(kept) >= q.k
        return [hit for group in list(per_video.values())[: q.k] for hit in group], len(per_video) >= q.k

    def _temporal(self, vec_a: np.ndarray, q: Query, filters: KeyframeFilter) -> list[Hit]:
        """Chains of events, one keyframe per event, each at most q.within seconds after the
        previous one in the same video; ranked by their summed similarity.

        Forward, each event's candidates are the keyframes in the windows after the previous
        event's candidates (the first event's: its top max(200, 10k)), scored by that event's
        vector. Backward, each candidate learns the best chain that starts at it, so every
        first-event keyframe gives its best chain, exactly; chains that share a keyframe with a
        better chain are left out."""
        levels = [dict(ranking.nearest(self.store, vec_a, max(200, q.k * 10), filters))]
        rows = self.store.catalog.keyframes(list(levels[0]))
        encoded = []
        for text in q.then:
            previous = levels[-1]
            windows = [(rows[kid].video_db_id, rows[kid].timestamp, rows[kid].timestamp + q.within)
                       for kid in previous if kid in rows]
            later = self.store.catalog.keyframes_in_windows(windows)
            if len(later) == 0:
                return []
            encoded.append(self.text.encode(text, q.lang))
            levels.append(dict(ranking.nearest(self.store, encoded[-1].vector, len(later), filters, among=later)))
            rows.update(self.store.catalog.keyframes([kid for kid in levels[-1] if kid not in rows]))
        # best[i][kid]: the best summed similarity of a chain from event i at kid to the last
        # event, and the keyframe of event i + 1 it continues with.
        best: list[dict[int, tuple[float, int | None]]] = [{} for _ in levels]
        best[-1] = {kid: (score, None) for kid, score in levels[-1].items() if kid in rows}
        for i in range(len(levels) - 2, -1, -1):
            by_video: dict[int, list[tuple[float, int]]] = {}
            for kid in best[i + 1]:
                by_video.setdefault(rows[kid].video_db_id, []).append((rows[kid].timestamp, kid))
            for kid, score in levels[i].items():
                if kid not in rows:
                    continue
                r = rows[kid]
                options = [(best[i + 1][b][0], -b) for t, b in by_video.get(r.video_db_id, [])
                           if 0 < t - r.timestamp <= q.within]
                if options:
                    total, minus_b = max(options)  # ties: the earlier-indexed keyframe
                    best[i][kid] = (score + total, -minus_b)
        # Diverse chains: one that shares a keyframe with a better one is left out, so the top
        # chains are not one moment reached from ten first events.
        used: set[int] = set()
        hits = []
        for first, (total, _) in sorted(best[0].items(), key=lambda item: (-item[1][0], item[0])):
            if len(hits) == q.k:
                break
            path = [first]
            for i in range(len(levels) - 1):
                path.append(best[i][path[-1]][1])
            if used.intersection(path):
                continue
            used.update(path)
            then = None
            for i in range(len(path) - 1, 0, -1):  # build the chain from its last event back
                then = _encoded_by([Hit.from_row(0, rows[path[i]], levels[i][path[i]], "clip", then=then)],
                                   encoded[i - 1])[0]
            hits.append(Hit.from_row(len(hits) + 1, rows[first], total, "clip", then=then))
        return hits

    def _hits(self, ranked: list[tuple[int, float]], match: dict[int, str] | str) -> list[Hit]:
        """Hits for ranked ids; `match` says how each was found (one word for all, or per id)."""
        rows = self.store.catalog.keyframes([kid for kid, _ in ranked])
        hits = []
        for kid, score in ranked:
            if kid in rows:
                how = match if isinstance(match, str) else match.get(kid, "clip")
                hits.append(Hit.from_row(len(hits) + 1, rows[kid], score, how))
        return hits

    # -- what the edges show besides hits ----------------------------------------------------------

    def overview(self) -> Overview:
        """How much is indexed, with which model, and whether a run is under way."""
        videos, keyframes = self.store.catalog.counts()
        return Overview(videos, keyframes, self.store.facts.model(), self.store.writer_active())

    def video_ids(self) -> list[str]:
        return self.store.catalog.video_ids()

    def hits(self, keyframe_ids: list[int]) -> list[Hit]:
        """These keyframes as hits, in this order (a DRES answer, a summary); QueryError for an
        id the index does not hold."""
        for keyframe_id in keyframe_ids:
            check_keyframe_id(keyframe_id)
        rows = self.store.catalog.keyframes(keyframe_ids)
        missing = [k for k in keyframe_ids if k not in rows]
        if missing:
            raise no_keyframe(missing[0])
        return [Hit.from_row(0, rows[k], 0.0, "clip") for k in keyframe_ids]

    def neighbours(self, hit: Hit, seconds: float) -> list[KeyframeRow]:
        """The keyframes of the hit's video within `seconds` of it, in time order."""
        return self.store.catalog.keyframes_between(hit.video_db_id, hit.timestamp - seconds, hit.timestamp + seconds)

    def shots(self, video_id: str) -> list[ShotRow]:
        """The shots of the indexed video with this id; QueryError for an unknown id or one
        several indexed files share."""
        by_path = self.store.catalog.shots(video_id)
        if not by_path:
            raise _no_video([video_id])
        if len(by_path) > 1:
            raise QueryError(f"{len(by_path)} indexed files share the id {video_id!r}: "
                             f"{', '.join(by_path)}; rename them to tell their shots apart")
        return next(iter(by_path.values()))

    def videos(self, video_ids: Sequence[str] = ()) -> list[VideoRow]:
        """The index's videos with these ids, every one when none is given; QueryError for an
        id the index does not hold."""
        rows = self.store.catalog.videos(video_ids)
        unknown = sorted(set(video_ids) - {r.video_id for r in rows})
        if unknown:
            raise _no_video(unknown)
        return rows

    def shapes(self, keyframe_id: int) -> dict:
        """What each feature found where in a keyframe (the app draws them)."""
        return self.store.catalog.shapes(keyframe_id)

    def stats(self) -> dict:
        return self.store.health.stats()

    def video_errors(self) -> list[tuple[str, str, str]]:
        return self.store.catalog.video_errors()


def _encoded_by(hits: list[Hit], encoded: EncodedText | None) -> list[Hit]:
    """Hits that say who read the text query (no one for image, keyframe and words-only queries)."""
    if encoded is None:
        return hits
    return [replace(h, encoder=encoded.encoder, query_language=encoded.language) for h in hits]


def _best_or_fused(rankings: dict[str, list[tuple[int, float]]]):
    """The one ranking that found anything (with its name), or the fusion of those that did."""
    found = {name: ranked for name, ranked in rankings.items() if ranked}
    if len(found) < 2:
        name = next(iter(found or rankings), "clip")
        return rankings.get(name, []), name
    return _fuse(found)


def _fuse(rankings: dict[str, list[tuple[int, float]]]):
    """Reciprocal rank fusion of named rankings; returns the fused ranking and how each id
    matched: the names of the rankings that hold it, joined by "+" ("clip+speech")."""
    fused: dict[int, float] = {}
    found_by: dict[int, list[str]] = {}
    for name, ranked in rankings.items():
        for rank, (kid, _) in enumerate(ranked, start=1):
            fused[kid] = fused.get(kid, 0.0) + 1.0 / (RRF_K + rank)
            found_by.setdefault(kid, []).append(name)
    match = {kid: "+".join(names) for kid, names in found_by.items()}
    return sorted(fused.items(), key=lambda item: (-item[1], item[0])), match


def _no_video(video_ids: Sequence[str]) -> QueryError:
    """The one wording of "the index holds no video with this id"."""
    return QueryError(f"no video with id {', '.join(map(repr, video_ids))} in the index (ids are file names "
                      "without their extension)")
