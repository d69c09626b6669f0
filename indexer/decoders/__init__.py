"""Video decoding backends behind one interface; `open_video` tries them in order."""
from __future__ import annotations

import logging

from .base import DecodeError, Frame, StreamInfo, VideoSource, one_line, scaled_size
from .decord_backend import DecordSource
from .opencv_backend import OpenCVSource
from .pyav_backend import PyAVSource

log = logging.getLogger(__name__)

BACKENDS = {"decord": DecordSource, "pyav": PyAVSource, "opencv": OpenCVSource}


def open_video(path: str, backends: list[str], max_short_side: int) -> VideoSource:
    """Open with the first backend that can; DecodeError lists why each one failed."""
    errors = []
    for name in backends:
        try:
            return BACKENDS[name](path, max_short_side)
        except Exception as exc:  # any backend failure means: try the next one
            log.debug("%s cannot open %s: %s", name, path, exc)
            errors.append(f"{name}: {one_line(exc)}")
    raise DecodeError("; ".join(errors) or "no decoder configured")


__all__ = ["BACKENDS", "DecodeError", "Frame", "StreamInfo", "VideoSource", "one_line", "open_video", "scaled_size"]
