"""Search: query -> vector search -> filters -> OCR and speech fusion / temporal pairing -> ranked hits.

The CLI and the UI both call `SearchEngine.search`; there is no second search path.

Ranking rules (README.md, "Search rules"):
- A text, image or keyframe query ranks keyframes by CLIP cosine similarity.
- Filters (persons, poses, OCR words, spoken words, videos, time range) restrict the search
  exactly: the vector search runs over the matching keyframes only, so a filter never shrinks
  the result below k while enough keyframes match. Spoken words match a keyframe when one speech
  segment within storage.store.SPEECH_REACH_S (2 s) of it holds them all.
- OCR only (`--ocr` without another query): keyframes whose on-screen text holds every word,
  ranked by BM25. Speech only (`--speech`): for each speech segment that holds every word, best
  BM25 first, the keyframe nearest the moment the first of them is said. Both: the two rankings
  fused as below, each filtered by the other's words.
- A text query is also looked up in the OCR text and in the transcripts. When frames show all
  its words, or a segment says them, the CLIP, OCR and speech rankings are fused by reciprocal
  rank fusion, score = sum over lists of 1 / (60 + rank), so a frame that literally shows the
  queried words, or is seen while they are said, ranks near the top.
- Temporal (`A --then B [--then C ...] --within S`): chains of keyframes of one video, one per
  event in order, each 0 < S' <= S seconds after the previous; ranked by the sum of their
  similarities. Each first-event keyframe gives at most one chain, its best.
- Relevance feedback (`--more-like ID`, `--less-like ID`): the query vector q becomes, by Rocchio,
  ROCCHIO_ALPHA q + ROCCHIO_BETA mean(liked) - ROCCHIO_GAMMA mean(disliked), normalised; without
  another query, the liked keyframes are the query. Disliked keyframes are left out of the hits.
"""
from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from indexer.encoders import ClipEncoder
from storage.types import POSE_LABELS
from storage import KeyframeFilter, Store, StoreError
from storage.textfold import words

from .errors import QueryError
from .hits import Hit
from .multilingual import EncodedText, QuerySettings, TextRouter
from .multilingual.language import known_codes

log = logging.getLogger(__name__)

GROUPS = (None, "video")
RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al., 2009)
MAX_K = 10_000  # hits (or videos) one query may ask for
MAX_ID = 2**63 - 1  # SQLite's largest integer: ids and counts beyond it cannot be stored
# The most pixels a query image may have, read from its header before it is decoded: 25 MP
# decodes in well under a second into 75 MB.
MAX_QUERY_PIXELS = 25_000_000
MAX_EVENTS = 8  # events of one temporal query
# Rocchio's weights as the SMART system set them (Rocchio 1971; Manning et al., "Introduction to
# Information Retrieval", 9.1.1): judged-relevant frames pull the query hard, judged-irrelevant
# ones push it gently (a disliked frame says less about what is wanted than a liked one).
ROCCHIO_ALPHA, ROCCHIO_BETA, ROCCHIO_GAMMA = 1.0, 0.75, 0.15


