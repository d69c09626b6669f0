"""The index run: plan -> work -> commit.

- plan (here): which files are new or changed since the last run, and the store's repair;
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
import sys
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from storage import DataDirError, Plan, Store

from .encoders import ClipEncoder
from .runners import Runner, make_runner
from .scan import find_videos
from .settings import IndexSettings
from .thumbnails import restore_lost_thumbnails
from .work import STAGES, VideoResult, VideoWorker, machine_fault

log = logging.getLogger(__name__)


@dataclass
class IndexReport:
    videos_indexed: int = 0
    # Indexed videos on which only file analyzers ran (speech switched on): keyframes kept.
    videos_analyzed: int = 0
    videos_skipped: int = 0
    videos_failed: list[dict] = field(default_factory=list)  # {"path", "error"}
    # Indexed as far as they decode: {"path", "frames_decoded", "frames_expected", "error"}
    videos_partial: list[dict] = field(default_factory=list)
    videos_pruned: list[str] = field(default_factory=list)
    videos_pending: int = 0  # left for the next run, when this one stopped
    thumbnails_restored: int = 0  # indexed videos whose lost thumbnail folder was made again
    stopped: str | None = None  # why the run stopped before the end (a failing disk)
    keyframes_added: int = 0
    frames_decoded: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def to_json(self) -> dict:
        return {
            "videos_indexed": self.videos_indexed,
            "videos_analyzed": self.videos_analyzed,
            "videos_skipped": self.videos_skipped,
            "videos_failed": self.videos_failed,
            "videos_partial": self.videos_partial,
            "videos_pruned": self.videos_pruned,
            "videos_pending": self.videos_pending,
            "thumbnails_restored": self.thumbnails_restored,
            "stopped": self.stopped,
            "keyframes_added": self.keyframes_added,
            "frames_decoded": self.frames_decoded,
            "seconds": round(self.seconds, 3),
            "stage_seconds": {k: round(self.stage_seconds.get(k, 0.0), 3) for k in STAGES},
        }


class Indexer:
    def __init__(self, store: Store, settings: IndexSettings, clip: ClipEncoder | None = None,
                 runner: Runner | None = None):
        self.store = store
        self.settings = settings
        self.worker = VideoWorker(settings, clip)
        self.clip = self.worker.clip
        self.runner = runner  # None: as settings.run says (make_runner)

    def plan(self) -> Plan:
        return self.worker.plan()

    def rebuild(self) -> dict:
        """`evr reindex`: the vector index built anew from SQLite, as `[vectors]` says, and lost
        thumbnails made again; returns the index's stats after."""
        self.store.vectors.build(force=True)
        restore_lost_thumbnails(self.store, self.settings)
        return self.store.health.stats()

    def run(
        self,
        paths: Sequence[Path],
        *,
        prune: bool = False,
        retry_failed: bool = False,
        progress: bool | None = None,
    ) -> IndexReport:
        started = time.perf_counter()
        report = IndexReport()
        files, unreadable = find_videos(paths, self.settings.run.extensions)
        report.videos_failed += [{"path": str(p), "error": why} for p, why in unreadable]
        try:
            self._run(files, prune, retry_failed, progress, report)
        except (DataDirError, OSError) as exc:
            if not machine_fault(exc):
                raise
            if report.stopped is None:  # in repair, prune, model binding or the final save
                report.stopped = str(exc)
        report.seconds = time.perf_counter() - started
        return report

    def _run(self, files: list[Path], prune: bool, retry_failed: bool, progress: bool | None,
             report: IndexReport) -> None:
        repaired = self.store.health.repair()
        if repaired.changed:
            log.warning("recovered from an interrupted run: %s", repaired)
        if prune:
            report.videos_pruned = self.store.writes.prune()
            for p in report.videos_pruned:
                log.info("pruned %s (file is gone)", p)
        report.thumbnails_restored = restore_lost_thumbnails(self.store, self.settings)
        _warn_shared_video_ids(files)
        plan = self.plan() if files else None
        todo = self._plan(files, plan, retry_failed, report)
        report.videos_pending = len(todo)
        if todo:
            self.store.bind_model(self.clip.info)  # refuses another model before any work
            runner = self.runner or make_runner(self.settings, self.worker)
            with runner:
                runner.start(len(todo))  # loads the models: missing weights stop the run up front
                self._work_and_commit(runner, todo, progress, report)
        t = time.perf_counter()
        self.store.vectors.build()  # when the archive's size or [vectors] kind calls for another index
        self.store.vectors.flush()
        report.stage_seconds["write"] += time.perf_counter() - t

    def _work_and_commit(self, runner: Runner, todo: list, progress: bool | None, report: IndexReport) -> None:
        """Keep every worker busy, and commit each result as it comes back."""
        # progress=None: show the bar only on a terminal (tqdm's rule).
        bar = tqdm(total=len(todo), unit="video", file=sys.stderr, disable=None if progress is None else not progress)
        waiting = deque(todo)
        in_flight: dict[str, int] = {}  # path -> video id
        try:
            while waiting or in_flight:
                while waiting and len(in_flight) < runner.slots:
                    f, st, only, video_id = waiting.popleft()
                    # A video that only needs file analyzers keeps its keyframes and "indexed"
                    # state meanwhile: a crash leaves it as it was, and the next run does it.
                    if not only:
                        video_id = self.store.writes.start_video(str(f), st.st_size, st.st_mtime_ns)
                    in_flight[str(f)] = video_id
                    runner.submit(str(f), only)
                name = Path(next(iter(in_flight))).name if runner.slots == 1 else f"{len(in_flight)} in work"
                bar.set_postfix_str(name, refresh=False)
                result = runner.next_result(lambda note: bar.set_postfix_str(f"{name}: {note}"))
                self._commit(in_flight.pop(result.path), result, report)
                report.videos_pending -= 1  # indexed or failed: either way done with
                bar.update()
                t = time.perf_counter()
                self.store.vectors.checkpoint()
                report.stage_seconds["write"] += time.perf_counter() - t
        except Exception as exc:
            if not machine_fault(exc):
                raise
            # The machine failed, not the file: stop here, the videos in hand stay pending.
            report.stopped = f"stopped at {', '.join(in_flight) or 'the end'}: {exc}"  # the caller says it
            log.debug("details", exc_info=True)
        finally:
            bar.close()

    def _commit(self, video_id: int, result: VideoResult, report: IndexReport) -> None:
        for stage, seconds in result.stage_seconds.items():
            report.stage_seconds[stage] += seconds
        if result.only:
            self._commit_analyses(video_id, result, report)
            return
        if result.error is not None:
            log.error("%s: %s", result.path, result.error)
            self.store.writes.fail_video(video_id, result.error)
            report.videos_failed.append({"path": result.path, "error": result.error})
            return
        t = time.perf_counter()
        report.keyframes_added += self.store.writes.save_video(
            video_id, result.info, result.keyframes, result.plan, partial=result.partial_note, shots=result.shots,
            video_analyses=result.analyses)
        report.stage_seconds["write"] += time.perf_counter() - t
        report.frames_decoded += result.frames_decoded
        report.videos_indexed += 1
        if result.partial:
            report.videos_partial.append({"path": result.path, **result.partial})

    def _commit_analyses(self, video_id: int, result: VideoResult, report: IndexReport) -> None:
        """File analyzers alone on an indexed video: a failure leaves the video as it was (the
        next run tries again), a result is stored beside its keyframes."""
        if result.error is not None:
            log.error("%s: %s", result.path, result.error)
            report.videos_failed.append({"path": result.path, "error": result.error})
            return
        t = time.perf_counter()
        self.store.writes.save_analysis(video_id, result.plan, {}, result.analyses)
        report.stage_seconds["write"] += time.perf_counter() - t
        report.videos_analyzed += 1

    def _only_file_analyzers(self, stored: Plan | None, plan: Plan) -> tuple[str, ...]:
        """The file analyzers to run alone on a video indexed under `stored`, when nothing else
        differs from `plan` (else (): the video is indexed again)."""
        files = set(self.worker.file_analyzers)

        def without_files(p: Plan) -> Plan:
            return replace(p, analyzers={k: v for k, v in p.analyzers.items() if k not in files})

        if stored is None or without_files(stored) != without_files(plan):
            return ()
        return tuple(name for name in self.worker.file_analyzers
                     if name in plan.analyzers and stored.analyzers.get(name) != plan.analyzers[name])

    def _plan(self, files: list[Path], plan: Plan | None, retry_failed: bool, report: IndexReport) -> list:
        """(file, stat, only, video id) of the files that need work; counts the rest as skipped.
        `only` names the file analyzers to run alone on an indexed video (else (): index it)."""
        todo = []
        for f in files:
            try:
                st = f.stat()
            except OSError as exc:  # vanished or unreadable since the folder was scanned
                report.videos_failed.append({"path": str(f), "error": f"cannot read: {exc.strerror}"})
                continue
            state = self.store.catalog.video_state(str(f))
            unchanged = state is not None and (state.size, state.mtime_ns) == (st.st_size, st.st_mtime_ns)
            if unchanged and state.status == "indexed" and state.plan != plan:
                # Same file, but analyzers were switched on, off or changed: only the file
                # analyzers, when they are all that changed; else the whole video again.
                only = self._only_file_analyzers(state.plan, plan)
                if only:
                    todo.append((f, st, only, state.id))
                    continue
                unchanged = False
            if unchanged and (state.status == "indexed" or (state.status == "failed" and not retry_failed)):
                report.videos_skipped += 1
            else:
                todo.append((f, st, (), None))
        return todo


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
