"""`evr index`: video files, a source of the run loop (indexer/run.py: plan -> work -> commit).

- plan (here): which files are new or changed since the last run;
- work (indexer/work.py): decode -> keyframes -> CLIP and analyzers, one video at a time, in
  this process or on Ray workers (indexer/runners/), returning a result per video;
- commit (here): the one writer saves each result as it comes back, whole or not at all
  (keyframes, vectors, analyses, thumbnails in one transaction).

The file's fault and the machine's are told apart: a file that cannot be decoded is recorded as
failed and the run goes on (a file that breaks off midway is indexed as far as it decodes, and
reported as partial); a disk that is full, read-only or failing stops the run, leaving the
videos in hand pending for the next run.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from evr.storage import PRIMARY_MODEL, ModelInfo, Plan, Store

from ..encoders import ClipEncoder
from ..report import RunReport
from ..runners import Runner, make_runner
from ..scan import find_videos
from ..settings import IndexSettings
from ..shots import settled
from ..work import VideoResult, VideoWorker, add_seconds, stages
from .base import Source
from .vectors import ModelVectors

log = logging.getLogger(__name__)


@dataclass
class VideoTask:
    """A file of the plan: `only` names the file analyzers to run alone on an indexed video
    (else (): index it); `video_id` is its row, once started."""

    path: Path
    stat: os.stat_result
    only: tuple[str, ...] = ()
    video_id: int | None = None


class VideoFiles(Source):
    """The video files under some paths: each new or changed one decoded, its keyframes chosen,
    CLIP and the analyzers run on them (indexer/work.py), in this process or on Ray workers."""

    command = "index"

    def __init__(
        self,
        settings: IndexSettings,
        paths: Sequence[Path],
        *,
        prune: bool = False,
        retry_failed: bool = False,
        clip: ClipEncoder | None = None,
        runner: Runner | None = None,
    ):
        self.settings = settings = settled(settings)
        self.paths = paths
        self.prune = prune
        self.retry_failed = retry_failed
        self.worker = VideoWorker(settings, clip)
        self.runner = runner  # None: as settings.run says (make_runner)
        self.files: list[Path] = []

    @property
    def stages(self) -> tuple[str, ...]:
        return stages()

    def followed_by(self) -> list[tuple[str, Source]]:
        # The kept keyframes get the vectors of [[models]] they lack (a model added since they
        # were indexed), by the encoders this run loaded.
        return [("embedded", ModelVectors(self.settings, self.worker.others))] if self.settings.models else []

    def before(self, store: Store, report: RunReport) -> None:
        self.files, unreadable = find_videos(self.paths, self.settings.run.extensions)
        report.videos_failed += [{"path": str(p), "error": why} for p, why in unreadable]
        if self.prune:
            report.videos_pruned = store.writes.prune()
            for p in report.videos_pruned:
                log.info("pruned %s (file is gone)", p)
        _warn_shared_video_ids(self.files)

    def models(self) -> dict[str, ModelInfo]:
        # Every keyframe indexed now gets a vector of every model.
        return {PRIMARY_MODEL: self.worker.clip.info, **{n: e.info for n, e in self.worker.others.items()}}

    def plan(self, store: Store, report: RunReport) -> list[VideoTask]:
        """The files that need work; counts the rest as skipped (or failed, when they vanished)."""
        plan = self.worker.plan() if self.files else None
        todo = []
        for f in self.files:
            try:
                st = f.stat()
            except OSError as exc:  # vanished or unreadable since the folder was scanned
                report.videos_failed.append({"path": str(f), "error": f"cannot read: {exc.strerror}"})
                continue
            state = store.catalog.video_state(str(f))
            unchanged = state is not None and (state.size, state.mtime_ns) == (st.st_size, st.st_mtime_ns)
            if unchanged and state.status == "indexed" and state.plan != plan:
                # Same file, but analyzers were switched on, off or changed: only the file
                # analyzers, when they are all that changed; else the whole video again.
                only = self._only_file_analyzers(state.plan, plan)
                if only:
                    todo.append(VideoTask(f, st, only, state.id))
                    continue
                unchanged = False
            if unchanged and (state.status == "indexed" or (state.status == "failed" and not self.retry_failed)):
                report.videos_skipped += 1
            else:
                todo.append(VideoTask(f, st))
        return todo

    def _only_file_analyzers(self, stored: Plan | None, plan: Plan) -> tuple[str, ...]:
        """The file analyzers to run alone on a video indexed under `stored`, when nothing else
        differs from `plan` (else (): the video is indexed again)."""
        files = set(self.worker.file_analyzers)

        def without_files(p: Plan) -> Plan:
            return replace(p, analyzers={k: v for k, v in p.analyzers.items() if k not in files})

        if stored is None or without_files(stored) != without_files(plan):
            return ()
        return tuple(
            name
            for name in self.worker.file_analyzers
            if name in plan.analyzers and stored.analyzers.get(name) != plan.analyzers[name]
        )

    def size(self, video: VideoTask) -> int:
        return max(1, video.stat.st_size)  # an empty file is work too (it fails)

    def work(
        self, store: Store, todo: list[VideoTask], note: Callable[[str], None]
    ) -> Iterator[tuple[VideoTask, VideoResult]]:
        """Keeps every worker busy; yields each video as it is done."""
        runner = self.runner or make_runner(self.settings, self.worker)
        with runner:
            if runner.slots != 1:  # several at a time (Ray's number is known once started)
                # The largest files first, so that the run ends on small ones (a long video
                # started last keeps one worker busy while the others wait).
                todo = sorted(todo, key=lambda v: v.stat.st_size, reverse=True)
            # Loads the models (missing weights stop the run up front); the videos submitted
            # first may be decoding meanwhile.
            runner.start(len(todo), [str(v.path) for v in todo[: runner.slots] if not v.only])
            waiting = deque(todo)
            in_flight: dict[str, VideoTask] = {}
            while waiting or in_flight:
                while waiting and len(in_flight) < runner.slots:
                    video = waiting.popleft()
                    # A video that only needs file analyzers keeps its keyframes and "indexed"
                    # state meanwhile: a crash leaves it as it was, and the next run does it.
                    if not video.only:
                        video.video_id = store.writes.start_video(
                            str(video.path), video.stat.st_size, video.stat.st_mtime_ns
                        )
                    in_flight[str(video.path)] = video
                    runner.submit(str(video.path), video.only)
                name = next(iter(in_flight.values())).path.name if runner.slots == 1 else f"{len(in_flight)} in work"
                note(name)
                result = runner.next_result(lambda where, name=name: note(f"{name}: {where}"))
                yield in_flight.pop(result.path), result

    def commit(self, store: Store, video: VideoTask, result: VideoResult, report: RunReport) -> None:
        add_seconds(report.stage_seconds, result.stage_seconds)
        if result.error is not None:
            log.error("%s: %s", result.path, result.error)
            if not result.only:  # file analyzers alone: the video stays as it was, the next run tries again
                store.writes.fail_video(video.video_id, result.error)
            report.videos_failed.append({"path": result.path, "error": result.error})
            return
        t = time.perf_counter()
        if result.only:  # file analyzers alone on an indexed video: stored beside its keyframes
            store.writes.save_analysis(video.video_id, result.plan, {}, result.analyses)
            report.videos_analyzed += 1
        else:
            report.keyframes_added += store.writes.save_video(
                video.video_id,
                result.info,
                result.keyframes,
                result.plan,
                partial=result.partial_note,
                shots=result.shots,
                video_analyses=result.analyses,
            )
            report.frames_decoded += result.frames_decoded
            report.videos_indexed += 1
            if result.partial:
                report.videos_partial.append({"path": result.path, **result.partial})
        report.stage_seconds["write"] += time.perf_counter() - t


def _warn_shared_video_ids(files: list[Path]) -> None:
    """Hits name videos by file stem (the id contest answers use): two files with one stem are
    indexed both, but their answers cannot be told apart."""
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for f in files:
        by_stem[f.stem].append(f)
    for stem, paths in by_stem.items():
        if len(paths) > 1:
            log.warning(
                "video_id %r is shared by %d files (%s): rename them if you submit answers by video_id",
                stem,
                len(paths),
                ", ".join(str(p) for p in paths),
            )
