"""Keyframe selection, in one streaming pass over the decoded frames.

The rule (README.md, "Keyframes"):
- Candidates: a frame every `sample_s` seconds, and the first frame of every shot.
- A frame is kept as a keyframe when
  1. it starts a shot (indexer/shots/ finds cuts, fades and dissolves), or
  2. `max_gap_s` seconds have passed since the last kept keyframe (checked on every frame), or
  3. it is a candidate and not a near duplicate of the last kept keyframe: at least
     `min_change` of its 64x36 grey thumbnail moved by more than 20 grey levels.
So consecutive keyframes are never more than `max_gap_s` plus one frame apart, and a scene with
change (people walking in, a pan) gets up to one keyframe per `sample_s`, a still one one per
`max_gap_s`. The test is on pixels, not CLIP vectors: it needs no model, does not depend on the
weights (with random ones every frame looks alike to CLIP), and CLIP then runs on kept frames only.

Shot cuts are reported a few frames late, so frames wait in a short buffer (`lag` frames) until
it is known whether a shot starts at them; a fade is reported once the picture is back, and the
first frame still waiting then starts the new shot's keyframes.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from .decoders import Frame
from .settings import KeyframeSettings, ShotSettings
from .shots import Seen, make_shot_detector

_THUMB = (64, 36)
_MOVED = 20  # grey levels (0-255) a thumbnail pixel must change by to count as changed


@dataclass(frozen=True)
class ShotSpan:
    start_frame: int
    start: float  # seconds
    end: float  # seconds: the next shot's start, or the video's end


class _Waiting(Seen):
    starts_shot = False
    _thumb: np.ndarray | None = None

    @property
    def thumb(self) -> np.ndarray:
        """The grey thumbnail of the change test, made only for the frames the test compares
        (candidates and kept frames, a few percent of all): on every frame it cost as much as
        the shot detector. (From the small frame, on the host: a frame in GPU memory crosses
        only that.)"""
        if self._thumb is None:
            grey = cv2.cvtColor(self.small, cv2.COLOR_RGB2GRAY)
            self._thumb = cv2.resize(grey, _THUMB, interpolation=cv2.INTER_AREA)
        return self._thumb


class KeyframeSelector:
    """`feed` every decoded frame in order, then `finish`; both return the frames kept as
    keyframes, in order. `shots(end)` gives the video's shots afterwards."""

    def __init__(self, keyframes: KeyframeSettings, shots: ShotSettings, fps: float, model_device: str = "cpu"):
        self.settings = keyframes
        self._shot_settings = shots
        self._detector = make_shot_detector(shots, fps, model_device)
        self._waiting: deque[_Waiting] = deque()
        self._times = array("d")  # timestamp of every frame so far (a fade's boundary lies back)
        self._shot_starts: list[int] = []  # frame numbers
        self._last_kept: _Waiting | None = None
        self._next_sample = 0.0

    def feed(self, frame: Frame) -> list[Frame]:
        entry = _Waiting(frame, self._shot_settings.detect_width)
        self._times.append(frame.timestamp)
        if not self._shot_starts:
            self._shot_starts.append(frame.idx)
            entry.starts_shot = True
        self._waiting.append(entry)
        self._mark(self._detector.feed(entry))
        kept = []
        while len(self._waiting) > self._detector.lag:
            kept += self._decide(self._waiting.popleft())
        return kept

    def _mark(self, starts: list[int]) -> None:
        for start in starts:
            self._shot_starts.append(start)
            waiting = next((w for w in self._waiting if w.frame.idx == start), self._waiting[0])
            waiting.starts_shot = True

    def finish(self) -> list[Frame]:
        if self._waiting:
            self._mark(self._detector.finish())
        kept = []
        while self._waiting:
            kept += self._decide(self._waiting.popleft())
        return kept

    def _decide(self, w: _Waiting) -> list[Frame]:
        s, ts, last = self.settings, w.frame.timestamp, self._last_kept
        sampled = ts >= self._next_sample
        keep = w.starts_shot or last is None or ts - last.frame.timestamp >= s.max_gap_s
        if not keep and sampled:
            keep = changed_fraction(w.thumb, last.thumb) >= s.min_change
        if sampled or keep:
            self._next_sample = ts + s.sample_s
        if not keep:
            return []
        self._last_kept = w
        return [w.frame]

    def shot_of(self, frame_idx: int) -> int:
        """0-based number of the shot that holds this frame."""
        return max(0, bisect_right(self._shot_starts, frame_idx) - 1)

    def shots(self, video_end: float) -> list[ShotSpan]:
        """The shots found so far; the last one ends at `video_end` (seconds)."""
        starts = [(f, self._times[f]) for f in self._shot_starts]
        ends = [t for _, t in starts[1:]] + [video_end]
        return [ShotSpan(f, t, max(t, end)) for (f, t), end in zip(starts, ends)]


def changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels of two grey thumbnails that differ by more than `_MOVED` levels."""
    return float(np.count_nonzero(cv2.absdiff(a, b) > _MOVED)) / a.size
