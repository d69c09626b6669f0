"""The one run loop of `evr index`, `evr import aic` and `evr analyze`: plan -> work -> commit.

A `Source` says what a run reads and does: which of its videos need work (plan), the work on
them (in this process or on workers; it yields each result as it is done) and how a result is
stored (commit). The loop is the same for every source:
- repair what an interrupted run left, make lost thumbnail folders again;
- plan; bind the store to the source's model before any work (another model is refused);
- commit each result as it comes back, whole or not at all, and checkpoint the vector index
  after each (it is saved when `[storage] checkpoint_s` has passed);
- build the vector index when the archive's size calls for another kind, and save it.
A machine fault (a disk that is full, read-only or failing) stops the run wherever it happens:
the report says why and how many videos are left pending for the next run. A video's own fault
(it cannot be decoded, a package file is malformed) is the source's to report, and the run goes
on.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from storage import ModelInfo, Store
from storage.database import size_text

from .settings import IndexSettings
from .thumbnails import restore_lost_thumbnails
from .work import machine_fault

log = logging.getLogger(__name__)

# The keys each command's `--json` report has (README.md documents them), in order.
REPORT_KEYS = {
    "index": ("videos_indexed", "videos_analyzed", "videos_skipped", "videos_failed", "videos_partial",
              "videos_pruned", "videos_pending", "thumbnails_restored", "stopped", "keyframes_added",
              "frames_decoded", "seconds", "stage_seconds", "embedded"),
    "import": ("videos_imported", "videos_skipped", "videos_failed", "warnings", "videos_pending",
               "thumbnails_restored", "stopped", "keyframes_added", "seconds", "analyzed"),
    "analyze": ("videos_analyzed", "videos_skipped", "videos_failed", "videos_pending", "thumbnails_restored",
                "stopped", "keyframes_analyzed", "seconds", "stage_seconds", "embedded"),
    # The other models' vectors added to kept keyframes (indexer/embed.py), after an index or analyze run.
    "embed": ("videos_embedded", "videos_failed", "videos_pending", "stopped", "vectors_added", "seconds",
              "stage_seconds"),
}


@dataclass
class RunReport:
    """What a run did. `command` picks the keys its JSON has (REPORT_KEYS)."""

    command: str
    stages: tuple[str, ...] = ()  # the stages `stage_seconds` shows, in order
    videos_indexed: int = 0
    videos_imported: int = 0
    # `evr analyze`: videos analyzed; `evr index`: indexed videos on which only the file
    # analyzers (speech) ran, their keyframes kept.
    videos_analyzed: int = 0
    videos_skipped: int = 0  # nothing to do: unchanged since they were done
    videos_failed: list[dict] = field(default_factory=list)  # {"path" or "video_id", "error"}
    # Indexed as far as they decode: {"path", "frames_decoded", "frames_expected", "error"}
    videos_partial: list[dict] = field(default_factory=list)
    videos_pruned: list[str] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)  # {"video_id", "warning"}: done all the same
    videos_pending: int = 0  # left for the next run, when this one stopped
    thumbnails_restored: int = 0  # indexed videos whose lost thumbnail folder was made again
    stopped: str | None = None  # why the run stopped before the end (a failing disk)
    keyframes_added: int = 0
    keyframes_analyzed: int = 0
    videos_embedded: int = 0  # videos whose keyframes got other models' vectors
    vectors_added: dict[str, int] = field(default_factory=dict)  # by model name
    frames_decoded: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    analyzed: RunReport | None = None  # `evr import aic --analyze`: the analysis run after
    embedded: RunReport | None = None  # the other models' vectors added after the run (indexer/embed.py)

    def to_json(self) -> dict:
        shown = {"seconds": round(self.seconds, 3),
                 "stage_seconds": {k: round(self.stage_seconds.get(k, 0.0), 3) for k in self.stages},
                 "analyzed": self.analyzed.to_json() if self.analyzed else None,
                 "embedded": self.embedded.to_json() if self.embedded else None}
        return {key: shown[key] if key in shown else getattr(self, key) for key in REPORT_KEYS[self.command]}


class Source(ABC):
    """What a run reads (video files, an AI Challenge package, imported keyframes) and how its
    work is done and stored."""

    command: str  # "index", "import" or "analyze": its report's keys
    stages: tuple[str, ...] = ()  # the stages its work is timed in

    def before(self, store: Store, report: RunReport) -> None:
        """Anything to do before planning (`evr index --prune`)."""

    @abstractmethod
    def plan(self, store: Store, report: RunReport) -> list:
        """The tasks that need work; the ones that do not are counted in `report` (skipped, or
        failed before any work)."""

    def models(self) -> dict[str, ModelInfo]:
        """The image-text models the store must be bound to before any work, by name ("clip":
        [clip]'s); none: the vectors stay."""
        return {}

    def size(self, task: Any) -> int | None:
        """The task's share of the work, in bytes of its file, for the time left; None: unknown
        (every task counts the same)."""
        return None

    @abstractmethod
    def work(self, store: Store, todo: list, note: Callable[[str], None]) -> Iterator[tuple[Any, Any]]:
        """(task, result) for each task of `todo`, as each is done, in any order. Models load
        before the first result (missing weights raise then, before anything is stored);
        `note` shows where the work is in the progress bar."""

    @abstractmethod
    def commit(self, store: Store, task: Any, result: Any, report: RunReport) -> None:
        """Store one result, whole or not at all (or record its failure), and count it."""


def run(store: Store, settings: IndexSettings, source: Source, progress: bool | None = None) -> RunReport:
    """Plan, work and commit `source` into `store`. `progress`: None shows the bar only on a
    terminal (tqdm's rule)."""
    started = time.perf_counter()
    report = RunReport(source.command, source.stages)
    try:
        repaired = store.health.repair()
        if repaired.changed:
            log.warning("recovered from an interrupted run: %s", repaired)
        source.before(store, report)
        report.thumbnails_restored = restore_lost_thumbnails(store, settings)
        todo = source.plan(store, report)
        report.videos_pending = len(todo)
        if todo:
            store.bind_models(source.models())
            _work_and_commit(store, source, todo, progress, report)
        t = time.perf_counter()
        for mirror in store.mirrors():
            mirror.build()  # when the archive's size or [vectors] kind calls for another index
            mirror.flush()
        report.stage_seconds["write"] += time.perf_counter() - t
    except Exception as exc:
        if not machine_fault(exc):
            raise
        # The machine failed, not a video: stop here; what is not committed stays pending.
        report.stopped = str(exc)
        log.debug("details", exc_info=True)
    report.seconds = time.perf_counter() - started
    return report


def _work_and_commit(store: Store, source: Source, todo: list, progress: bool | None, report: RunReport) -> None:
    sizes = [source.size(task) for task in todo]
    # The time left follows the bytes done where the tasks are files: videos are handed out
    # largest first, so counting videos would overestimate it at the start.
    total_size = None if None in sizes else sum(sizes)
    hidden = None if progress is None else not progress  # None: tqdm shows the bar only on a terminal
    if total_size is None:
        bar = tqdm(total=len(todo), unit="video", file=sys.stderr, disable=hidden)
    else:
        bar = tqdm(total=total_size, unit="B", unit_scale=True, unit_divisor=1024, desc=f"0/{len(todo)} videos",
                   file=sys.stderr, disable=hidden)
    # No terminal for the bar: log lines instead.
    lines = ProgressLines(len(todo), total_size) if bar.disable and progress is None else None
    done, started = 0, time.time()
    store.facts.record_run(source.command, len(todo), 0, started)  # readers show how far the run is
    # closing: a commit that fails stops the work at once (its workers shut down), not when the
    # generator is collected.
    with bar, contextlib.closing(source.work(store, todo, lambda where: bar.set_postfix_str(where))) as results:
        for task, result in results:
            source.commit(store, task, result, report)
            report.videos_pending -= 1  # done with, whether it succeeded or failed
            done += 1
            size = 1 if total_size is None else source.size(task)
            if total_size is not None:
                bar.set_description_str(f"{done}/{len(todo)} videos", refresh=False)
            bar.update(size)
            if lines is not None:
                lines.update(size)
            t = time.perf_counter()
            store.facts.record_run(source.command, len(todo), done, started)
            for mirror in store.mirrors():
                mirror.checkpoint()
            report.stage_seconds["write"] += time.perf_counter() - t


progress_log = logging.getLogger("evr.progress")  # the edges show it at their default verbosity
EARLIEST_ESTIMATE = 0.05  # of the work done (bytes, or videos), before the time left is estimated


class ProgressLines:
    """The progress bar's news as log lines, where there is no terminal to draw the bar on (a
    log file, a pipe): every tenth of the videos, or a minute, whichever comes first. The time
    left is estimated from the bytes done when `total_size` is given, else from the videos."""

    def __init__(self, total: int, total_size: int | None = None, every_s: float = 60.0):
        self.total, self.total_size, self.every_s = total, total_size, every_s
        self.done = self.size_done = 0
        self.started = self.said = time.monotonic()
        self.step = max(1, total // 10)

    def update(self, size: int = 1) -> None:
        self.done += 1
        self.size_done += size
        now = time.monotonic()
        if self.done % self.step and now - self.said < self.every_s and self.done < self.total:
            return
        self.said = now
        spent = now - self.started
        if self.total_size is None:
            fraction = self.done / self.total
            share = f"{100 * self.done // self.total}%"
        else:
            fraction = self.size_done / self.total_size if self.total_size else 1.0
            share = f"{size_text(self.size_done)} of {size_text(self.total_size)}, {int(100 * fraction)}%"
        # The first minutes hold the models' loading: from a few small files done they would
        # extrapolate to hours.
        if fraction < EARLIEST_ESTIMATE and self.done < self.total:
            left = "the time left is not known yet"
        else:
            left = f"about {_minutes(spent / fraction * (1 - fraction))} left"
        progress_log.info("indexed %d of %d videos (%s) in %s; %s", self.done, self.total, share, _minutes(spent), left)


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
