"""Shot boundaries, streamed: PySceneDetect's detectors fed one small frame at a time.

Cuts come from its AdaptiveDetector (content change compared with the rolling mean of the
neighbouring frames' change, so a fast pan is not a cut), fades through black from its
ThresholdDetector (the boundary is the middle of the dark stretch). The library is used as it is,
not copied: we only shrink frames as its SceneManager would and merge the two detectors' lists.
We feed the detectors ourselves instead of running its SceneManager, because the frames are
already decoded once for the whole pipeline (a second decode would double the keyframe stage).
"""
from __future__ import annotations

import cv2
import numpy as np
from scenedetect.detectors import AdaptiveDetector, ThresholdDetector

from .settings import ShotSettings


def detection_frame(rgb: np.ndarray, width: int) -> np.ndarray:
    """The frame as PySceneDetect's SceneManager would hand it to a detector: BGR, shrunk by an
    integer factor to at least `width` pixels wide, linear interpolation."""
    h, w = rgb.shape[:2]
    factor = max(1, w // width)
    if factor > 1:  # shrunk first: swapping channels commutes with a per-channel resize, and costs less small
        rgb = cv2.resize(rgb, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


class ShotDetector:
    """Feed every frame in order; `feed` returns the frame numbers at which new shots start.

    A cut is reported `lag` frames after it happens; a fade only once the picture comes back
    from black, so its boundary can lie further back."""

    def __init__(self, settings: ShotSettings, fps: float):
        min_len = max(1, round(settings.min_shot_s * (fps or 25.0)))
        self._cuts = AdaptiveDetector(
            adaptive_threshold=settings.adaptive_threshold, min_scene_len=min_len,
            min_content_val=settings.min_content_val,
        )
        self._fades = ThresholdDetector(threshold=settings.fade_threshold, min_scene_len=min_len,
                                        fade_bias=0.0, add_final_scene=False)
        self._min_len = min_len
        self._last = 0  # frame number of the last boundary (the first frame starts shot 0)
        self.lag = self._cuts.event_buffer_length

    def feed(self, frame_idx: int, small_bgr: np.ndarray) -> list[int]:
        found = self._cuts.process_frame(frame_idx, small_bgr) + self._fades.process_frame(frame_idx, small_bgr)
        starts = []
        for start in sorted(found):
            # Both detectors may see one transition (a fast fade is also a big change), and a
            # video that opens on black "fades in" at its start: keep shots at least min_len long.
            if start - self._last >= self._min_len:
                starts.append(start)
                self._last = start
        return starts
