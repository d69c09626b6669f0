"""decord: ffmpeg's decoders with frame threading; scales inside the decoder when asked to."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Iterator

import numpy as np

from .base import MAX_SECONDS, DecodeError, Frame, StreamInfo, presentation_times, scaled_size, stderr_to_log


@functools.cache
def _system_zlib_first() -> None:
    """decord loads its bundled zlib 1.2.3 with RTLD_GLOBAL. Any libpng loaded after it in the
    process (tesseract's, which stores line images as PNG) then binds to that zlib, fails with
    "libpng error: bad parameters to zlib" and tesseract aborts the process. Loading the system
    zlib globally first keeps every later library on it (decord's ffmpeg included: zlib keeps
    its ABI)."""
    name = ctypes.util.find_library("z")
    if name:
        ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)


class DecordSource:
    name = "decord"

    def __init__(self, path: str, max_short_side: int):
        try:
            _system_zlib_first()
            import decord
            import decord.logging
        except ImportError as exc:  # an optional backend: the others still work
            raise DecodeError(f"decord is not installed ({exc})") from exc
        decord.logging.set_level(decord.logging.QUIET)  # its ffmpeg's messages: our error says why
        try:
            with stderr_to_log("decord"):
                reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=0)
            if len(reader) == 0:
                raise DecodeError("no video frames")
            # decord reports the upright size (rotation applied) of the first frame.
            first = reader[0].shape
            if len(first) != 3 or first[2] != 3:  # tiny frames come back with their row padding
                raise DecodeError(f"decord returns malformed {first[1]}x{first[0]} frames")
            height, width = first[:2]
            out_w, out_h = scaled_size(width, height, max_short_side)
            if (out_w, out_h) != (width, height):
                reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=0, width=out_w, height=out_h)
            else:
                reader.seek(0)
            fps = float(reader.get_avg_fps())
            count = len(reader)
            # (start, end) of every frame's presentation, from decord's index: no decoding.
            spans = reader.get_frame_timestamp(np.arange(count)).astype(np.float64)
        except decord.DECORDError as exc:
            raise DecodeError(str(exc).splitlines()[0]) from exc
        starts = spans[:, 0]
        # decord turns a frame without a time into a number (-3.85e17 s in an AVI with packed
        # B-frames) and the frames after it into times counted from elsewhere: such a file is
        # left to a decoder that reads the decode times (PyAV, OpenCV).
        if not (
            np.all(np.isfinite(starts))
            and np.all(np.abs(starts) < MAX_SECONDS)
            and np.all(np.diff(starts) >= -1 / max(fps, 1))
        ):
            raise DecodeError("the file's frame times are missing or out of order for decord")
        self._decord = decord
        self._reader = reader
        self._starts = starts
        self.info = StreamInfo(self.name, fps, count, float(spans[-1, 1]), width, height)

    def frames(self) -> Iterator[Frame]:
        reader = self._reader

        def timed():
            for idx in range(len(reader)):
                try:
                    rgb = reader.next().asnumpy()
                except StopIteration:
                    return
                except self._decord.DECORDError as exc:
                    raise DecodeError(f"frame {idx}: {str(exc).splitlines()[0]}") from exc
                yield rgb, float(self._starts[idx])  # the start of the frame's presentation

        for idx, (rgb, ts) in enumerate(presentation_times(timed(), self.info.fps)):
            yield Frame(idx, ts, rgb)

    def close(self) -> None:
        self._reader = None
