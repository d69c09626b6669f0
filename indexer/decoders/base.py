"""The decoder interface: open a file, stream its frames once, in order.

Every backend yields RGB uint8 frames already turned upright (rotation metadata applied) and
scaled so the short side is at most `max_short_side`, with
    frame_idx  0-based number of the frame in presentation order,
    timestamp  seconds since the start of the file, from the frame's presentation time
               (so variable-frame-rate files get true times, not frame_idx / fps): finite,
               never negative, never decreasing (see `presentation_times`).
Frames are produced one at a time, so memory does not grow with video length.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import re
import tempfile
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

log = logging.getLogger(__name__)


class DecodeError(Exception):
    """The file cannot be decoded (not a video, corrupt, unsupported codec)."""


class BackendUnavailable(DecodeError):
    """The backend cannot run on this machine at all (no CUDA device, library missing): no fault
    of the file, so not named in its error while other backends were tried."""


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


T = TypeVar("T")

# Frames held back so that times attached to the wrong frame can be put back in order: an AVI
# with packed B-frames (opencv_samples/Megamind.avi) gives times 1, 2, 3, 5, 4, 6, 8, 7, ... frames
# apart to frames that come out in presentation order. One frame of reordering is the most such
# files have; 4 leaves room.
REORDER_WINDOW = 4
# A time beyond this many seconds is no time but a sentinel read as one (ffmpeg's "no
# timestamp", -2^63 in the stream's time base, came out of decord as -3.85e17 s).
MAX_SECONDS = 1e7


def presentation_times(
    frames: Iterator[tuple[T, float | None]], fps: float, window: int = REORDER_WINDOW
) -> Iterator[tuple[T, float]]:
    """(frame, time) in the order the frames come, with times a user can trust.

    `frames` pairs each frame, in presentation order, with the time its decoder gives it
    (seconds from the file's start; None when the file gives none). The times of `window`
    frames at a time are sorted and handed out in order, which undoes times that a demuxer
    attached to the wrong frame and changes nothing where they were in order. A frame without
    a time (or with a sentinel) gets the previous frame's time plus 1 / fps: frame_idx / fps
    counted from the last known time, 0 for the first frame. Times are clamped to never
    decrease and never be negative (a file starting at a negative time starts at 0). An error
    of `frames` is raised once the frames before it are out."""
    step = 1 / fps if fps and math.isfinite(fps) and fps > 0 else 1 / 25
    held: deque[tuple[T, bool]] = deque()  # (frame, whether it came with a time)
    times: list[float] = []  # a heap of the held frames' times
    last: float | None = None

    def release() -> tuple[T, float]:
        nonlocal last
        frame, timed = held.popleft()
        t = heapq.heappop(times) if timed else (0.0 if last is None else last + step)
        last = max(0.0, t) if last is None else max(last, t)
        return frame, last

    broken: Exception | None = None
    try:
        for frame, t in frames:
            timed = t is not None and math.isfinite(t) and abs(t) < MAX_SECONDS
            held.append((frame, timed))
            if timed:
                heapq.heappush(times, t)
            while len(held) > window:
                yield release()
    except Exception as exc:  # decoding broke off: the frames before the break still count
        broken = exc
    while held:
        yield release()
    if broken is not None:
        raise broken


def scaled_size(width: int, height: int, max_short_side: int) -> tuple[int, int]:
    """(width, height) with the short side capped, aspect kept, both even (codecs like even sizes)."""
    short = min(width, height)
    if max_short_side <= 0 or short <= max_short_side:
        return width, height
    scale = max_short_side / short
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


@contextmanager
def library_name(path: str) -> Iterator[str]:
    """A name of the file at `path` that C libraries (decord, OpenCV, ffmpeg) can open. A name
    that is not UTF-8 (bytes kept as surrogate escapes, PEP 383) cannot cross into them: decord
    refuses it and OpenCV crashes the process. The file is then opened here and named by its
    descriptor (/proc/self/fd/N), valid until the block ends."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        yield path
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        yield f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else f"/dev/fd/{fd}"
    finally:
        os.close(fd)


@contextmanager
def stderr_to_log(what: str) -> Iterator[None]:
    """Catch what C code writes straight to the process's stderr (decord's own error lines,
    which no setting silences) and log it at debug level instead: the user gets one line per
    failed file, from evr. Meant for short calls (opening a file): anything another thread
    writes meanwhile is logged the same way."""
    with tempfile.TemporaryFile() as caught:
        saved = os.dup(2)
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            said = caught.read().decode("utf-8", "replace").strip()
            if said:
                log.debug("%s wrote: %s", what, said)