@dataclass(frozen=True)
class Query:
    text: str | None = None
    image: np.ndarray | None = None  # RGB uint8
    like: int | None = None  # keyframe id
    # filters.ocr and filters.speech, the words that must be on screen or said, are filters beside
    # a text, image or keyframe query; without one, they are the query: the OCR/speech ranking.
    filters: KeyframeFilter = field(default_factory=KeyframeFilter)
    then: tuple[str, ...] = ()  # temporal: the events after the first, in order
    lang: str | None = None  # the text's language (ISO 639-1); None: detected (search/multilingual)
    within: float = 10.0  # seconds from one event to the next
    more_like: tuple[int, ...] = ()  # relevance feedback: keyframe ids judged relevant
    less_like: tuple[int, ...] = ()  # and judged not relevant
    k: int = 20
    group: str | None = None  # "video": at most k videos, each with its best `per_video` hits
    per_video: int = 1

    @property
    def has_vector_query(self) -> bool:
        return self.text is not None or self.image is not None or self.like is not None or bool(self.more_like)

    def validate(self) -> None:
        given = sum(x is not None for x in (self.text, self.image, self.like))
        if self.less_like and not self.has_vector_query:
            raise QueryError("--less-like refines a query: give a text, --image, --like or --more-like too")
        if given > 1 or (given == 0 and self.filters.ocr is None and self.filters.speech is None
                         and not self.more_like):
            raise QueryError("give one of: a text query, --image FILE, --like KEYFRAME_ID, --more-like KEYFRAME_ID "
                             "(and/or --ocr WORDS, --speech WORDS)")
        if self.text is not None and not self.text.strip():
            raise QueryError("the text query is empty")
        if self.filters.ocr is not None and not words(self.filters.ocr):
            raise QueryError("the --ocr text has no words to look for")
        if self.filters.speech is not None and not words(self.filters.speech):
            raise QueryError("the --speech text has no words to look for")
        if not 1 <= self.k <= MAX_K:
            raise QueryError(f"k must be between 1 and {MAX_K}")
        if self.group not in GROUPS:
            raise QueryError(f"group must be one of {', '.join(g for g in GROUPS if g)}, not {self.group!r}")
        if not 1 <= self.per_video <= MAX_K:
            raise QueryError(f"per_video must be between 1 and {MAX_K}")
        for keyframe_id in (self.like, *self.more_like, *self.less_like):
            if keyframe_id is not None:
                check_keyframe_id(keyframe_id)
        if set(self.more_like) & set(self.less_like):
            raise QueryError(f"keyframe {min(set(self.more_like) & set(self.less_like))} is both liked and disliked")
        f = self.filters
        for name, count in (("--min-persons", f.min_persons), ("--max-persons", f.max_persons)):
            if count is not None and not 0 <= count <= MAX_ID:
                raise QueryError(f"{name} must be a count between 0 and {MAX_ID}, not {count}")
        for name, seconds in (("--from", f.time_from), ("--to", f.time_to), ("--within", self.within)):
            if seconds is not None and not math.isfinite(seconds):
                raise QueryError(f"{name} must be a finite number of seconds, not {seconds}")
        if f.min_persons is not None and f.max_persons is not None and f.min_persons > f.max_persons:
            raise QueryError(f"--min-persons {f.min_persons} is more than --max-persons {f.max_persons}")
        unknown = [p for p in f.poses if p not in POSE_LABELS]
        if unknown:
            raise QueryError(f"unknown pose {', '.join(unknown)}; poses are: {', '.join(POSE_LABELS)}")
        if f.time_from is not None and f.time_from < 0:
            raise QueryError("--from cannot be negative")
        if f.time_from is not None and f.time_to is not None and f.time_to < f.time_from:
            raise QueryError(f"--to {f.time_to} is before --from {f.time_from}")
        if self.lang is not None:
            if self.text is None and not self.then:
                raise QueryError("--lang goes with a text query")
            if self.lang.lower() not in known_codes():
                raise QueryError(f"unknown query language {self.lang!r}: give an ISO 639-1 code such as en or vi")
        if self.then:
            if any(not t.strip() for t in self.then):
                raise QueryError("a --then query is empty")
            if len(self.then) + 1 > MAX_EVENTS:
                raise QueryError(f"a temporal query has at most {MAX_EVENTS} events, not {len(self.then) + 1}")
            if not self.has_vector_query:
                raise QueryError("--then needs a first event: a text query, --image or --like")
            if self.more_like or self.less_like:
                raise QueryError("--more-like and --less-like refine a single-event query, not --then")
            if self.within <= 0:
                raise QueryError("--within must be more than 0 seconds")
            if self.group is not None:
                raise QueryError("--group cannot be combined with --then")


def check_keyframe_id(keyframe_id: int) -> None:
    if not 1 <= keyframe_id <= MAX_ID:
        raise QueryError(f"a keyframe id is a whole number from 1 to {MAX_ID}, not {keyframe_id}")


