"""The decoder interface: open a file, stream its frames once, in order.

Every backend yields RGB uint8 frames already turned upright (rotation metadata applied) and
scaled so the short side is at most `max_short_side`, with
    frame_idx  0-based number of the frame in presentation order,
    timestamp  seconds since the start of the file, from the frame's presentation time
               (so variable-frame-rate files get true times, not frame_idx / fps).
Frames are produced one at a time, so memory does not grow with video length.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class DecodeError(Exception):
    """The file cannot be decoded (not a video, corrupt, unsupported codec)."""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """A library's error as one short line: decord's "[12:00:00] src/x.cc:151: Check failed: ...
    ERROR <why>" becomes <why>, OpenCV's "OpenCV(4.11) file:92: error: (-15:Bad number of
    channels) in function ..." becomes "OpenCV: Bad number of channels"; the rest keeps its
    first line."""
    text = str(exc).strip()
    opencv = re.search(r"error: \(-?\d+:([^)]*)\)", text)
    if opencv:
        return f"OpenCV: {opencv.group(1)}"
    line = next((ln for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    line = re.sub(r"^\[\d\d:\d\d:\d\d\] \S+:\d+: ", "", line)  # decord's time and source line
    if "Check failed" in line and " ERROR " in line:
        line = line.split(" ERROR ", 1)[1]
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True)
class StreamInfo:
    backend: str
    fps: float  # average frame rate as the container states it
    frame_count: int  # as the container states it; may be an estimate
    duration: float  # seconds
    width: int  # of the video, upright (frames are yielded scaled down to max_short_side)
    height: int


@dataclass(frozen=True)
class Frame:
    idx: int
    timestamp: float
    rgb: np.ndarray  # H x W x 3, uint8


class VideoSource(Protocol):
    info: StreamInfo

    def frames(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


def scaled_size(width: int, height: int, max_short_side: int) -> tuple[int, int]:
    """(width, height) with the short side capped, aspect kept, both even (codecs like even sizes)."""
    short = min(width, height)
    if max_short_side <= 0 or short <= max_short_side:
        return width, height
    scale = max_short_side / short
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
