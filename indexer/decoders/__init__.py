"""Video decoding backends behind one interface; `open_video` tries them in order."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack

from .base import DecodeError, Frame, StreamInfo, VideoSource, library_name, one_line, scaled_size
from .decord_backend import DecordSource
from .opencv_backend import OpenCVSource
from .pyav_backend import PyAVSource

log = logging.getLogger(__name__)

BACKENDS = {"decord": DecordSource, "pyav": PyAVSource, "opencv": OpenCVSource}


def open_video(path: str, backends: list[str], max_short_side: int) -> VideoSource:
    """Open with the first backend that can; DecodeError lists why each one failed."""
    held = ExitStack()  # the descriptor a name that is not UTF-8 is opened through
    try:
        name = held.enter_context(library_name(path))
    except OSError as exc:
        raise DecodeError(f"cannot read: {exc.strerror}") from exc
    errors = []
    for backend in backends:
        try:
            source = BACKENDS[backend](name, max_short_side)
        except Exception as exc:  # any backend failure means: try the next one
            log.debug("%s cannot open %s: %s", backend, path, exc)
            errors.append(f"{backend}: {one_line(exc)}")
        else:
            return _Holding(source, held)
    held.close()
    raise DecodeError("; ".join(errors) or "no decoder configured")


class _Holding:
    """A source that also closes what its file was opened through."""

    def __init__(self, source: VideoSource, held: ExitStack):
        self.source, self.info, self._held = source, source.info, held

    def frames(self) -> Iterator[Frame]:
        return self.source.frames()

    def close(self) -> None:
        try:
            self.source.close()
        finally:
            self._held.close()


__all__ = ["BACKENDS", "DecodeError", "Frame", "StreamInfo", "VideoSource", "one_line", "open_video", "scaled_size"]
