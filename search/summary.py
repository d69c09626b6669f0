"""A short spoken-style summary of the event around a hit, in English or Vietnamese.

The event window is the hit's time +- `window_s` in the same video. The summary says which video
and when, how many people there are and what poses they hold, what text is on screen, quotes
what is said (the transcript's segments heard by the window's keyframes), and which
labels of a configured vocabulary CLIP finds closest to the window's keyframes (zero-shot tags:
the mean of the window's vectors against each label's text vector).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from evr.indexer.encoders import ClipEncoder, ModelUnavailableError
from evr.storage import KeyframeRow, Store
from evr.storage.rules import between, one_of, rule

from .errors import QueryError
from .query import no_keyframe

log = logging.getLogger(__name__)

LANGUAGES = ("en", "vi")
TEMPLATES = {
    "en": {
        "head": "Video {video}, at {time} ({start} to {end}).",
        "nobody": "No people.",
        "one": "One person.",
        "many": "Up to {n} people.",
        "poses": "Poses: {poses}.",
        "text": "On screen: {text}.",
        "said": "Said: “{said}”.",
        "caption": "Described as: “{caption}”.",
        "tags": "Looks like: {tags}.",
        "pose_words": {
            "standing": "standing",
            "sitting": "sitting",
            "lying": "lying down",
            "bending": "bending",
            "arms_raised": "arms raised",
        },
    },
    "vi": {
        "head": "Video {video}, lúc {time} (từ {start} đến {end}).",
        "nobody": "Không có người.",
        "one": "Có một người.",
        "many": "Có tối đa {n} người.",
        "poses": "Tư thế: {poses}.",
        "text": "Chữ trên màn hình: {text}.",
        "said": "Lời nói: “{said}”.",
        "caption": "Mô tả (tiếng Anh): “{caption}”.",
        "tags": "Cảnh giống: {tags}.",
        "pose_words": {
            "standing": "đứng",
            "sitting": "ngồi",
            "lying": "nằm",
            "bending": "cúi người",
            "arms_raised": "giơ tay",
        },
    },
}


@dataclass(frozen=True)
class SummarySettings:
    """[summary]"""

    window_s: float = rule(between(0, above=True), default=5.0)  # the event window: the hit's time +- this
    language: str = rule(one_of(LANGUAGES), default="en")  # default language of summaries: en | vi
    top_tags: int = rule(between(0, 100), default=3)
    # Zero-shot tag vocabulary (English, scored by CLIP) and, position by position, how the
    # Vietnamese summary names each label (one name per label: `check`).
    labels: list[str] = field(
        default_factory=lambda: [
            "a street",
            "a flooded street",
            "a crowd of people",
            "a news studio",
            "a person speaking",
            "a classroom",
            "an office",
            "a kitchen",
            "food",
            "a sports game",
            "a stage performance",
            "a car on a road",
            "a bicycle",
            "an animal",
            "a beach",
            "a forest",
            "a city at night",
            "a fire",
            "a road accident",
            "text on a screen",
        ]
    )
    labels_vi: list[str] = field(
        default_factory=lambda: [
            "đường phố",
            "đường ngập nước",
            "đám đông",
            "trường quay tin tức",
            "người đang nói",
            "lớp học",
            "văn phòng",
            "nhà bếp",
            "đồ ăn",
            "trận thể thao",
            "biểu diễn sân khấu",
            "xe hơi trên đường",
            "xe đạp",
            "động vật",
            "bãi biển",
            "rừng",
            "thành phố về đêm",
            "đám cháy",
            "tai nạn giao thông",
            "chữ trên màn hình",
        ]
    )

    def check(self) -> str | None:
        """What is wrong across this section's settings, or None."""
        if len(self.labels_vi) != len(self.labels):
            return (
                f"summary.labels_vi names {len(self.labels_vi)} labels but summary.labels has "
                f"{len(self.labels)}: give each label its Vietnamese name, in the same order"
            )
        return None


@dataclass(frozen=True)
class Summary:
    keyframe_id: int
    video_id: str
    timestamp: float
    window: tuple[float, float]
    text: str
    language: str
    tags: list[str]  # English labels, best first; empty when CLIP is unavailable

    def to_json(self) -> dict:
        return {
            "keyframe_id": self.keyframe_id,
            "video_id": self.video_id,
            "timestamp": round(self.timestamp, 3),
            "window": [round(self.window[0], 3), round(self.window[1], 3)],
            "text": self.text,
            "language": self.language,
            "tags": self.tags,
        }


