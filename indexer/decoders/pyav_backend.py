"""PyAV: ffmpeg through its Python binding; opens files decord cannot (odd containers, no index)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from .base import DecodeError, Frame, StreamInfo, presentation_times, scaled_size


class PyAVSource:
    name = "pyav"

    def __init__(self, path: str, max_short_side: int):
        import av

        self._av = av
        try:
            container = av.open(path)
            if not container.streams.video:
                container.close()
                raise DecodeError("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            decoded = container.decode(stream)
            first = next(decoded, None)
        except av.FFmpegError as exc:
            raise DecodeError(str(exc)) from exc
        if first is None:
            container.close()
            raise DecodeError("no video frames")
        self._rotation = int(getattr(first, "rotation", 0) or 0)
        width, height = first.width, first.height
        if self._rotation % 180:
            width, height = height, width
        out_w, out_h = scaled_size(width, height, max_short_side)
        # Frame size before rotation, as swscale must produce it.
        self._decode_size = (out_h, out_w) if self._rotation % 180 else (out_w, out_h)
        self._start = (container.start_time or 0) / 1_000_000  # AV_TIME_BASE units
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        duration = float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / 1e6
        count = stream.frames or int(round(duration * fps))
        # Keep decoding from the same generator (no seek back: some files cannot seek).
        self._frames = itertools.chain([first], decoded)
        self._container, self._fps = container, fps
        self.info = StreamInfo(self.name, fps, count, duration, width, height)

    def frames(self) -> Iterator[Frame]:
        w, h = self._decode_size

        def timed():
            count = 0
            try:
                for frame in self._frames:
                    count += 1
                    # The frame's pts; the packet's dts when the file gives none (AVI).
                    raw = frame.pts if frame.pts is not None else frame.dts
                    yield (
                        frame,
                        float(raw * frame.time_base) - self._start if raw is not None and frame.time_base else None,
                    )
            except self._av.FFmpegError as exc:
                raise DecodeError(f"frame {count + 1}: {exc}") from exc

        for idx, (frame, ts) in enumerate(presentation_times(timed(), self._fps)):
            rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
            if self._rotation:
                rgb = np.ascontiguousarray(np.rot90(rgb, k=self._rotation // 90))
            yield Frame(idx, ts, rgb)

    def close(self) -> None:
        self._container.close()
