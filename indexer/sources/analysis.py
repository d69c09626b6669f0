"""`evr analyze`: OCR, persons and speech on videos that were imported rather than decoded, and
captions on any video.

An imported keyframe (indexer/sources/aic.py) keeps the path of the package's full-size image, so the
frame analyzers read that image: no video is decoded. A decoded video's keyframes are read from
their thumbnails, by the analyzers whose results those are good enough for (`reads_thumbnails`:
captions); the others run on it when `evr index` decodes it. The speech analyzer reads the sound of
the package's video file, where the package has one (a video without one is skipped by it).
A video's plan (`Plan.analyzers`: {"ocr": "tesseract+craft:vi+en", "persons": "mediapipe"})
says which analyzers ran; an enabled analyzer whose signature is missing there or different
runs again, one video per commit (the run loop is indexer/run.py).
A missing or unreadable image (or video file) fails that video's analysis (reported); its
keyframes and vectors stay as imported.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from evr.storage import ImportedVideo, Store
from evr.storage.features import ANALYZER_PATHS

from ..analyzers import FileAnalyzer, FrameAnalyzer, enabled_analyzers
from ..report import RunReport
from ..settings import IndexSettings
from ..thumbnails import read_rgb
from ..work import add_seconds
from .base import Source
from .vectors import ModelVectors

log = logging.getLogger(__name__)

BATCH = 16  # images read and analyzed at a time


@dataclass
class _Analysis:
    """One video's results: {"ocr": {keyframe id: boxes}, ...} from the frame analyzers,
    {"speech": segments} from the file analyzers, and the time each stage took."""

    by_keyframe: dict[str, dict]
    by_file: dict[str, object]
    stage_seconds: dict[str, float]


class KeyframeAnalysis(Source):
    """Runs the analyzers the settings enable on the imported keyframes of `store` (the run
    loop is indexer/run.py)."""

    command = "analyze"

    def __init__(self, settings: IndexSettings, video_ids: list[str] | tuple[str, ...] = ()):
        self.settings = settings
        self.analyzers = enabled_analyzers(settings)
        self.video_ids = tuple(video_ids)  # none: every imported video

    @property
    def stages(self) -> tuple[str, ...]:
        return ("read", *ANALYZER_PATHS, "write")  # read when the run starts

    def followed_by(self) -> list[tuple[str, Source]]:
        # Every kept keyframe gets the vectors of [[models]] it lacks (sources/vectors.py).
        return [("embedded", ModelVectors(self.settings))] if self.settings.models else []

    def plan(self, store: Store, report: RunReport) -> list[tuple[ImportedVideo, list[str]]]:
        todo = []
        for video in store.catalog.imported_videos(self.video_ids, decoded=True):
            done = video.plan.analyzers
            # An analyzer with no signature cannot run here (OCR without any language's model),
            # nor speech on a package without the video file.
            # A package's own results (its objects: signature "aic:...") are kept as they came.
            needed = [
                name
                for name, a in self.analyzers.items()
                if a.signature
                and done.get(name) != a.signature
                and not (done.get(name) or "").startswith("aic:")
                and (video.media_path or not isinstance(a, FileAnalyzer))
                and (not video.thumbnails or (isinstance(a, FrameAnalyzer) and a.reads_thumbnails))
            ]
            if needed:
                todo.append((video, needed))
            else:
                report.videos_skipped += 1
        return todo

    def work(self, store: Store, todo: list, note) -> Iterator[tuple[tuple, _Analysis | ValueError]]:
        for name in {n for _, needed in todo for n in needed}:
            self.analyzers[name].load()  # missing weights stop here, before any work
        for video, needed in todo:
            note(video.video_id)
            try:
                yield (video, needed), self._analyze(video, needed)
            except ValueError as exc:  # a missing or damaged image or video file: that video fails
                yield (video, needed), exc

    def commit(self, store: Store, task: tuple, result: _Analysis | ValueError, report: RunReport) -> None:
        video, needed = task
        if isinstance(result, ValueError):
            log.error("%s: %s", video.video_id, result)
            report.videos_failed.append({"video_id": video.video_id, "error": str(result)})
            return
        add_seconds(report.stage_seconds, result.stage_seconds)
        t = time.perf_counter()
        plan = video.plan.with_analyzers({n: self.analyzers[n].signature for n in needed})
        store.writes.save_analysis(video.id, plan, result.by_keyframe, result.by_file)
        report.stage_seconds["write"] += time.perf_counter() - t
        report.videos_analyzed += 1
        report.keyframes_analyzed += len(video.keyframes)

    def _analyze(self, video: ImportedVideo, needed: list[str]) -> _Analysis:
        files = [name for name in needed if isinstance(self.analyzers[name], FileAnalyzer)]
        needed = [name for name in needed if name not in files]
        seconds: dict[str, float] = defaultdict(float)
        by_file = {}
        if files and not Path(video.media_path).is_file():
            raise ValueError(f"the video file {video.media_path} is missing (moved or deleted)")
        for name in files:
            t = time.perf_counter()
            by_file[name] = self.analyzers[name].analyze_file(video.media_path)
            seconds[name] += time.perf_counter() - t
        results: dict[str, dict] = {name: {} for name in needed}
        for start in range(0, len(video.keyframes), BATCH):
            batch = video.keyframes[start : start + BATCH]
            t = time.perf_counter()
            images = [read_rgb(k.path) for k in batch]
            seconds["read"] += time.perf_counter() - t
            for name in needed:
                t = time.perf_counter()
                for k, result in zip(batch, self.analyzers[name].analyze(images)):
                    results[name][k.keyframe_id] = result
                seconds[name] += time.perf_counter() - t
        return _Analysis(results, by_file, seconds)
