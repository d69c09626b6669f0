"""The index run: scan -> decode -> keyframes -> analyzers -> write, one video at a time.

Decoding and keyframe selection run in a background thread that hands batches of candidate
keyframes to the analyzers (decord, OpenCV and torch release the GIL, so the stages overlap).
Each stage's time is measured, so the run can report frames per second per stage.
A video either commits whole (keyframes, vectors, thumbnails) or not at all. The file's fault
and the machine's are told apart: a file that cannot be decoded is recorded as failed and the
run goes on (a file that breaks off midway is indexed as far as it decodes, and reported as
partial); a disk that is full, read-only or failing stops the run, leaving the video in hand
pending for the next run.
"""
from __future__ import annotations

import ctypes
import errno
import logging
import queue
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from storage import DataDirError, NewKeyframe, NewShot, Store, VideoInfo

from .analyzers import ClipEncoder
from .analyzers.ocr import OcrAnalyzer
from .analyzers.persons import PersonAnalyzer
from .decoders import DecodeError, Frame, VideoSource, one_line, open_video
from .keyframes import KeyframeSelector
from .scan import find_videos
from .settings import IndexSettings
from .thumbnails import encode_thumbnail

log = logging.getLogger(__name__)

STAGES = ("decode", "keyframes", "clip", "ocr", "persons", "write")
# OS errors of the machine rather than of a video, wherever they come from (a temp folder too).
_MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}
# A file is partial when it decodes fewer frames than its header promises and stops early in
# time, both by more than this share. Frame counts alone mislead: an AVI counts the empty chunks
# that repeat a frame (opencv_samples/tree.avi: 444 in the header, 68 pictures over all 29.6 s),
# and some containers state an estimate.
PARTIAL_SHARE = 0.02


@dataclass
class IndexReport:
    videos_indexed: int = 0
    videos_skipped: int = 0
    videos_failed: list[dict] = field(default_factory=list)  # {"path", "error"}
    # Indexed as far as they decode: {"path", "frames_decoded", "frames_expected", "error"}
    videos_partial: list[dict] = field(default_factory=list)
    videos_pruned: list[str] = field(default_factory=list)
    videos_pending: int = 0  # left for the next run, when this one stopped
    stopped: str | None = None  # why the run stopped before the end (a failing disk)
    keyframes_added: int = 0
    frames_decoded: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def to_json(self) -> dict:
        return {
            "videos_indexed": self.videos_indexed,
            "videos_skipped": self.videos_skipped,
            "videos_failed": self.videos_failed,
            "videos_partial": self.videos_partial,
            "videos_pruned": self.videos_pruned,
            "videos_pending": self.videos_pending,
            "stopped": self.stopped,
            "keyframes_added": self.keyframes_added,
            "frames_decoded": self.frames_decoded,
            "seconds": round(self.seconds, 3),
            "stage_seconds": {k: round(self.stage_seconds.get(k, 0.0), 3) for k in STAGES},
        }


@dataclass
class _Decoded:
    """How far decoding of the current video got (written by the decode thread)."""

    frames: int = 0
    last_timestamp: float = 0.0
    error: str | None = None  # why decoding broke off before the end of the file


