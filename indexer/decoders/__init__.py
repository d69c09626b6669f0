"""Video decoding backends behind one interface; `open_video` tries them in order."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack

from .base import BackendUnavailable, DecodeError, Frame, StreamInfo, VideoSource, library_name, one_line, scaled_size
from .decord_backend import DecordSource
from .opencv_backend import OpenCVSource
from .pyav_backend import PyAVSource
from .torchcodec_backend import NvdecSource, TorchCodecSource

log = logging.getLogger(__name__)

# "nvdec" decodes into GPU memory (frames are CUDA tensors); the others into host memory.
BACKENDS = {
    "nvdec": NvdecSource,
    "decord": DecordSource,
    "pyav": PyAVSource,
    "opencv": OpenCVSource,
    "torchcodec": TorchCodecSource,
}
HOST_BACKENDS = [name for name in BACKENDS if name != "nvdec"]  # those that run on any machine


def open_video(path: str, backends: list[str], max_short_side: int) -> VideoSource:
    """Open with the first backend that can; DecodeError lists why each one failed."""
    held = ExitStack()  # the descriptor a name that is not UTF-8 is opened through
    try:
        name = held.enter_context(library_name(path))
    except OSError as exc:
        raise DecodeError(f"cannot read: {exc.strerror}") from exc
    errors, unavailable = [], []
    for backend in backends:
        try:
            source = BACKENDS[backend](name, max_short_side)
        except Exception as exc:  # any backend failure means: try the next one
            log.debug("%s cannot open %s: %s", backend, path, exc)
            (unavailable if isinstance(exc, BackendUnavailable) else errors).append(f"{backend}: {one_line(exc)}")
        else:
            return _Holding(source, held)
    held.close()
    raise DecodeError("; ".join(errors or unavailable) or "no decoder configured")


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


__all__ = [
    "BACKENDS",
    "HOST_BACKENDS",
    "BackendUnavailable",
    "DecodeError",
    "Frame",
    "StreamInfo",
    "VideoSource",
    "one_line",
    "open_video",
    "scaled_size",
]
