"""Search: query -> vector search -> filters -> word rankings and fusion / temporal chains -> hits.

The CLI and the app both call `SearchEngine`; there is no second search path, and neither
reaches into the store: what they show besides hits (the index's overview, a video's shots, a
hit's neighbours, what features found where) comes from here too.

Ranking rules (README.md, "Search rules"; search/ranking.py for the vector and word searches):
- A text, image or keyframe query ranks keyframes by each image-text model's cosine similarity
  ([clip] and [[models]], or those `Query.models` names), each in its own vector index; filters
  restrict each search exactly; the models' rankings are fused (search/fusion.py: reciprocal
  rank fusion by default). One model: its own ranking and scores.
- Words of a feature searched by words (on-screen text, speech) without another query: the
  keyframes they are found at, ranked by BM25 (speech: the keyframe nearest the moment the first
  word is said). Both kinds at once: the rankings fused, each filtered by the other's words.
- A text query is also looked up in those features' text. When some of it holds all its words,
  the rankings (the models' fused one and each feature's) are fused by reciprocal rank fusion,
  score = sum over rankings of 1 / (60 + rank), so a frame that literally shows or says the
  words ranks near the top.
- Temporal (`then`, `within`): chains of keyframes of one video, one per event in order, each
  0 < S' <= within seconds after the previous; ranked by the sum of their similarities. Each
  first-event keyframe gives at most one chain, its best.
- Relevance feedback (`more_like`, `less_like`): each model's query vector q becomes, by Rocchio,
  ROCCHIO_ALPHA q + ROCCHIO_BETA mean(liked) - ROCCHIO_GAMMA mean(disliked), normalised; without
  another query, the liked keyframes are the query. Disliked keyframes are left out of the hits.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import replace

import numpy as np

from evr.indexer.encoders import ClipEncoder
from evr.storage import PRIMARY_MODEL, KeyframeFilter, ModelMismatchError, Store, StoreError
from evr.storage.features import FEATURES, words_features

from . import ranking
from .archive import Archive
from .errors import QueryError
from .fusion import Fused, FusionSettings, fuse
from .hits import Hit, model_ranks, read_by
from .multilingual import QuerySettings, TextRouter
from .query import Query, no_keyframe
from .summary import Summarizer, SummarySettings
from .temporal import chain_hits

log = logging.getLogger(__name__)

# Rocchio's weights as the SMART system set them (Rocchio 1971; Manning et al., "Introduction to
# Information Retrieval", 9.1.1): judged-relevant frames pull the query hard, judged-irrelevant
# ones push it gently (a disliked frame says less about what is wanted than a liked one).
ROCCHIO_ALPHA, ROCCHIO_BETA, ROCCHIO_GAMMA = 1.0, 0.75, 0.15
TEXTS_KEPT = 256  # encoded query texts kept (a vector each: a few kilobytes)


class SearchEngine:
    def __init__(
        self,
        store: Store,
        clip: ClipEncoder,
        query: QuerySettings | None = None,
        others: dict[str, ClipEncoder] | None = None,
        fusion: FusionSettings | None = None,
    ):
        self.store = store
        self.archive = Archive(store)  # what the edges show besides hits
        self.clip = clip  # [clip]'s: summaries' tags, and the model every index has
        # Every image-text model by name ([clip]'s as "clip", then [[models]]), each with the
        # router that reads text queries for it.
        self.encoders = {PRIMARY_MODEL: clip, **(others or {})}
        self.fusion = fusion or FusionSettings()
        self.text = TextRouter(query or QuerySettings(), clip)
        self.routers = {
            name: self.text if name == PRIMARY_MODEL else self.text.beside(encoder)
            for name, encoder in self.encoders.items()
        }
        self._absent: set[str] = set()  # configured models without vectors in the index, said once
        self._texts: OrderedDict = OrderedDict()  # (model, text, lang) -> its encoding, the last TEXTS_KEPT
        self._encoded_lock = threading.Lock()  # the app's sessions share one engine

    # -- searching --------------------------------------------------------------------------------

    def search(self, q: Query) -> list[Hit]:
        q.validate()
        # The vector index lags SQLite by up to a checkpoint during a run: answer from everything
        # committed (this also reads the index's facts, once).
        self.store.vectors.sync()
        if self.store.facts.model() is None:
            if self.store.writer_active():
                raise StoreError(
                    "nothing is indexed yet: an `evr index` run has just started; "
                    "search again once it has committed its first video"
                )
            raise StoreError("the index is empty: run `evr index <folder>` first")
        # Without a vector query the words rank (in _ranking) rather than filter.
        filters = (
            q.filters if q.has_vector_query else q.filters.replace(**{f.words_param: None for f in words_features()})
        )
        models = self.models_of(q) if q.has_vector_query else []
        read = None  # who read a text query, and its language
        if q.text is not None:
            vecs, read = self._text_vectors(q.text, q.lang, models)
        elif q.image is not None or q.like is not None:
            vecs = self._image_vectors(q, models)
        else:
            vecs = None
        if q.then:
            return read_by(self._temporal(vecs, q, filters), read)
        if q.more_like or q.less_like:
            vecs = self._rocchio(vecs, q, models)
        fetch = q.k * q.per_video * 4 if q.group else q.k
        while True:
            ranked, match, by_model = self._ranking(q, vecs, filters, fetch + len(q.less_like))
            ranked = [(kid, score) for kid, score in ranked if kid not in q.less_like]
            if q.group is None:
                return read_by(self._hits(ranked[: q.k], match, by_model), read)
            grouped, filled = self._grouped(ranked, q)
            if filled or len(ranked) < fetch:  # k videos (or hits) found, or nothing more to fetch
                return read_by(self._hits(grouped, match, by_model), read)
            fetch *= 4

    def models_of(self, q: Query) -> list[str]:
        """The models a query uses: those it names (all configured ones when none), that the
        index holds vectors of; QueryError for a name no model has; for a query that is encoded,
        a model bound to other weights than configured is refused (its vectors would compare as
        noise)."""
        unknown = [name for name in q.models if name not in self.encoders]
        if unknown:
            raise QueryError(f"no model named {unknown[0]!r}; the models are: {', '.join(self.encoders)}")
        bound = self.store.facts.models()
        # Only a query that is encoded (text, image) compares new vectors with stored ones; a
        # keyframe or feedback query moves through the stored vectors alone.
        encodes = q.text is not None or q.image is not None or bool(q.then)
        chosen = []
        for name in q.models or tuple(self.encoders):
            if name not in bound:
                if name not in self._absent:
                    self._absent.add(name)
                    log.warning(
                        "the index holds no vectors of the model %r yet: it sits out until `evr index` "
                        "(or `evr analyze`) computes them",
                        name,
                    )
                continue
            if name == PRIMARY_MODEL:
                if encodes:
                    self.store.facts.check_model(self.clip.info)
            elif encodes and bound[name] != self.encoders[name].info:
                raise ModelMismatchError(
                    f"the index's model {name!r} is {bound[name].label}, but [[models]] names "
                    f"{self.encoders[name].info.label}: set it back, or `evr models --drop {name}`"
                )
            else:
                self.store.mirror(name).sync()  # [clip]'s was caught up by `search`
            chosen.append(name)
        if not chosen:
            raise QueryError(f"the index holds no vectors of {', '.join(q.models)}: run `evr index` to compute them")
        return chosen

    def _text_vectors(self, text: str, lang: str | None, models: list[str]) -> tuple[dict[str, np.ndarray], tuple]:
        """Each model's vector of a text query, and (who read it, its language). A model that
        does not understand the query's language sits out when another one does (said once)."""
        encoded = {name: self._encoded(name, text, lang) for name in models}
        understood = {name: e for name, e in encoded.items() if e.understood}
        if understood and len(understood) < len(encoded):
            for name in encoded.keys() - understood.keys():
                self.routers[name].sat_out(encoded[name].language, ", ".join(understood))
            encoded = understood
        for name, e in encoded.items():
            if not e.understood:  # no model understood it: each reads it as best it can, and says so
                self.routers[name].said_fallback(e.language)
        first = next(iter(encoded.values()))
        return {name: e.vector for name, e in encoded.items()}, (
            ", ".join(e.encoder for e in encoded.values()),
            first.language,
        )

    def _encoded(self, model: str, text: str, lang: str | None):
        """A text as `model`'s router reads it, kept for the next queries of the same text: a like
        or another page searches again with the same words, and encoding them costs a CLIP
        forward pass (tens to hundreds of milliseconds on a CPU)."""
        key = (model, text, lang)
        with self._encoded_lock:
            if key in self._texts:
                self._texts.move_to_end(key)
                return self._texts[key]
        encoded = self.routers[model].encode(text, lang, quiet=True)
        with self._encoded_lock:
            self._texts[key] = encoded
            while len(self._texts) > TEXTS_KEPT:
                self._texts.popitem(last=False)
        return encoded

    def _image_vectors(self, q: Query, models: list[str]) -> dict[str, np.ndarray]:
        """Each model's vector of an image or keyframe query; a keyframe that lacks a model's
        vector (not computed yet) leaves that model out."""
        if q.like is not None:
            found = {name: v[0] for name in models if len(v := self._keyframe_vectors([q.like], name))}
            if not found:
                raise QueryError(f"keyframe {q.like} has no vector of {', '.join(models)} yet: `evr index` computes it")
            return found
        return {name: self.encoders[name].encode_images([q.image])[0] for name in models}

    def _keyframe_vectors(self, keyframe_ids, model: str = PRIMARY_MODEL) -> np.ndarray:
        """A model's stored vectors of these keyframes; QueryError for a keyframe the index does
        not hold ([clip] has a vector of every one; another model may lack some: they are left out)."""
        ids, vectors = self.store.catalog.stored_vectors(list(keyframe_ids), model)
        if model == PRIMARY_MODEL:
            missing = sorted(set(keyframe_ids) - set(ids.tolist()))
            if missing:
                raise no_keyframe(missing[0])
        return vectors

    def _rocchio(self, vecs: dict[str, np.ndarray] | None, q: Query, models: list[str]) -> dict[str, np.ndarray]:
        """Rocchio's query for each model: ALPHA q + BETA mean(liked) - GAMMA mean(disliked),
        unit length. Without a query of its own (feedback alone), q is 0 and the liked frames lead."""
        self._keyframe_vectors([*q.more_like, *q.less_like])  # every judged keyframe exists
        out = {}
        for name in models if vecs is None else list(vecs):
            liked = self._keyframe_vectors(q.more_like, name) if q.more_like else np.zeros((0, 0))
            disliked = self._keyframe_vectors(q.less_like, name) if q.less_like else np.zeros((0, 0))
            if vecs is None and not len(liked):
                continue  # this model has no vector of the liked frames yet
            moved = (
                np.zeros(self.store.mirror(name).index.dim, np.float32) if vecs is None else ROCCHIO_ALPHA * vecs[name]
            )
            if len(liked):
                moved = moved + ROCCHIO_BETA * liked.mean(axis=0)
            if len(disliked):
                moved = moved - ROCCHIO_GAMMA * disliked.mean(axis=0)
            norm = float(np.linalg.norm(moved))
            if norm < 1e-6:
                raise QueryError("the liked and disliked keyframes cancel out: like or dislike other frames")
            out[name] = (moved / norm).astype(np.float32)
        if not out:
            raise QueryError(
                f"the liked keyframes have no vectors of {', '.join(models)} yet: `evr index` computes them"
            )
        return out

    def _nearest(
        self, vecs: dict[str, np.ndarray], k: int, filters: KeyframeFilter, among: np.ndarray | None = None
    ) -> Fused:
        """Each model's nearest keyframes, fused as [search] says (one model: its own ranking)."""
        rankings = {
            name: ranking.nearest(self.store, vec, k, filters, among=among, model=name) for name, vec in vecs.items()
        }
        fused = fuse(rankings, self.fusion.fusion, {name: self.fusion.weight(name) for name in rankings})
        fused.ranked = fused.ranked[:k]
        return fused

    def _ranking(self, q: Query, vecs: dict[str, np.ndarray] | None, filters: KeyframeFilter, fetch: int):
        """The top `fetch` (keyframe id, score), how each matched ({id: "clip+ocr"}) and each
        model's (rank, score) of it ({id: {model: (rank, score)}})."""
        if vecs is None:  # the filters themselves are the query: words (each ranking filtered by the
            rankings = {}  # others' words), and features ranked by their own score (colours, objects)
            for name, said in q.word_queries.items():
                feature = FEATURES[name]
                match = self.store.words.matches([feature.fts_table], said).get(feature.fts_table)
                others = q.filters.replace(**{feature.words_param: None})
                rankings[name] = ranking.words(self.store, feature, match, others, fetch) if match else []
            for name in q.scored_queries:
                rankings[name] = self.store.filters.ranked(FEATURES[name], q.filters, fetch)
            words = fuse(rankings)
            return words.ranked, {kid: words.match(kid) for kid, _ in words.ranked}, {}
        models = self._nearest(vecs, fetch, filters)
        by_model = {kid: models.found_by.get(kid, {}) for kid, _ in models.ranked}
        words = self._word_rankings(q.text, filters, fetch) if q.text is not None else {}
        if not any(words.values()):
            return models.ranked, {kid: models.match(kid) for kid, _ in models.ranked}, by_model
        both = fuse({"models": models.ranked, **words})  # by rank: cosine and BM25 do not compare
        match = {
            kid: "+".join([*by_model.get(kid, {}), *(n for n in both.found_by[kid] if n != "models")])
            for kid, _ in both.ranked
        }
        return both.ranked, match, by_model

    def _word_rankings(self, text: str, filters: KeyframeFilter, fetch: int) -> dict[str, list[tuple[int, float]]]:
        """The text's words looked up in every feature searched by words, by feature name."""
        features = words_features()
        matches = self.store.words.matches([f.fts_table for f in features], text) or {}
        return {
            f.name: ranking.words(self.store, f, matches[f.fts_table], filters, fetch)
            for f in features
            if f.fts_table in matches
        }

    def words_instead(self, q: Query) -> list[Hit]:
        """A text query answered from the features searched by words alone (on-screen text,
        speech), fused, for when CLIP's weights cannot be loaded: the app says so."""
        q.validate()
        self.store.vectors.sync()
        filters = q.filters.replace(**{f.words_param: None for f in words_features()})
        words = fuse(self._word_rankings(q.text, filters, q.k))
        return self._hits(words.ranked[: q.k], {kid: words.match(kid) for kid, _ in words.ranked}, {})

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

    def _temporal(self, vecs_a: dict[str, np.ndarray], q: Query, filters: KeyframeFilter) -> list[Hit]:
        """Chains of events, one keyframe per event (search/temporal.py)."""
        first = self._nearest(vecs_a, max(200, q.k * 10), filters)

        def event(text: str, among: np.ndarray) -> tuple[Fused, tuple[str, str | None] | None]:
            vecs, who = self._text_vectors(text, q.lang, list(vecs_a))
            return self._nearest(vecs, len(among), filters, among=among), who

        return chain_hits(first, q, self.store.catalog, event)

    def _hits(
        self, ranked: list[tuple[int, float]], match: dict[int, str], by_model: dict[int, dict[str, tuple[int, float]]]
    ) -> list[Hit]:
        """Hits for ranked ids; `match` says how each was found, `by_model` each model's rank and score."""
        rows = self.store.catalog.keyframes([kid for kid, _ in ranked])
        hits = []
        for kid, score in ranked:
            if kid in rows:
                hit = Hit.from_row(len(hits) + 1, rows[kid], score, match.get(kid, PRIMARY_MODEL))
                hits.append(replace(hit, models=model_ranks(by_model.get(kid))))
        return hits