class Indexer:
    def __init__(self, store: Store, settings: IndexSettings, clip: ClipEncoder | None = None):
        self.store = store
        self.settings = settings
        self.clip = clip or ClipEncoder(settings.clip)
        self.ocr = OcrAnalyzer(settings.ocr) if settings.ocr.enabled else None
        self.persons = PersonAnalyzer(settings.persons) if settings.persons.enabled else None

    def signature(self) -> str:
        """The keyframe rule and analyzers this run applies; a video indexed under others is
        indexed again (a change of max_gap_s gives other keyframes, OCR switched on adds text)."""
        k, sh = self.settings.keyframes, self.settings.shots
        parts = [
            f"keyframes:{k.sample_s}/{k.max_gap_s}/{k.min_change}",
            f"shots:{sh.adaptive_threshold}/{sh.min_content_val}/{sh.fade_threshold}/{sh.min_shot_s}/{sh.detect_width}",
            "clip", self.ocr.signature if self.ocr else "", self.persons.signature if self.persons else "",
        ]
        return "|".join(p for p in parts if p)

    def run(
        self,
        paths: Sequence[Path],
        *,
        prune: bool = False,
        retry_failed: bool = False,
        progress: bool | None = None,
    ) -> IndexReport:
        started = time.perf_counter()
        pin_malloc_mmap_threshold()
        report = IndexReport()
        files, unreadable = find_videos(paths, self.settings.extensions)
        report.videos_failed += [{"path": str(p), "error": why} for p, why in unreadable]
        try:
            self._run(files, prune, retry_failed, progress, report)
        except (DataDirError, OSError) as exc:
            if not _machine_fault(exc):
                raise
            if report.stopped is None:  # in repair, prune, model binding or the final save
                report.stopped = str(exc)
        report.seconds = time.perf_counter() - started
        return report

    def _run(self, files: list[Path], prune: bool, retry_failed: bool, progress: bool | None,
             report: IndexReport) -> None:
        repaired = self.store.repair()
        if repaired.changed:
            log.warning("recovered from an interrupted run: %s", repaired)
        if prune:
            report.videos_pruned = self.store.prune()
            for p in report.videos_pruned:
                log.info("pruned %s (file is gone)", p)
        _warn_shared_video_ids(files)
        signature = self.signature() if files else ""
        todo = self._changed(files, signature, retry_failed, report)
        report.videos_pending = len(todo)
        if todo:
            # Load the models before touching any video: missing weights stop the run up front.
            self.clip.load()
            self.store.bind_model(self.clip.info)
            for analyzer in (self.ocr, self.persons):
                if analyzer is not None:
                    analyzer.load()
        # progress=None: show the bar only on a terminal (tqdm's rule).
        bar = tqdm(todo, unit="video", file=sys.stderr, disable=None if progress is None else not progress)
        for f, st in bar:
            bar.set_postfix_str(f.name, refresh=False)
            try:
                video_id = self.store.start_video(str(f), st.st_size, st.st_mtime_ns)
                try:
                    report.keyframes_added += self._index_one(str(f), video_id, report, bar, signature)
                    report.videos_indexed += 1
                except Exception as exc:  # one bad file must not stop the run
                    if _machine_fault(exc):
                        raise
                    error = f"cannot decode: {exc}" if isinstance(exc, DecodeError) else one_line(exc)
                    log.error("%s: %s", f, error)
                    log.debug("details", exc_info=True)
                    self.store.fail_video(video_id, error)
                    report.videos_failed.append({"path": str(f), "error": error})
                report.videos_pending -= 1  # indexed or failed: either way done with
                t = time.perf_counter()
                self.store.checkpoint()
                report.stage_seconds["write"] += time.perf_counter() - t
            except Exception as exc:
                if not _machine_fault(exc):
                    raise
                # The machine failed, not the file: stop here, the video stays pending.
                report.stopped = f"stopped at {f}: {exc}"  # the caller says it (one line)
                log.debug("details", exc_info=True)
                break
        bar.close()
        t = time.perf_counter()
        self.store.build_vectors()  # when the archive's size or [index] kind calls for another index
        self.store.flush()
        report.stage_seconds["write"] += time.perf_counter() - t

    def _changed(self, files: list[Path], signature: str, retry_failed: bool, report: IndexReport) -> list:
        """(file, stat) of the files that need indexing; counts the rest as skipped."""
        todo = []
        for f in files:
            try:
                st = f.stat()
            except OSError as exc:  # vanished or unreadable since the folder was scanned
                report.videos_failed.append({"path": str(f), "error": f"cannot read: {exc.strerror}"})
                continue
            state = self.store.video_state(str(f))
            unchanged = state is not None and (state.size, state.mtime_ns) == (st.st_size, st.st_mtime_ns)
            if unchanged and state.status == "indexed" and state.analyzers != signature:
                unchanged = False  # same file, but analyzers were switched on, off or changed
            if unchanged and (state.status == "indexed" or (state.status == "failed" and not retry_failed)):
                report.videos_skipped += 1
            else:
                todo.append((f, st))
        return todo

    def _index_one(self, path: str, video_id: int, report: IndexReport, bar: tqdm, signature: str) -> int:
        s = self.settings
        source = open_video(path, s.decode.backends, s.decode.max_short_side)
        try:
            selector = KeyframeSelector(s.keyframes, s.shots, source.info.fps)
            kept: list[NewKeyframe] = []
            decoded = _Decoded()
            for batch in prefetch(self._keyframe_batches(source, selector, report, decoded)):
                images = [f.rgb for f in batch]
                t = time.perf_counter()
                vectors = self.clip.encode_images(images)
                report.stage_seconds["clip"] += time.perf_counter() - t
                text_boxes = self._analyze("ocr", self.ocr, images, report)
                persons = self._analyze("persons", self.persons, images, report)
                t = time.perf_counter()
                for frame, vec, boxes, people in zip(batch, vectors, text_boxes, persons):
                    kept.append(
                        NewKeyframe(
                            frame_idx=frame.idx,
                            timestamp=round(frame.timestamp, 4),
                            shot=selector.shot_of(frame.idx),  # renumbered below once all boundaries are known
                            jpeg=encode_thumbnail(frame.rgb, s.keyframes.thumbnail_width),
                            vector=vec,
                            text_boxes=boxes,
                            persons=people,
                        )
                    )
                report.stage_seconds["write"] += time.perf_counter() - t
                bar.set_postfix_str(f"{Path(path).name}: {decoded.frames} frames, {len(kept)} keyframes")
            info = source.info
            # A fade is reported once the picture is back, possibly after the frames that follow it
            # were kept: number the shots again now that every boundary is known.
            kept = [replace(kf, shot=selector.shot_of(kf.frame_idx)) for kf in kept]
            frame_s = 1 / (info.fps or 25)
            partial = None
            short = (decoded.frames < info.frame_count * (1 - PARTIAL_SHARE)
                     and decoded.last_timestamp < info.duration * (1 - PARTIAL_SHARE) - frame_s)
            if decoded.error or short:
                partial = {"frames_decoded": decoded.frames, "frames_expected": info.frame_count,
                           "error": decoded.error or "the file ends before the last frame its header lists"}
                note = f"indexed {decoded.frames} of {info.frame_count} frames: {partial['error']}"
                log.warning("%s: %s", path, note)
            # What was indexed ends with the last decoded frame when the file breaks off early.
            duration = decoded.last_timestamp + frame_s if partial else max(info.duration, decoded.last_timestamp)
            t = time.perf_counter()
            n = self.store.save_video(
                video_id,
                VideoInfo(
                    decoder=info.backend,
                    duration=duration,
                    fps=info.fps,
                    frame_count=decoded.frames,
                    width=info.width,
                    height=info.height,
                ),
                kept,
                analyzers=signature,
                partial=note if partial else None,
                shots=[NewShot(sh.start_frame, round(sh.start, 4), round(sh.end, 4)) for sh in selector.shots(duration)],
            )
            report.stage_seconds["write"] += time.perf_counter() - t
            report.frames_decoded += decoded.frames
            if partial:
                report.videos_partial.append({"path": path, **partial})
            return n
        finally:
            source.close()

    @staticmethod
    def _analyze(stage: str, analyzer, images: list, report: IndexReport) -> list:
        """Results of an optional analyzer, one per image (None everywhere when it is off)."""
        if analyzer is None or not images:
            return [None] * len(images)
        t = time.perf_counter()
        results = analyzer.analyze(images)
        report.stage_seconds[stage] += time.perf_counter() - t
        return results

    def _keyframe_batches(self, source: VideoSource, selector: KeyframeSelector, report: IndexReport,
                          decoded: _Decoded) -> Iterator[list[Frame]]:
        """Decode and select keyframes (runs in the prefetch thread); times both stages.

        Only keyframes leave this thread: every other frame is dropped here, right after the
        shot detector has seen it, so memory holds at most a few batches of frames."""
        batch: list[Frame] = []
        frames = source.frames()
        while True:
            t = time.perf_counter()
            try:
                frame = next(frames, None)
            except DecodeError as exc:
                if decoded.frames == 0:
                    raise  # nothing to index: the file fails
                frame, decoded.error = None, str(exc)  # keep what decoded before the break
            t2 = time.perf_counter()
            report.stage_seconds["decode"] += t2 - t
            done = frame is None
            if done:
                batch += selector.finish()
            else:
                decoded.frames += 1
                decoded.last_timestamp = frame.timestamp
                batch += selector.feed(frame)
            del frame  # not held while the next one decodes
            report.stage_seconds["keyframes"] += time.perf_counter() - t2
            size = self.settings.clip.batch_size
            while len(batch) >= size or (batch and done):
                yield batch[:size]
                batch = batch[size:]
            if done:
                return


def _machine_fault(exc: BaseException) -> bool:
    """A full, read-only or failing disk: the run must stop, the video is not to blame."""
    return isinstance(exc, DataDirError) or (isinstance(exc, OSError) and exc.errno in _MACHINE_ERRNOS)


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


def _warn_shared_video_ids(files: list[Path]) -> None:
    """Hits name videos by file stem (the id contest answers use): two files with one stem are
    indexed both, but their answers cannot be told apart."""
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for f in files:
        by_stem[f.stem].append(f)
    for stem, paths in by_stem.items():
        if len(paths) > 1:
            log.warning("video_id %r is shared by %d files (%s): rename them if you submit answers by video_id",
                        stem, len(paths), ", ".join(str(p) for p in paths))


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
