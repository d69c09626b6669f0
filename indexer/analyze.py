"""`evr analyze`: OCR, persons and speech on videos that were imported rather than decoded.

An imported keyframe (indexer/aic.py) keeps the path of the package's full-size image, so the
frame analyzers read that image: no video is decoded. The speech analyzer reads the sound of
the package's video file, where the package has one (a video without one is skipped by it).
A video's plan (`Plan.analyzers`: {"ocr": "tesseract+craft:vi+en", "persons": "mediapipe"})
says which analyzers ran; an enabled analyzer whose signature is missing there or different
runs again, one video per commit.
A missing or unreadable image (or video file) fails that video's analysis (reported); its
keyframes and vectors stay as imported.
"""
from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from storage import ImportedVideo, Store

from storage.features import ANALYZER_PATHS

from .analyzers import FileAnalyzer, enabled_analyzers
from .settings import IndexSettings

log = logging.getLogger(__name__)

BATCH = 16  # images read and analyzed at a time


@dataclass
class AnalyzeReport:
    videos_analyzed: int = 0
    videos_skipped: int = 0  # every enabled analyzer ran on them already
    videos_failed: list[dict] = field(default_factory=list)  # {"video_id", "error"}
    keyframes_analyzed: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def to_json(self) -> dict:
        return {
            "videos_analyzed": self.videos_analyzed,
            "videos_skipped": self.videos_skipped,
            "videos_failed": self.videos_failed,
            "keyframes_analyzed": self.keyframes_analyzed,
            "seconds": round(self.seconds, 3),
            "stage_seconds": {k: round(self.stage_seconds.get(k, 0.0), 3) for k in ("read", *ANALYZER_PATHS, "write")},
        }


class KeyframeAnalysis:
    """Runs the analyzers the settings enable on the imported keyframes of `store`."""

    def __init__(self, store: Store, settings: IndexSettings):
        self.store = store
        self.analyzers = enabled_analyzers(settings)

    def run(self, video_ids: list[str] | tuple[str, ...] = (), progress: bool | None = None) -> AnalyzeReport:
        started = time.perf_counter()
        report = AnalyzeReport()
        todo = []
        for video in self.store.catalog.imported_videos(video_ids):
            done = video.plan.analyzers
            # An analyzer with no signature cannot run here (OCR without any language's model),
            # nor speech on a package without the video file.
            needed = [name for name, a in self.analyzers.items() if a.signature and done.get(name) != a.signature
                      and (video.media_path or not isinstance(a, FileAnalyzer))]
            if needed:
                todo.append((video, needed))
            else:
                report.videos_skipped += 1
        if todo:
            for name in {n for _, needed in todo for n in needed}:
                self.analyzers[name].load()  # missing weights stop here, before any work
        bar = tqdm(todo, unit="video", file=sys.stderr, disable=None if progress is None else not progress)
        for video, needed in bar:
            bar.set_postfix_str(video.video_id, refresh=False)
            try:
                results, by_file = self._analyze(video, needed, report)
            except ValueError as exc:
                log.error("%s: %s", video.video_id, exc)
                report.videos_failed.append({"video_id": video.video_id, "error": str(exc)})
                continue
            t = time.perf_counter()
            plan = video.plan.with_analyzers({n: self.analyzers[n].signature for n in needed})
            self.store.writes.save_analysis(video.id, plan, results, by_file)
            report.stage_seconds["write"] += time.perf_counter() - t
            report.videos_analyzed += 1
            report.keyframes_analyzed += len(video.keyframes)
        bar.close()
        report.seconds = time.perf_counter() - started
        return report

    def _analyze(self, video: ImportedVideo, needed: list[str], report: AnalyzeReport) -> tuple[dict, dict]:
        """({"ocr": {keyframe id: boxes}, "persons": {keyframe id: persons}}, {"speech": segments})
        for the needed analyzers."""
        files = [name for name in needed if isinstance(self.analyzers[name], FileAnalyzer)]
        needed = [name for name in needed if name not in files]
        by_file = {}
        if files and not Path(video.media_path).is_file():
            raise ValueError(f"the video file {video.media_path} is missing (moved or deleted)")
        for name in files:
            t = time.perf_counter()
            by_file[name] = self.analyzers[name].analyze_file(video.media_path)
            report.stage_seconds[name] += time.perf_counter() - t
        results: dict[str, dict] = {name: {} for name in needed}
        for start in range(0, len(video.keyframes), BATCH):
            batch = video.keyframes[start : start + BATCH]
            t = time.perf_counter()
            images = [_read_rgb(k.path) for k in batch]
            report.stage_seconds["read"] += time.perf_counter() - t
            for name in needed:
                t = time.perf_counter()
                for k, result in zip(batch, self.analyzers[name].analyze(images)):
                    results[name][k.keyframe_id] = result
                report.stage_seconds[name] += time.perf_counter() - t
        return results, by_file


def _read_rgb(path: str | None) -> np.ndarray:
    if path is None:
        raise ValueError("a keyframe has no source image (it was not imported)")
    try:  # read here, not by cv2.imread: a name that is not UTF-8 would crash OpenCV
        data = Path(path).read_bytes()
    except OSError:
        data = b""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if bgr is None:
        raise ValueError(f"cannot read the keyframe image {path} (moved, deleted or damaged)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)
