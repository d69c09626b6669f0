"""What a shot detector sees of a frame, and what it promises."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..decoders import Frame
from ..pixels import detection_frame


class Seen:
    """A decoded frame as the keyframe stage holds it: the frame where it was decoded, and the
    small frame of the detectors and the change test, on the host, made on first use (a
    detector that reads frames its own way never makes it)."""

    def __init__(self, frame: Frame, detect_width: int):
        self.frame = frame
        self._detect_width = detect_width
        self._small: np.ndarray | None = None

    @property
    def small(self) -> np.ndarray:
        if self._small is None:
            self._small = detection_frame(self.frame.rgb, self._detect_width)
        return self._small


class ShotDetector(Protocol):
    """Fed every frame of a video in order, once. `feed` and `finish` return the frame numbers at
    which new shots start, in order; a start is reported at most `lag` frames after its frame
    was fed (the keyframe stage holds that many frames back)."""

    name: str
    lag: int

    def feed(self, seen: Seen) -> list[int]: ...

    def finish(self) -> list[int]: ...
