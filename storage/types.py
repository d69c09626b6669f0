"""The domain types: what the indexer, the analyzers and search hand to storage and get back.

Plain frozen dataclasses with no database or index behind them, so an analyzer or a worker on
another machine can build them and send them to the one writer (they pickle).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

# The name of the index's first image-text model ([clip]); the others are named in [[models]].
PRIMARY_MODEL = "clip"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    pretrained: str
    dim: int

    @property
    def label(self) -> str:
        return f"{self.name} ({self.pretrained})"


@dataclass(frozen=True)
class VideoState:
    id: int
    status: str
    size: int
    mtime_ns: int
    plan: Plan | None  # how its stored results were made (None: never finished)


@dataclass(frozen=True)
class VideoInfo:
    """What the decoder learned about a file, stored on its row."""

    decoder: str
    duration: float
    fps: float
    frame_count: int
    width: int
    height: int


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the frame's size


@dataclass(frozen=True)
class NewKeyframe:
    frame_idx: int
    timestamp: float
    shot: int
    jpeg: bytes  # thumbnail, already encoded
    vector: np.ndarray  # float32, L2-normalised: the [clip] model's
    # Each frame analyzer's result by its name ("ocr": list[TextBox], "persons": PersonsInFrame);
    # an analyzer that did not run is absent. Its feature's storage keeps it (storage/features/).
    analyses: dict[str, Any] = field(default_factory=dict)
    source_image: str | None = None  # imported keyframes: the package's full-size image
    # The other models' vectors by model name ([[models]]); a model absent here gets its vector later.
    model_vectors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class MissingVectors:
    """An indexed video whose keyframes lack another model's vectors: what computing them needs."""

    video_db_id: int
    path: str  # the video file (decoded videos), or the package's keyframe list (imported ones)
    origin: str  # "decoded" | "aic"
    size: int
    mtime_ns: int
    keyframes: list[tuple[int, int, str, str | None]]  # (keyframe id, frame_idx, thumbnail file, source image)


@dataclass(frozen=True)
class VideoMedia:
    """Where an imported video came from and what the package says about it."""

    origin: str  # "aic"
    path: str | None  # the video file a player opens; None when the package has none
    info: dict | None  # the package's media-info (title, publish_date, watch_url, ...)


@dataclass(frozen=True)
class KeyframeImage:
    """A keyframe's image for analyzers run after the index (an imported one's full-size image, a
    decoded one's thumbnail)."""

    keyframe_id: int
    path: str


@dataclass(frozen=True)
class ImportedVideo:
    id: int
    video_id: str  # file stem
    plan: Plan
    keyframes: list[KeyframeImage]
    media_path: str | None = None  # the package's video file, which file analyzers (speech) read
    thumbnails: bool = False  # a decoded video: its keyframes' images are their thumbnails (320 px)


@dataclass(frozen=True)
class LostThumbnails:
    """An indexed video whose thumbnail folder is gone (deleted by hand, a restored backup):
    what making them again needs."""

    video_db_id: int
    path: str  # what it was read from: the video file, or an imported package's map CSV
    origin: str  # "decoded": from the video file; otherwise from each keyframe's source image
    size: int  # the file as indexed: a file that changed since is indexed again instead
    mtime_ns: int
    keyframes: list[tuple[int, str | None]]  # (frame_idx, source image) of each keyframe


@dataclass(frozen=True)
class NewShot:
    start_frame: int
    start: float  # seconds
    end: float


@dataclass(frozen=True)
class ShotRow:
    """A stored shot with the ids of its keyframes (time order)."""

    shot: int
    start: float
    end: float
    keyframes: list[int]

    def to_json(self) -> dict:
        return {
            "shot": self.shot,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "keyframes": self.keyframes,
        }


@dataclass(frozen=True)
class BoardFrame:
    """A keyframe as a storyboard shows it."""

    keyframe_id: int
    frame_idx: int
    timestamp: float
    thumbnail: Path  # absolute

    def to_json(self) -> dict:
        return {
            "keyframe_id": self.keyframe_id,
            "frame_idx": self.frame_idx,
            "timestamp": round(self.timestamp, 3),
            "thumbnail": str(self.thumbnail),
        }


@dataclass(frozen=True)
class BoardShot:
    """A shot of a storyboard and its keyframes in time order; `shot` None: the keyframes of a
    video whose shots are not known (an imported one)."""

    shot: int | None
    start: float | None
    end: float | None
    keyframes: list[BoardFrame]

    def to_json(self) -> dict:
        return {
            "shot": self.shot,
            "start": None if self.start is None else round(self.start, 3),
            "end": None if self.end is None else round(self.end, 3),
            "keyframes": [k.to_json() for k in self.keyframes],
        }


@dataclass(frozen=True)
class Storyboard:
    """Every keyframe of one video, grouped by shot, in time order."""

    video_db_id: int
    video_id: str
    path: str
    duration: float | None
    shots: list[BoardShot]

    @property
    def keyframes(self) -> int:
        return sum(len(s.keyframes) for s in self.shots)

    def to_json(self) -> dict:
        return {
            "video_id": self.video_id,
            "path": self.path,
            "duration": None if self.duration is None else round(self.duration, 3),
            "keyframes": self.keyframes,
            "shots": [s.to_json() for s in self.shots],
        }