class Summarizer:
    def __init__(self, store: Store, clip: ClipEncoder, settings: SummarySettings):
        self.store = store
        self.clip = clip
        self.settings = settings
        self._label_vectors: np.ndarray | None = None
        self._warming = threading.Lock()  # the labels are encoded once, whoever asks first

    @property
    def ready(self) -> bool:
        """Whether a summary comes at once: the labels' vectors are there (encoding them takes
        CLIP about two seconds on a CPU, once)."""
        return self._label_vectors is not None or not self.settings.labels or self.settings.top_tags <= 0

    def warm(self) -> None:
        """Encode the labels now (the app does it in the background after its first search)."""
        try:
            self._labels()
        except ModelUnavailableError as exc:
            log.debug("summary labels not encoded: %s", exc)

    def summarize(self, keyframe_id: int, language: str | None = None) -> Summary:
        language = language or self.settings.language
        if language not in LANGUAGES:
            raise QueryError(f"summary language must be one of {', '.join(LANGUAGES)}, not {language!r}")
        row = self.store.catalog.keyframes([keyframe_id]).get(keyframe_id)
        if row is None:
            raise no_keyframe(keyframe_id)
        w = self.settings.window_s
        start, end = max(0.0, row.timestamp - w), row.timestamp + w
        if row.duration:
            end = min(end, row.duration)
        window = self.store.catalog.keyframes_between(row.video_db_id, start, end) or [row]
        tags = self._tags([r.keyframe_id for r in window])
        text = _render(language, row, (start, end), window, self._tag_names(tags, language))
        return Summary(keyframe_id, row.video_id, row.timestamp, (start, end), text, language, tags)

    def _tags(self, keyframe_ids: list[int]) -> list[str]:
        labels = self.settings.labels
        if not labels or self.settings.top_tags <= 0:
            return []
        try:
            label_vectors = self._labels()
        except ModelUnavailableError as exc:
            log.warning("no zero-shot tags in summaries: %s", exc)
            return []
        _, vectors = self.store.catalog.stored_vectors(keyframe_ids)
        if len(vectors) == 0:
            return []
        mean = vectors.mean(axis=0)
        mean /= np.linalg.norm(mean) or 1.0
        order = np.argsort(-(label_vectors @ mean))[: self.settings.top_tags]
        return [labels[i] for i in order]

    def _labels(self) -> np.ndarray:
        with self._warming:
            if self._label_vectors is None:
                self.store.facts.check_model(self.clip.info)
                self._label_vectors = self.clip.encode_texts(self.settings.labels)
            return self._label_vectors

    def _tag_names(self, tags: list[str], language: str) -> list[str]:
        if language != "vi":
            return tags
        names = dict(zip(self.settings.labels, self.settings.labels_vi))
        return [names.get(t, t) for t in tags]


def clock(seconds: float, digits: int = 0) -> str:
    """m:ss (or m:ss.s with `digits`), cut, not rounded: a frame at 11.5 s is at 0:11, where a
    player started at the whole second shows it, never at 0:12, before it happens."""
    scale = 10**digits
    cut = math.floor(seconds * scale + 1e-6) / scale  # 1e-6: a time stored as 11.4999999 is 11.5
    m, s = divmod(cut, 60)
    return f"{int(m)}:{s:0{3 + digits if digits else 2}.{digits}f}"


def _render(
    language: str, hit: KeyframeRow, window: tuple[float, float], rows: list[KeyframeRow], tags: list[str]
) -> str:
    t = TEMPLATES[language]
    parts = [
        t["head"].format(video=hit.video_id, time=clock(hit.timestamp), start=clock(window[0]), end=clock(window[1]))
    ]
    counts = [r.fields["person_count"] for r in rows if r.fields.get("person_count") is not None]
    if counts:  # the person analyzer ran: say how many, even when nobody
        most = max(counts)
        parts.append(t["nobody"] if most == 0 else t["one"] if most == 1 else t["many"].format(n=most))
    poses = Counter(
        label for r in rows for person in r.fields.get("poses") or [] for label in person if label != "unknown"
    )
    if poses:
        parts.append(t["poses"].format(poses=", ".join(t["pose_words"][p] for p, _ in poses.most_common(3))))
    texts = list(dict.fromkeys(r.fields["ocr_text"].strip() for r in rows if (r.fields.get("ocr_text") or "").strip()))
    if texts:
        parts.append(t["text"].format(text="; ".join(texts)[:160]))
    said = sorted({(r.fields["speech"]["start"], r.fields["speech"]["text"]) for r in rows if r.fields.get("speech")})
    if said:
        parts.append(t["said"].format(said=" … ".join(text for _, text in said)[:240]))
    if (hit.fields.get("caption") or "").strip():  # the captioner's sentence for this very frame
        parts.append(t["caption"].format(caption=hit.fields["caption"].strip()[:200]))
    if tags:
        parts.append(t["tags"].format(tags=", ".join(tags)))
    return " ".join(parts)
