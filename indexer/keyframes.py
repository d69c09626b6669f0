"""Keyframe selection, in one streaming pass over the decoded frames.

Shot boundaries come from frame-content change on tiny frames (the mean absolute difference of
HSV channels between consecutive 64x36 frames, as PySceneDetect's content detector measures it).
A keyframe is taken at the first frame of each shot and then whenever `max_gap_s` has passed
since the last one, so long shots stay covered. Near-duplicates inside a shot are dropped later,
once CLIP vectors exist (`NearDuplicateFilter`).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from .decoders import Frame
from .settings import KeyframeSettings

_SMALL = (64, 36)


@dataclass(frozen=True)
class Candidate:
    frame: Frame
    shot: int


class KeyframeSelector:
    def __init__(self, settings: KeyframeSettings):
        self.settings = settings
        self._prev: np.ndarray | None = None
        self._shot = -1
        self._last_cut = float("-inf")
        self._last_pick = float("-inf")

    def content_change(self, rgb: np.ndarray) -> float | None:
        """Mean HSV difference to the previous frame (None for the first frame)."""
        # Subsample to ~4x the target first: area-averaging a whole 720p frame costs ~0.8 ms,
        # as much as decoding it; this costs ~0.15 ms and still averages away noise.
        h, w = rgb.shape[:2]
        stride = max(1, min(h // (_SMALL[1] * 4), w // (_SMALL[0] * 4)))
        small = cv2.resize(np.ascontiguousarray(rgb[::stride, ::stride]), _SMALL, interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV).astype(np.int16)
        prev, self._prev = self._prev, hsv
        return None if prev is None else float(np.abs(hsv - prev).mean())

    def feed(self, frame: Frame) -> Candidate | None:
        change = self.content_change(frame.rgb)
        s = self.settings
        cut = change is None or (
            change >= s.cut_threshold and frame.timestamp - self._last_cut >= s.min_shot_s
        )
        if cut:
            self._shot += 1
            self._last_cut = frame.timestamp
        if cut or frame.timestamp - self._last_pick >= s.max_gap_s:
            self._last_pick = frame.timestamp
            return Candidate(frame, self._shot)
        return None


def select_keyframes(frames: Iterable[Frame], settings: KeyframeSettings) -> Iterator[Candidate]:
    selector = KeyframeSelector(settings)
    for frame in frames:
        candidate = selector.feed(frame)
        if candidate is not None:
            yield candidate


class NearDuplicateFilter:
    """Drops a keyframe whose cosine similarity to the last kept keyframe of the same shot
    exceeds `threshold` (vectors are L2-normalised). Shots arrive in order, so only the
    current shot's last kept vector is needed."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self._shot: int | None = None
        self._last: np.ndarray | None = None

    def keep(self, shot: int, vector: np.ndarray) -> bool:
        if shot == self._shot and float(vector @ self._last) > self.threshold:
            return False
        self._shot, self._last = shot, vector
        return True
