"""A query, checked before anything is encoded or searched, and a query image read safely.

Errors name the query's parameters (`k`, `time_from`, `min_persons`, ...): the edges map them to
their own words (a CLI flag, an app widget) where they differ.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evr.storage import KeyframeFilter
from evr.storage.features import FEATURES, param, words_features
from evr.storage.textfold import words

from .errors import QueryError
from .multilingual.language import known_codes

# "video": at most k videos in the order of their best hit, each with its best per_video hits;
# "limit": k hits in rank order, at most per_video of them from any one video.
GROUPS = (None, "video", "limit")
MAX_K = 10_000  # hits (or videos) one query may ask for
MAX_ID = 2**63 - 1  # SQLite's largest integer: ids and counts beyond it cannot be stored
# The most pixels a query image may have, read from its header before it is decoded: 25 MP
# decodes in well under a second into 75 MB.
MAX_QUERY_PIXELS = 25_000_000
MAX_EVENTS = 8  # events of one temporal query
# Values one repeatable filter may have (--object, --color, --pose): each is a condition in the
# SQL, and SQLite refuses an expression tree deeper than 1000; no real query needs more.
MAX_FILTER_VALUES = 32
MAX_VIDEOS = 10_000  # --video values (a list SQLite reads as one JSON parameter)


@dataclass(frozen=True)
class Query:
    text: str | None = None
    image: np.ndarray | None = None  # RGB uint8
    like: int | None = None  # keyframe id
    # Filters beside a text, image or keyframe query. The words a feature searches (on-screen
    # text, speech) are filters beside such a query; without one, they are the query.
    filters: KeyframeFilter = field(default_factory=KeyframeFilter)
    then: tuple[str, ...] = ()  # temporal: the events after the first, in order
    lang: str | None = None  # the text's language (ISO 639-1); None: detected (search/multilingual)
    within: float = 10.0  # seconds from one event to the next
    more_like: tuple[int, ...] = ()  # relevance feedback: keyframe ids judged relevant
    less_like: tuple[int, ...] = ()  # and judged not relevant
    k: int = 20
    group: str | None = None  # see GROUPS
    per_video: int = 1
    models: tuple[str, ...] = ()  # the image-text models to search with, by name; () = every one

    def key(self) -> str:
        """What tells this query from any other, as text: its fields, an image by a digest of
        its pixels (numpy's repr leaves most of them out)."""
        import hashlib
        from dataclasses import fields

        def shown(value) -> str:
            if isinstance(value, np.ndarray):
                return f"image:{value.shape}:{hashlib.sha1(np.ascontiguousarray(value).tobytes()).hexdigest()}"
            return repr(value)

        return ";".join(f"{f.name}={shown(getattr(self, f.name))}" for f in fields(self))

    @property
    def has_vector_query(self) -> bool:
        return self.text is not None or self.image is not None or self.like is not None or bool(self.more_like)

    @property
    def scored_queries(self) -> list[str]:
        """The features, words aside, whose filter values here are a query alone (colours, objects)."""
        words = {f.name for f in words_features()}
        return [
            f.name
            for f in FEATURES.values()
            if f.name not in words and any(p.query and self.filters.get(p.name) for p in f.params)
        ]

    @property
    def word_queries(self) -> dict[str, str]:
        """The words of each feature searched by words that the filters hold, by feature name."""
        return {
            f.name: self.filters.get(f.words_param)
            for f in words_features()
            if self.filters.get(f.words_param) is not None
        }

    def validate(self) -> None:
        given = sum(x is not None for x in (self.text, self.image, self.like))
        if self.less_like and not self.has_vector_query:
            raise QueryError("less_like refines a query: give a text, an image, a keyframe (like) or more_like too")
        if given > 1 or (given == 0 and not self.word_queries and not self.scored_queries and not self.more_like):
            searched = ", ".join(p.name for f in FEATURES.values() for p in f.params if p.query)
            raise QueryError(
                "give one of: a text query, an image, a keyframe (like), more_like"
                + (f" (and/or {searched})" if searched else "")
            )
        if self.text is not None and not self.text.strip():
            raise QueryError("the text query is empty")
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
        check_filter(self.filters)
        if not math.isfinite(self.within):
            raise QueryError(f"within must be a finite number of seconds, not {self.within}")
        if self.lang is not None:
            if self.text is None and not self.then:
                raise QueryError("lang goes with a text query")
            if self.lang.lower() not in known_codes():
                raise QueryError(f"unknown query language {self.lang!r}: give an ISO 639-1 code such as en or vi")
        if self.then:
            if any(not t.strip() for t in self.then):
                raise QueryError("an event of `then` is empty")
            if len(self.then) + 1 > MAX_EVENTS:
                raise QueryError(f"a temporal query has at most {MAX_EVENTS} events, not {len(self.then) + 1}")
            if not self.has_vector_query:
                raise QueryError("then needs a first event: a text query, an image or a keyframe (like)")
            if self.more_like or self.less_like:
                raise QueryError("more_like and less_like refine a single-event query, not a temporal one")
            if self.within <= 0:
                raise QueryError("within must be more than 0 seconds")
            if self.group is not None:
                raise QueryError("group cannot be combined with then")


def check_filter(f: KeyframeFilter) -> None:
    """QueryError naming the filter parameter whose value is wrong."""
    for name, seconds in (("time_from", f.time_from), ("time_to", f.time_to)):
        if seconds is not None and not math.isfinite(seconds):
            raise QueryError(f"{name} must be a finite number of seconds, not {seconds}")
    if f.time_from is not None and f.time_from < 0:
        raise QueryError("time_from cannot be negative")
    if f.time_from is not None and f.time_to is not None and f.time_to < f.time_from:
        raise QueryError(f"time_to {f.time_to} is before time_from {f.time_from}")
    _check_values("videos", f.videos, MAX_VIDEOS)
    for name, value in f.features:
        found = param(name)
        if found is None:
            raise QueryError(f"no feature filters by {name!r}")
        p = found[1]
        if p.many:
            _check_values(name, value, MAX_FILTER_VALUES)
        for v in value if p.many else (value,):
            if not isinstance(v, p.kind) and not (p.kind is float and isinstance(v, int)):
                raise QueryError(f"{name} must be {'each ' if p.many else ''}a {p.kind.__name__}, not {v!r}")
            if p.choices and v not in p.choices:
                raise QueryError(f"unknown {name} {v}; {name} is one of: {', '.join(p.choices)}")
            problem = p.check(v) if p.check else None
            if problem:
                raise QueryError(f"{name} {problem}, not {v!r}")
    for feature in FEATURES.values():
        problem = feature.check_filter(f)
        if problem:
            raise QueryError(problem)


def _check_values(name: str, values, most: int) -> None:
    """A repeatable filter's values: each once, at most `most` of them."""
    if len(values) > most:
        raise QueryError(f"{name} is given {len(values)} times; at most {most} values")
    seen = set()
    for v in values:
        if v in seen:
            raise QueryError(f"{name} {str(v)[:60]!r} is given twice")
        seen.add(v)


def check_keyframe_id(keyframe_id: int) -> None:
    if not 1 <= keyframe_id <= MAX_ID:
        raise QueryError(f"a keyframe id is a whole number from 1 to {MAX_ID}, not {keyframe_id}")


def no_keyframe(keyframe_id: int) -> QueryError:
    """The one error for a keyframe id the index does not hold."""
    return QueryError(f"no keyframe with id {keyframe_id} in this index")


def has_words(text: str) -> bool:
    return bool(words(text))


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
    too_big = QueryError(
        f"{name} has more than the {MAX_QUERY_PIXELS // 1_000_000} megapixels a query image "
        "may have: shrink it (CLIP sees 224x224 anyway)"
    )
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
