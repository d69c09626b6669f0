"""OpenCV: the last resort; its timestamps come from CAP_PROP_POS_MSEC (the frame's pts)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import cv2

from .base import DecodeError, Frame, StreamInfo, presentation_times, scaled_size

# OpenCV's ffmpeg prints its complaints (a corrupt header, a broken packet) to stderr; our error
# says why a file fails, in one line. Read when its ffmpeg backend first opens a file.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


class OpenCVSource:
    name = "opencv"

    def __init__(self, path: str, max_short_side: int):
        cap = cv2.VideoCapture(path)
        if not cap.isOpened():
            raise DecodeError("OpenCV cannot open the file")
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # turn rotated phone videos upright
        ok, first = cap.read()
        if not ok:
            cap.release()
            raise DecodeError("no video frames")
        height, width = first.shape[:2]
        self._size = scaled_size(width, height, max_short_side)
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._cap, self._fps = cap, fps
        self.info = StreamInfo(self.name, fps, count, count / fps if fps else 0.0, width, height)

    def frames(self) -> Iterator[Frame]:
        def timed():
            first = True
            while True:
                ok, bgr = self._cap.read()
                if not ok:
                    return
                ts = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                yield bgr, ts if ts > 0 or first else None  # 0 after the first frame: no time known
                first = False

        for idx, (bgr, ts) in enumerate(presentation_times(timed(), self._fps)):
            if (bgr.shape[1], bgr.shape[0]) != self._size:
                bgr = cv2.resize(bgr, self._size, interpolation=cv2.INTER_AREA)
            yield Frame(idx, ts, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def close(self) -> None:
        self._cap.release()
