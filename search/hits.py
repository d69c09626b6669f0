"""A search hit and its stable JSON form (documented in README.md, "JSON output").

Besides the core's keys, a hit carries each registered feature's hit fields (storage/features/:
`ocr_text`, `person_count`, `person_area`, `poses`, `speech`, ...), None where a feature did not
run; its JSON holds them between `match`/`thumbnail` and `encoder`, in the registry's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from evr.storage import KeyframeRow
from evr.storage.features import FEATURES


@dataclass(frozen=True)
class Hit:
    rank: int
    keyframe_id: int
    video_id: str  # file stem, as contest submissions name videos
    video_path: str | None  # the file a player opens; None for an imported video without one
    frame_idx: int
    timestamp: float
    shot: int | None  # 0-based shot of the video that holds the frame; None when shots are unknown
    shot_start: float | None  # seconds; None for a video indexed before shots were stored
    shot_end: float | None
    score: float
    # Which ranking(s) found it: an image-text model ("clip", a [[models]] name), a feature's
    # name ("ocr", "speech"), or several joined by "+" ("clip+siglip+speech").
    match: str
    thumbnail: str  # absolute path
    video_db_id: int
    fields: dict[str, Any] = field(default_factory=dict)  # each feature's hit fields, by name
    then: Hit | None = None  # temporal queries: the next event (which may have its own `then`)
    # Text queries: what encoded the text (search/multilingual), and the language it was read as.
    encoder: str | None = None
    query_language: str | None = None
    # Imported videos: the package's media-info (title, publish_date, watch_url, ...).
    media_info: dict | None = None
    # Each image-text model that ranked it: {model name: {"rank": 1-based, "score": its cosine}};
    # None for a words-only hit.
    models: dict[str, dict] | None = None

    @classmethod
    def from_row(cls, rank: int, row: KeyframeRow, score: float, match: str, then: Hit | None = None) -> Hit:
        return cls(
            rank=rank,
            keyframe_id=row.keyframe_id,
            video_id=row.video_id,
            video_path=row.video_path,
            frame_idx=row.frame_idx,
            timestamp=row.timestamp,
            shot=row.shot,
            shot_start=row.shot_start,
            shot_end=row.shot_end,
            score=score,
            match=match,
            thumbnail=str(row.thumbnail),
            video_db_id=row.video_db_id,
            fields=row.fields,
            then=then,
            media_info=row.media_info,
        )

    @property
    def chain(self) -> list[Hit]:
        """This hit and the events that follow it (temporal queries), in order."""
        return [self] + (self.then.chain if self.then is not None else [])

    def media(self, key: str) -> str | None:
        value = (self.media_info or {}).get(key)
        return None if value is None else str(value)

    def facts(self) -> list[str]:
        """What the features say of the hit, as short phrases for one line of text."""
        return [fact for f in FEATURES.values() for fact in f.facts(self.fields)]

    def to_json(self) -> dict:
        out = {
            "rank": self.rank,
            "keyframe_id": self.keyframe_id,
            "video_id": self.video_id,
            "video_path": self.video_path,
            "frame_idx": self.frame_idx,
            "timestamp": round(self.timestamp, 3),
            "shot": self.shot,
            "shot_start": None if self.shot_start is None else round(self.shot_start, 3),
            "shot_end": None if self.shot_end is None else round(self.shot_end, 3),
            "score": round(self.score, 6),
            "match": self.match,
            "models": None
            if self.models is None
            else {name: {"rank": m["rank"], "score": round(m["score"], 6)} for name, m in self.models.items()},
            "thumbnail": self.thumbnail,
            **{name: self.fields.get(name) for f in FEATURES.values() for name in f.hit_fields},
            "encoder": self.encoder,
            "query_language": self.query_language,
            "title": self.media("title"),
            "publish_date": self.media("publish_date"),
            "watch_url": self.media("watch_url"),
        }
        if self.then is not None:
            then = self.then.to_json()
            del then["rank"]
            out["then"] = then
        return out


def read_by(hits: list[Hit], read: tuple[str, str | None] | None) -> list[Hit]:
    """Hits that say who read the text query and as what language (no one for image, keyframe
    and words-only queries)."""
    if read is None:
        return hits
    return [replace(h, encoder=read[0], query_language=read[1]) for h in hits]


def model_ranks(found_by: dict[str, tuple[int, float]] | None) -> dict[str, dict] | None:
    """A hit's `models`: each model's rank and score of it, by model name."""
    return {name: {"rank": rank, "score": score} for name, (rank, score) in found_by.items()} if found_by else None
