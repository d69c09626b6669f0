"""decord: ffmpeg's decoders with frame threading; scales inside the decoder when asked to."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Iterator

from .base import DecodeError, Frame, StreamInfo, scaled_size


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
        except ImportError as exc:  # an optional backend: the others still work
            raise DecodeError(f"decord is not installed ({exc})") from exc
        try:
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
            last_end = float(reader.get_frame_timestamp(count - 1)[1])
        except decord.DECORDError as exc:
            raise DecodeError(str(exc).splitlines()[0]) from exc
        self._decord = decord
        self._reader = reader
        self.info = StreamInfo(self.name, fps, count, last_end, width, height)

    def frames(self) -> Iterator[Frame]:
        reader = self._reader
        for idx in range(len(reader)):
            try:
                rgb = reader.next().asnumpy()
            except StopIteration:
                return
            except self._decord.DECORDError as exc:
                raise DecodeError(f"frame {idx}: {str(exc).splitlines()[0]}") from exc
            # Start of the frame's presentation interval, relative to the file's start.
            yield Frame(idx, float(reader.get_frame_timestamp(idx)[0]), rgb)

    def close(self) -> None:
        self._reader = None
