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
import time

from evr.storage import Store

from .progress import ProgressLines, progress_bar
from .report import RunReport
from .settings import IndexSettings
from .sources.base import Source
from .thumbnails import restore_lost_thumbnails
from .work import machine_fault

log = logging.getLogger(__name__)


def run(store: Store, settings: IndexSettings, source: Source, progress: bool | None = None) -> RunReport:
    """Plan, work and commit `source` into `store`. `progress`: None shows the bar only on a
    terminal (tqdm's rule)."""
    started = time.perf_counter()
    report = RunReport(source.command, source.stages)  # read now: features registered since import count
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
    if report.stopped is None:
        for field, follower in source.followed_by():
            setattr(report, field, run(store, settings, follower, progress))
    return report


def rebuild(store: Store, settings: IndexSettings) -> dict:
    """`evr reindex`: every model's vector index built anew from SQLite, as `[vectors]` says, and
    lost thumbnails made again; returns the index's stats after."""
    for mirror in store.mirrors():  # every model's
        mirror.build(force=True)
    restore_lost_thumbnails(store, settings)
    return store.health.stats()


def _work_and_commit(store: Store, source: Source, todo: list, progress: bool | None, report: RunReport) -> None:
    sizes = [source.size(task) for task in todo]
    # The time left follows the bytes done where the tasks are files: videos are handed out
    # largest first, so counting videos would overestimate it at the start.
    total_size = None if None in sizes else sum(sizes)
    bar = progress_bar(len(todo), total_size, progress)
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