class SearchEngine:
    def __init__(self, store: Store, clip: ClipEncoder, query: QuerySettings | None = None):
        self.store = store
        self.clip = clip
        self.text = TextRouter(query or QuerySettings(), clip)

    # -- public ----------------------------------------------------------------------------

    def search(self, q: Query) -> list[Hit]:
        q.validate()
        if self.store.model() is None:
            if self.store.writer_active():
                raise StoreError("nothing is indexed yet: an `evr index` run has just started; "
                                 "search again once it has committed its first video")
            raise StoreError("the index is empty: run `evr index <folder>` first")
        # The FAISS file lags SQLite by up to storage.checkpoint_s during a run: answer from
        # everything committed.
        self.store.sync_vectors()
        if q.text is not None or q.image is not None or q.then:
            # Vectors of another model would compare as noise: refuse before encoding anything.
            self.store.check_model(self.clip.info)
        # Without a vector query the OCR and spoken words rank (in _ranking) rather than filter.
        filters = q.filters if q.has_vector_query else replace(q.filters, ocr=None, speech=None)
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
            grouped, videos = self._grouped(ranked, q)
            if videos >= q.k or len(ranked) < fetch:  # k videos filled, or nothing more to fetch
                return _encoded_by(self._hits(grouped, match), encoded)
            fetch *= 4

    def query_vector(self, q: Query) -> np.ndarray:
        """The vector of an image or keyframe query (text goes through self.text, which says who read it)."""
        if q.like is not None:
            return self._keyframe_vectors([q.like])[0]
        return self.clip.encode_images([q.image])[0]

    def _keyframe_vectors(self, keyframe_ids) -> np.ndarray:
        ids, vectors = self.store.stored_vectors(list(keyframe_ids))
        missing = sorted(set(keyframe_ids) - set(ids.tolist()))
        if missing:
            raise QueryError(f"no keyframe with id {missing[0]} in this index")
        return vectors

    def _rocchio(self, vec: np.ndarray | None, q: Query) -> np.ndarray:
        """Rocchio's query: ALPHA q + BETA mean(liked) - GAMMA mean(disliked), unit length.
        Without a query of its own (feedback alone), q is 0 and the liked frames lead."""
        moved = np.zeros(self.store.vectors.dim, np.float32) if vec is None else ROCCHIO_ALPHA * vec
        if q.more_like:
            moved = moved + ROCCHIO_BETA * self._keyframe_vectors(q.more_like).mean(axis=0)
        if q.less_like:
            moved = moved - ROCCHIO_GAMMA * self._keyframe_vectors(q.less_like).mean(axis=0)
        norm = float(np.linalg.norm(moved))
        if norm < 1e-6:
            raise QueryError("the liked and disliked keyframes cancel out: like or dislike other frames")
        return (moved / norm).astype(np.float32)

    # -- ranking ---------------------------------------------------------------------------

    def _ranking(self, q: Query, vec: np.ndarray | None, filters: KeyframeFilter, fetch: int):
        """The top `fetch` (keyframe id, score) and how they matched ("clip", "ocr", "speech",
        or per id)."""
        rankings: dict[str, list[tuple[int, float]]] = {}
        if vec is None:  # the words themselves are the query, each list filtered by the other's words
            f = q.filters
            if f.ocr is not None:
                rankings["ocr"] = self.store.ocr_search(f.ocr, replace(f, ocr=None), limit=fetch)
            if f.speech is not None:
                rankings["speech"] = self.store.speech_search(f.speech, replace(f, speech=None), limit=fetch)
        else:
            rankings["clip"] = self.store.nearest(vec, fetch, filters)
            if q.text is not None:
                rankings["ocr"] = self.store.ocr_search(q.text, filters, limit=fetch)
                rankings["speech"] = self.store.speech_search(q.text, filters, limit=fetch)
        found = {name: ranked for name, ranked in rankings.items() if ranked}
        if len(found) < 2:
            name = next(iter(found or rankings))
            return rankings[name], name
        return _fuse(found)

    def _grouped(self, ranked: list[tuple[int, float]], q: Query) -> tuple[list[tuple[int, float]], int]:
        """At most k videos in the order of their best hit, each with its best `per_video` hits;
        also returns how many videos the ranking held."""
        video_of = {kid: row.video_db_id for kid, row in self.store.keyframes([i for i, _ in ranked]).items()}
        per_video: dict[int, list[tuple[int, float]]] = {}
        for kid, score in ranked:
            if kid not in video_of:  # deleted since the search (a concurrent re-index)
                continue
            group = per_video.setdefault(video_of[kid], [])
            if len(group) < q.per_video:
                group.append((kid, score))
        return [hit for group in list(per_video.values())[: q.k] for hit in group], len(per_video)

    def _temporal(self, vec_a: np.ndarray, q: Query, filters: KeyframeFilter) -> list[Hit]:
        """Chains of events, one keyframe per event, each at most q.within seconds after the
        previous one in the same video; ranked by their summed similarity.

        Forward, each event's candidates are the keyframes in the windows after the previous
        event's candidates (the first event's: its top max(200, 10k)), scored by that event's
        vector. Backward, each candidate learns the best chain that starts at it, so every
        first-event keyframe gives its best chain, exactly."""
        levels = [dict(self.store.nearest(vec_a, max(200, q.k * 10), filters))]
        rows = self.store.keyframes(list(levels[0]))
        encoded = []
        for text in q.then:
            previous = levels[-1]
            windows = [(rows[kid].video_db_id, rows[kid].timestamp, rows[kid].timestamp + q.within)
                       for kid in previous if kid in rows]
            later = self.store.keyframes_in_windows(windows)
            if len(later) == 0:
                return []
            encoded.append(self.text.encode(text, q.lang))
            levels.append(dict(self.store.nearest(encoded[-1].vector, len(later), filters, among=later)))
            rows.update(self.store.keyframes(list(levels[-1])))
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
        chains = sorted(best[0].items(), key=lambda item: (-item[1][0], item[0]))[: q.k]
        hits = []
        for first, (total, _) in chains:
            path = [first]
            for i in range(len(levels) - 1):
                path.append(best[i][path[-1]][1])
            then = None
            for i in range(len(path) - 1, 0, -1):  # build the chain from its last event back
                then = _encoded_by([Hit.from_row(0, rows[path[i]], levels[i][path[i]], "clip", then=then)],
                                   encoded[i - 1])[0]
            hits.append(Hit.from_row(len(hits) + 1, rows[first], total, "clip", then=then))
        return hits

    def _hits(self, ranked: list[tuple[int, float]], match: dict[int, str] | str) -> list[Hit]:
        """Hits for ranked ids; `match` says how each was found (one word for all, or per id)."""
        rows = self.store.keyframes([kid for kid, _ in ranked])
        hits = []
        for kid, score in ranked:
            if kid in rows:
                how = match if isinstance(match, str) else match.get(kid, "clip")
                hits.append(Hit.from_row(len(hits) + 1, rows[kid], score, how))
        return hits


