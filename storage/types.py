"""The domain types: what the indexer, the analyzers and search hand to storage and get back.

Plain frozen dataclasses with no database or index behind them, so an analyzer or a worker on
another machine can build them and send them to the one writer (they pickle).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


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
    analyzers: str | None


@dataclass(frozen=True)
class VideoInfo:
    """What the decoder learned about a file, stored on its row."""

    decoder: str
    duration: float
    fps: float
    frame_count: int
    width: int
    height: int


# The pose labels stored per person (indexer/analyzers/persons/pose_labels.py says how each is
# read from keypoints), and that filters name: one posture each, and "arms_raised" when it applies.
POSTURES = ("standing", "sitting", "lying", "bending", "unknown")
POSE_LABELS = POSTURES + ("arms_raised",)

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the frame's size


@dataclass(frozen=True)
class TextBox:
    text: str
    box: Box
    confidence: float


@dataclass(frozen=True)
class PersonPose:
    box: Box
    score: float
    keypoints: list[tuple[float, float, float]]  # 17 COCO keypoints: x, y (fractions), visibility 0-1
    labels: list[str]  # from indexer/analyzers/persons/pose_labels.py


@dataclass(frozen=True)
class PersonsInFrame:
    persons: list[PersonPose]
    mask_area: float  # fraction of the frame covered by people
    mask_png: bytes | None  # the mask as a small 1-bit PNG


@dataclass(frozen=True)
class SpeechSegment:
    """A stretch of speech in a video's sound track, as a recognizer heard it."""

    start: float  # seconds, on the keyframes' clock
    end: float
    text: str
    language: str  # ISO 639-1 ("en", "vi")
    confidence: float  # 0-1: the recognizer's mean word probability
    words: tuple[tuple[str, float, float], ...] = ()  # each word with its start and end (seconds)

    def to_json(self) -> dict:
        return {"text": self.text, "start": round(self.start, 3), "end": round(self.end, 3),
                "language": self.language, "confidence": round(self.confidence, 4)}


@dataclass(frozen=True)
class NewKeyframe:
    frame_idx: int
    timestamp: float
    shot: int
    jpeg: bytes  # thumbnail, already encoded
    vector: np.ndarray  # float32, L2-normalised
    # Each analyzer's result by its name ("ocr": list[TextBox], "persons": PersonsInFrame);
    # an analyzer that did not run is absent. Store.ANALYSES says how each is stored.
    analyses: dict[str, Any] = field(default_factory=dict)
    source_image: str | None = None  # imported keyframes: the package's full-size image


@dataclass(frozen=True)
class VideoMedia:
    """Where an imported video came from and what the package says about it."""

    origin: str  # "aic"
    path: str | None  # the video file a player opens; None when the package has none
    info: dict | None  # the package's media-info (title, publish_date, watch_url, ...)


@dataclass(frozen=True)
class KeyframeImage:
    """An imported keyframe's full-size image, for analyzers run after the import."""

    keyframe_id: int
    path: str


@dataclass(frozen=True)
class ImportedVideo:
    id: int
    video_id: str  # file stem
    analyzers: str
    keyframes: list[KeyframeImage]
    media_path: str | None = None  # the package's video file, which file analyzers (speech) read


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
        return {"shot": self.shot, "start": round(self.start, 3), "end": round(self.end, 3),
                "keyframes": self.keyframes}


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
    ocr_text: str | None
    person_count: int | None
    poses: list[list[str]]  # pose labels of each person
    media_info: dict | None  # imported videos: the package's media-info
    speech: SpeechSegment | None = None  # what is said at the keyframe (Store.keyframes says how near)


@dataclass(frozen=True)
class KeyframeFilter:
    """Conditions a keyframe must meet; None / empty means no condition."""

    min_persons: int | None = None
    max_persons: int | None = None
    poses: tuple[str, ...] = ()  # every label must be on some person in the frame
    ocr: str | None = None  # every word must be in the frame's on-screen text
    speech: str | None = None  # every word must be in one speech segment said near the frame
    videos: tuple[str, ...] = ()  # video ids (file stems)
    time_from: float | None = None  # seconds
    time_to: float | None = None

    @property
    def active(self) -> bool:
        return any(v not in (None, ()) for v in vars(self).values())
