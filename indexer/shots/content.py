"""The content detector: PySceneDetect's detectors fed one small frame at a time.

Cuts come from its AdaptiveDetector (content change compared with the rolling mean of the
neighbouring frames' change, so a fast pan is not a cut), fades through black from its
ThresholdDetector (the boundary is the middle of the dark stretch). The library decides; we only
shrink frames as its SceneManager would, merge the two detectors' lists, and measure each frame
for them more cheaply (below). We feed the detectors ourselves instead of running its
SceneManager, because the frames are already decoded once for the whole pipeline (a second
decode would double the keyframe stage).

Measuring for them: the keyframe stage runs on every decoded frame, and on a GPU machine it was
the largest stage of an index run (issue 21). The library's frame score copies each HSV channel
to int32 twice to sum the absolute differences, and the fade detector averages the frame through
numpy's float64 path: nearly three quarters of the stage. OpenCV's L1 norm and sum give the same
sums exactly (integers in doubles), so the scores and averages, and so every cut, are bit for bit
the library's (tests/test_keyframes.py compares them with the library's own on real videos).
"""

from __future__ import annotations

import cv2
import numpy as np
from scenedetect.detectors import AdaptiveDetector, ContentDetector, ThresholdDetector

from ..settings import ShotSettings
from .base import Seen


class _HsvAdaptiveDetector(AdaptiveDetector):
    """AdaptiveDetector fed the frame already in HSV, its score computed without int32 copies.

    Only the score of ContentDetector (`_calculate_frame_score`) is replaced: the mean absolute
    difference of hue, saturation and value with the previous frame, weighted as the library
    weighs them. The adaptive ratio, thresholds and minimum shot length stay the library's."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self._weights.delta_edges:
            raise ValueError("edge weights are not measured here")
        self._last_planes: tuple[np.ndarray, ...] | None = None

    def _calculate_frame_score(self, frame_num: int, hsv: np.ndarray) -> float:
        planes = cv2.split(hsv)
        last, self._last_planes = self._last_planes, planes
        if last is None:
            return 0.0
        pixels = float(hsv.shape[0] * hsv.shape[1])
        hue, sat, lum = (cv2.norm(now, before, cv2.NORM_L1) / pixels for now, before in zip(planes, last))
        components = ContentDetector.Components(hue, sat, lum, 0.0)
        # The library's formula, in its order, so the float sums round alike.
        return sum(c * w for c, w in zip(components, self._weights)) / sum(abs(w) for w in self._weights)


class _FrameAverage:
    """ThresholdDetector reads a frame's average pixel value from its stats manager when that
    holds one (its documented use: a stats file read back); this holds the current frame's."""

    def __init__(self):
        self.frame_num: int | None = None
        self.average = 0.0

    def measure(self, frame_num: int, frame: np.ndarray) -> None:
        self.frame_num = frame_num
        self.average = cv2.sumElems(frame.reshape(-1))[0] / frame.size  # numpy.mean's exact sum, one channel's speed

    def metrics_exist(self, frame_num: int, metric_keys) -> bool:
        return frame_num == self.frame_num

    def get_metrics(self, frame_num: int, metric_keys) -> list[float]:
        return [self.average]

    def set_metrics(self, frame_num: int, metrics: dict) -> None:
        pass


class ContentShotDetector:
    """Feed every frame in order; `feed` returns the frame numbers at which new shots start.

    A cut is reported `lag` frames after it happens; a fade only once the picture comes back
    from black, so its boundary can lie further back."""

    name = "content"

    def __init__(self, settings: ShotSettings, fps: float):
        min_len = max(1, round(settings.min_shot_s * (fps or 25.0)))
        self._cuts = _HsvAdaptiveDetector(
            adaptive_threshold=settings.adaptive_threshold,
            min_scene_len=min_len,
            min_content_val=settings.min_content_val,
        )
        self._fades = ThresholdDetector(
            threshold=settings.fade_threshold, min_scene_len=min_len, fade_bias=0.0, add_final_scene=False
        )
        self._average = _FrameAverage()
        self._fades.stats_manager = self._average
        self._min_len = min_len
        self._last = 0  # frame number of the last boundary (the first frame starts shot 0)
        self.lag = self._cuts.event_buffer_length

    @property
    def average(self) -> float:
        """The last frame's mean pixel value (0-255): what the fade detector calls black."""
        return self._average.average

    def feed(self, seen: Seen) -> list[int]:
        frame_idx, small_rgb = seen.frame.idx, seen.small
        self._average.measure(frame_idx, small_rgb)
        found = self._cuts.process_frame(
            frame_idx, cv2.cvtColor(small_rgb, cv2.COLOR_RGB2HSV)
        ) + self._fades.process_frame(frame_idx, small_rgb)
        starts = []
        for start in sorted(found):
            # Both detectors may see one transition (a fast fade is also a big change), and a
            # video that opens on black "fades in" at its start: keep shots at least min_len long.
            if start - self._last >= self._min_len:
                starts.append(start)
                self._last = start
        return starts

    def finish(self) -> list[int]:
        return []  # every boundary was reported as its frames came
