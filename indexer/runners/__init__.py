"""Where the work on each video runs: in the writer's process, or on Ray (local or a cluster).

Both run the same `indexer.work.VideoWorker` and hand its results to the one writer
(indexer/pipeline.py), which plans the run and commits each video.
"""
from __future__ import annotations

from ..settings import IndexSettings
from ..work import VideoWorker
from .base import Runner
from .inprocess import InProcessRunner
from .ray_runner import RayRunner, RayUnavailableError


def make_runner(settings: IndexSettings, worker: VideoWorker) -> Runner:
    """In this process for one worker and no cluster; on Ray otherwise."""
    run = settings.run
    if run.ray_address or run.workers > 1:
        return RayRunner(settings)
    return InProcessRunner(worker)


__all__ = ["InProcessRunner", "RayRunner", "RayUnavailableError", "Runner", "make_runner"]