@dataclass(frozen=True)
class VideoRow:
    """A video of the index as `evr videos` lists it: what its decoder learned (None where it
    was imported, or failed before), how many keyframes it has and what ran on it."""

    video_id: str  # the file stem, as hits and answers name it
    path: str
    status: str  # "indexed", "failed", or "indexing" while a run works on it
    error: str | None  # why it failed, or how far a partial file was indexed
    origin: str  # "decoded" or "aic"
    decoder: str | None
    duration: float | None
    fps: float | None
    frame_count: int | None
    width: int | None
    height: int | None
    keyframes: int
    analyzers: dict[str, str]  # analyzer -> signature, from its plan
    indexed_at: float | None  # seconds since the epoch

    def to_json(self) -> dict:
        return {
            "video_id": self.video_id,
            "path": self.path,
            "status": self.status,
            "error": self.error,
            "origin": self.origin,
            "decoder": self.decoder,
            "duration": None if self.duration is None else round(self.duration, 3),
            "fps": None if self.fps is None else round(self.fps, 3),
            "frame_count": self.frame_count,
            "width": self.width,
            "height": self.height,
            "keyframes": self.keyframes,
            "analyzers": self.analyzers,
            "indexed_at": None
            if self.indexed_at is None
            else datetime.fromtimestamp(self.indexed_at, timezone.utc).isoformat(timespec="seconds"),
        }


@dataclass(frozen=True)
class KeyframeRow:
    """A stored keyframe joined with its video, as search results need it."""

    keyframe_id: int
    video_db_id: int
    video_id: str  # file stem: the id contests submit
    video_path: str | None  # the file a player opens (None: an imported video without one)
    frame_idx: int
    timestamp: float
    shot: int | None  # None when the video's shots are unknown (imported, or indexed before shots)
    shot_start: float | None  # seconds; None for a video indexed before shots were stored
    shot_end: float | None
    thumbnail: Path  # absolute
    fps: float | None
    duration: float | None
    media_info: dict | None  # imported videos: the package's media-info
    # What each feature says of the keyframe, by hit field (storage/features/: "ocr_text",
    # "person_count", "poses", "speech", ...), as JSON values; a feature that did not run says None.
    fields: dict[str, Any] = field(default_factory=dict)


_CORE_FILTERS = ("videos", "time_from", "time_to")


@dataclass(frozen=True)
class KeyframeFilter:
    """Conditions a keyframe must meet; None / empty means no condition. The video and time
    conditions are the core's; `features` holds the values of the features' filter parameters
    (storage/features/: persons' min_persons, max_persons, poses, min_person_area; ocr's ocr;
    speech's speech; ...) as sorted (name, value) pairs, the set ones only. Build one with
    `KeyframeFilter.of(min_persons=2, videos=("a",))`."""

    videos: tuple[str, ...] = ()  # video ids (file stems)
    time_from: float | None = None  # seconds
    time_to: float | None = None
    features: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, **values: Any) -> KeyframeFilter:
        core = {k: tuple(v) if k == "videos" else v for k, v in values.items() if k in _CORE_FILTERS}
        given = sorted(
            (k, tuple(v) if isinstance(v, list) else v)
            for k, v in values.items()
            if k not in _CORE_FILTERS and v is not None and v != () and v != []
        )
        return cls(**core, features=tuple(given))

    def get(self, name: str, default: Any = None) -> Any:
        """A feature filter parameter's value, or `default` when it is not set."""
        return next((v for k, v in self.features if k == name), default)

    def replace(self, **values: Any) -> KeyframeFilter:
        """This filter with these parameters set (None: unset)."""
        current = {"videos": self.videos, "time_from": self.time_from, "time_to": self.time_to, **dict(self.features)}
        return KeyframeFilter.of(**{**current, **values})

    @property
    def active(self) -> bool:
        return bool(self.videos or self.time_from is not None or self.time_to is not None or self.features)


@dataclass(frozen=True)
class Plan:
    """How a video's stored results were made, so a run knows what to redo: the source, the
    keyframe and shot rules (decoded videos), what made the vectors, and each analyzer's
    signature by name. Stored as JSON on the video (`Video.plan`)."""

    source: str  # "decoded" (evr index) or "aic" (evr import aic)
    keyframes: dict[str, float] | None = None  # the keyframe rule's settings; None when imported
    shots: dict[str, float] | None = None  # the shot detector's settings; None when imported
    vectors: str = "clip"  # "clip": the index's bound model; "aic:MODEL/TAG": a package's features
    analyzers: dict[str, str] = field(default_factory=dict)  # name -> signature ("tesseract+craft:vi+en")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Plan | None:
        return cls(**json.loads(text)) if text else None

    def with_analyzers(self, analyzers: dict[str, str]) -> Plan:
        return replace(self, analyzers={**self.analyzers, **analyzers})
