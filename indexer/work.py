"""The work on one video: decode -> keyframes -> CLIP and frame analyzers, then the file analyzers
(speech), with no store in sight.

`VideoWorker.index_video(path)` is a pure function of the file and the settings: it returns a
`VideoResult` (keyframes with vectors and analyses, shots, what the decoder learned) that the
one writer commits (indexer/sources/files.py). So the same worker runs in the writer's process, in
local worker processes or on a Ray cluster (indexer/runners/).

Decoding and keyframe selection run in a background thread that hands batches of candidate
keyframes to the models (decord, OpenCV and torch release the GIL, so the stages overlap).
Each stage's time is measured. A file that cannot be decoded gives a result with its error; a
file that breaks off midway is indexed as far as it decodes and reported as partial. A disk
that is full, read-only or failing raises: the machine's fault, not the file's.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from evr.storage.features import ANALYZER_PATHS
from evr.storage.types import PRIMARY_MODEL, NewKeyframe, NewShot, Plan, VideoInfo

from .analyzers import FileAnalyzer, FrameAnalyzer, enabled_analyzers
from .decoders import DecodeError, Frame, one_line, open_video
from .encoders import ClipEncoder
from .keyframes import KeyframeSelector
from .pixels import on_host
from .settings import IndexSettings
from .shots import chosen
from .thumbnails import encode_thumbnail

log = logging.getLogger(__name__)


def stages() -> tuple[str, ...]:
    """The stages a video's work is timed in: each registered analyzer is one (read when a run
    starts, so a feature registered after this module was imported counts)."""
    return ("decode", "keyframes", "clip", *ANALYZER_PATHS, "write")


# OS errors of the machine rather than of a video, wherever they come from (a temp folder too).
MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}
# A file is partial when it decodes fewer frames than its header promises and stops early in
# time, both by more than this share. Frame counts alone mislead: an AVI counts the empty chunks
# that repeat a frame (opencv_samples/tree.avi: 444 in the header, 68 pictures over all 29.6 s),
# and some containers state an estimate.
PARTIAL_SHARE = 0.02


@dataclass
class VideoResult:
    """What indexing one file gave: everything the writer commits, or why the file failed."""

    path: str
    plan: Plan  # the keyframe rule and analyzers applied (see VideoWorker.plan)
    info: VideoInfo | None = None  # None when the file failed
    keyframes: list[NewKeyframe] = field(default_factory=list)
    shots: list[NewShot] = field(default_factory=list)
    # Each file analyzer's result for the whole video, by its name ("speech": list[SpeechSegment]).
    analyses: dict[str, Any] = field(default_factory=dict)
    # Set when only these file analyzers ran, on a video already indexed otherwise the same way:
    # its keyframes stay and only `analyses` is committed.
    only: tuple[str, ...] = ()
    # Indexed as far as it decodes: {"frames_decoded", "frames_expected", "error"}
    partial: dict | None = None
    error: str | None = None  # the file failed: why
    frames_decoded: int = 0
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def partial_note(self) -> str | None:
        if self.partial is None:
            return None
        p = self.partial
        return f"indexed {p['frames_decoded']} of {p['frames_expected']} frames: {p['error']}"


@dataclass
class _Decoded:
    """How far decoding of the current video got (written by the decode thread)."""

    frames: int = 0
    last_timestamp: float = 0.0
    error: str | None = None  # why decoding broke off before the end of the file


class VideoWorker:
    """The models of an index run, loaded once, and the work on one video at a time."""

    def __init__(self, settings: IndexSettings, clip: ClipEncoder | None = None):
        self.settings = settings
        self.clip = clip or ClipEncoder(settings.clip)
        # [[models]]: every keyframe gets a vector of each, in the same pass as [clip]'s.
        self.others = {name: ClipEncoder(cs) for name, cs in settings.image_models.items() if name != PRIMARY_MODEL}
        self.analyzers = enabled_analyzers(settings)
        self.frame_analyzers = {n: a for n, a in self.analyzers.items() if isinstance(a, FrameAnalyzer)}
        self.file_analyzers = {n: a for n, a in self.analyzers.items() if isinstance(a, FileAnalyzer)}

    def plan(self) -> Plan:
        """The keyframe rule and analyzers this worker applies; a video indexed under another
        plan is indexed again (a change of max_gap_s gives other keyframes, OCR switched on adds
        text), or only analyzed again when only its file analyzers differ."""
        k, sh = self.settings.keyframes, self.settings.shots
        rule = {"sample_s": k.sample_s, "max_gap_s": k.max_gap_s, "min_change": k.min_change}
        shots = sh.signature(chosen(sh, self.settings.clip.device)[0])
        analyzers = {name: a.signature for name, a in self.analyzers.items() if a.signature}
        return Plan(source="decoded", keyframes=rule, shots=shots, vectors="clip", analyzers=analyzers)

    def load(self) -> None:
        """Load every model now: missing weights stop a run before any video is touched. Also
        pins malloc's mmap threshold in the process that will decode (this one)."""
        pin_malloc_mmap_threshold()
        self.clip.load()
        for encoder in self.others.values():
            encoder.load()
        for analyzer in self.analyzers.values():
            analyzer.load()

    def close(self) -> None:
        self.clip.close()
        for encoder in self.others.values():
            encoder.close()
        for analyzer in self.analyzers.values():
            analyzer.close()

    def index_video(
        self, path: str, on_progress: Callable[[str], None] | None = None, only: tuple[str, ...] = ()
    ) -> VideoResult:
        """Index one file, or with `only` run just those file analyzers on it (an indexed video
        whose keyframe rule and frame analyzers are unchanged: say speech was switched on). A
        file's own fault gives a result with `error`; a machine fault (disk full, read-only,
        failing) raises."""
        result = VideoResult(path, self.plan(), only=only)
        try:
            if only:
                self.analyze_file(path, result, only, on_progress)
            else:
                self._index(path, result, on_progress)
        except Exception as exc:
            if machine_fault(exc):
                raise
            result.error = error_text(exc)
            result.keyframes, result.shots, result.analyses, result.info = [], [], {}, None
            log.debug("details", exc_info=True)
        return result

    def encode(
        self, images: list, stage_seconds: dict[str, float], on_host: list[np.ndarray] | None = None
    ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        """Every image-text model's vectors and each frame analyzer's results for a batch of RGB
        keyframes (of any videos): {model name: (n, dim) vectors}, [clip]'s as "clip", and per
        image {analyzer: result} (an analyzer that could not run on an image gives no entry).
        The models are timed together, as the "clip" stage. `images` may be tensors on the GPU
        (NVDEC's frames), which the image models read there; the analyzers read `on_host`, the
        same frames as numpy arrays (default: `images`)."""
        t = time.perf_counter()
        vectors = {PRIMARY_MODEL: self.clip.encode_images(images)}
        for name, encoder in self.others.items():
            vectors[name] = encoder.encode_images(images)
        stage_seconds["clip"] += time.perf_counter() - t
        per_image: list[dict[str, Any]] = [{} for _ in images]
        for name, analyzer in self.frame_analyzers.items():
            t = time.perf_counter()
            for found, result in zip(per_image, analyzer.analyze(images if on_host is None else on_host)):
                if result is not None:
                    found[name] = result
            stage_seconds[name] += time.perf_counter() - t
        return vectors, per_image

    def _index(self, path: str, result: VideoResult, on_progress: Callable[[str], None] | None) -> None:
        s = self.settings
        stream = KeyframeStream(path, s, result.stage_seconds)
        try:
            for batch in prefetch(stream.batches(self.clip.batch_size)):
                host = [on_host(f.rgb) for f in batch]  # kept frames only cross from a GPU's memory
                vectors, analyses = self.encode([f.rgb for f in batch], result.stage_seconds, host)
                t = time.perf_counter()
                for i, (frame, rgb, found) in enumerate(zip(batch, host, analyses)):
                    result.keyframes.append(
                        NewKeyframe(
                            frame_idx=frame.idx,
                            timestamp=round(frame.timestamp, 4),
                            shot=0,  # numbered below
                            jpeg=encode_thumbnail(rgb, s.keyframes.thumbnail_width),
                            analyses=found,
                            **keyframe_vectors(vectors, i),
                        )
                    )
                result.stage_seconds["write"] += time.perf_counter() - t
                if on_progress:
                    on_progress(f"{stream.decoded.frames} frames, {len(result.keyframes)} keyframes")
            ended = stream.finish()
        finally:
            stream.close()
        ended.apply(result)
        self.analyze_file(path, result, tuple(self.file_analyzers), on_progress)

    def analyze_file(
        self, path: str, result: VideoResult, names: tuple[str, ...], on_progress: Callable[[str], None] | None
    ) -> None:
        """The file analyzers `names` on the video file, into `result` (the streaming run calls
        this too, once a video's keyframes are done)."""
        for name in names:
            if on_progress:
                on_progress(name)
            t = time.perf_counter()
            found = self.file_analyzers[name].analyze_file(path)
            result.stage_seconds[name] += time.perf_counter() - t
            if found is not None:  # None: it could not run here
                result.analyses[name] = found


@dataclass
class StreamEnd:
    """What decoding a whole video learned, once it ended: the writer's facts about the file
    and the final shot of each keyframe (a fade is reported once the picture is back, possibly
    after the frames that follow it were kept, so shots are numbered at the end)."""

    path: str
    info: VideoInfo
    shots: list[NewShot]
    shot_of: dict[int, int]  # keyframe's frame index -> its shot
    partial: dict | None
    frames_decoded: int

    def apply(self, result: VideoResult) -> None:
        """Fill `result` (whose keyframes are all there) with these facts."""
        result.keyframes = sorted(
            (replace(kf, shot=self.shot_of[kf.frame_idx]) for kf in result.keyframes), key=lambda kf: kf.frame_idx
        )
        result.info, result.shots, result.partial = self.info, self.shots, self.partial
        result.frames_decoded = self.frames_decoded
        if self.partial:
            log.warning("%s: %s", self.path, result.partial_note)


class KeyframeStream:
    """Decode -> keyframes of one video, with no model: batches of keyframes as they are
    chosen (`batches`), then what the decoder learned (`finish`). It runs beside the models,
    in a thread of VideoWorker, or in a decode worker process (indexer/runners/streaming.py).
    Both stages are timed into `stage_seconds`."""

    def __init__(self, path: str, settings: IndexSettings, stage_seconds: dict[str, float]):
        self.path = path
        self.source = open_video(path, settings.decode.backends, settings.decode.max_short_side)
        self.selector = KeyframeSelector(settings.keyframes, settings.shots, self.source.info.fps, settings.clip.device)
        self.decoded = _Decoded()
        self.stage_seconds = stage_seconds
        self.kept: list[int] = []  # frame indexes of the keyframes given out

    def close(self) -> None:
        self.source.close()

    def batches(self, size: int) -> Iterator[list[Frame]]:
        """Only keyframes leave: every other frame is dropped right after the shot detector has
        seen it, so memory holds at most a few batches of frames."""
        batch: list[Frame] = []
        frames = self.source.frames()
        decoded, seconds = self.decoded, self.stage_seconds
        while True:
            t = time.perf_counter()
            try:
                frame = next(frames, None)
            except DecodeError as exc:
                if decoded.frames == 0:
                    raise  # nothing to index: the file fails
                frame, decoded.error = None, str(exc)  # keep what decoded before the break
            t2 = time.perf_counter()
            seconds["decode"] += t2 - t
            done = frame is None
            if done:
                batch += self.selector.finish()
            else:
                decoded.frames += 1
                decoded.last_timestamp = frame.timestamp
                batch += self.selector.feed(frame)
            del frame  # not held while the next one decodes
            seconds["keyframes"] += time.perf_counter() - t2
            while len(batch) >= size or (batch and done):
                self.kept += [f.idx for f in batch[:size]]
                yield batch[:size]
                batch = batch[size:]
            if done:
                return

    def finish(self) -> StreamEnd:
        """The facts of the file once `batches` is exhausted; a file that broke off or ends
        early is partial, and what was indexed ends with its last decoded frame."""
        info, decoded = self.source.info, self.decoded
        frame_s = 1 / (info.fps or 25)
        short = (
            decoded.frames < info.frame_count * (1 - PARTIAL_SHARE)
            and decoded.last_timestamp < info.duration * (1 - PARTIAL_SHARE) - frame_s
        )
        partial = None
        if decoded.error or short:
            partial = {
                "frames_decoded": decoded.frames,
                "frames_expected": info.frame_count,
                "error": decoded.error or "the file ends before the last frame its header lists",
            }
        duration = decoded.last_timestamp + frame_s if partial else max(info.duration, decoded.last_timestamp)
        return StreamEnd(
            self.path,
            VideoInfo(
                decoder=info.backend,
                duration=duration,
                fps=info.fps,
                frame_count=decoded.frames,
                width=info.width,
                height=info.height,
            ),
            [NewShot(sh.start_frame, round(sh.start, 4), round(sh.end, 4)) for sh in self.selector.shots(duration)],
            {idx: self.selector.shot_of(idx) for idx in self.kept},
            partial,
            decoded.frames,
        )


def keyframe_vectors(vectors: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    """The `vector` and `model_vectors` of a NewKeyframe: row i of each model's batch."""
    return {
        "vector": vectors[PRIMARY_MODEL][i],
        "model_vectors": {name: v[i] for name, v in vectors.items() if name != PRIMARY_MODEL},
    }


def add_seconds(into: dict[str, float], seconds: dict[str, float]) -> None:
    """Add each stage's seconds to a total by stage."""
    for stage, s in seconds.items():
        into[stage] += s


def error_text(exc: Exception) -> str:
    """Why a file failed, in one line."""
    return f"cannot decode: {exc}" if isinstance(exc, DecodeError) else one_line(exc)


def machine_fault(exc: BaseException) -> bool:
    """A full, read-only or failing disk: the run must stop, the video is not to blame."""
    from evr.storage import DataDirError

    return isinstance(exc, DataDirError) or (isinstance(exc, OSError) and exc.errno in MACHINE_ERRNOS)


def pin_malloc_mmap_threshold() -> None:
    """Make glibc give frame buffers back to the system as soon as they are freed.

    Frames are allocated by decoder threads and freed by others. glibc raises its mmap threshold
    each time such a large block is freed, so later frames land on per-thread heaps that it does
    not give back, and peak memory grows with video length: indexing 16 minutes of SD video with
    decord peaked at 6.7 GB against 1.2 GB for one minute. Setting the threshold (to glibc's own
    default, 128 KiB) switches that adjustment off: each frame gets its own mapping, unmapped on
    free, at the cost of a few page faults per frame. Process-wide; a no-op off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_mmap_threshold = -3  # from glibc's malloc.h
    libc.mallopt(m_mmap_threshold, 128 * 1024)


def prefetch(items: Iterator, depth: int = 2) -> Iterator:
    """Run an iterator in a background thread, `depth` items ahead; re-raise its errors here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def worker():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", done))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            q.put(("error", exc))

    thread = threading.Thread(target=worker, daemon=True, name="evr-decode")
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        thread.join(timeout=5)