def _encoded_by(hits: list[Hit], encoded: EncodedText | None) -> list[Hit]:
    """Hits that say who read the text query (no one for image, keyframe and OCR-only queries)."""
    if encoded is None:
        return hits
    return [replace(h, encoder=encoded.encoder, query_language=encoded.language) for h in hits]


def _fuse(rankings: dict[str, list[tuple[int, float]]]):
    """Reciprocal rank fusion of named rankings; returns the fused ranking and how each id
    matched: the names of the rankings that hold it, joined by "+" ("clip+speech")."""
    fused: dict[int, float] = {}
    found_by: dict[int, list[str]] = {}
    for name, ranking in rankings.items():
        for rank, (kid, _) in enumerate(ranking, start=1):
            fused[kid] = fused.get(kid, 0.0) + 1.0 / (RRF_K + rank)
            found_by.setdefault(kid, []).append(name)
    match = {kid: "+".join(names) for kid, names in found_by.items()}
    return sorted(fused.items(), key=lambda item: (-item[1], item[0])), match


def read_image(source: str | Path | bytes) -> np.ndarray:
    """An image file path or its bytes -> RGB array, or QueryError if it is not a readable image
    or holds more than MAX_QUERY_PIXELS (its size is read from the header, before decoding:
    a 20000x20000 PNG of 1 MB would otherwise take 18 s and 4 GB to refuse)."""
    import cv2
    from PIL import Image, UnidentifiedImageError

    name = "the uploaded file" if isinstance(source, bytes) else str(source)
    kinds = "JPEG, PNG, WebP, BMP, TIFF"
    if not isinstance(source, bytes) and Path(source).exists() and not Path(source).is_file():
        # A folder, a FIFO or a device: reading a FIFO would wait for a writer for ever.
        raise QueryError(f"{name} is not a regular file: give an image file")
    too_big = QueryError(f"{name} has more than the {MAX_QUERY_PIXELS // 1_000_000} megapixels a query image "
                         "may have: shrink it (CLIP sees 224x224 anyway)")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as header:
            width, height = header.size
    except FileNotFoundError:
        raise QueryError(f"no such image file: {name}") from None
    except Image.DecompressionBombError:  # Pillow's own limit, far above ours
        raise too_big from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise QueryError(f"cannot read {name} as an image ({kinds})") from None
    if width * height > MAX_QUERY_PIXELS:
        raise too_big
    data = source if isinstance(source, bytes) else Path(source).read_bytes()  # read only once its size passed
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise QueryError(f"cannot read {name} as an image ({kinds})")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)
