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
from .streaming import StreamingRunner


def make_runner(settings: IndexSettings, worker: VideoWorker) -> Runner:
    """On Ray for a cluster or several Ray workers; else decode workers feeding this process's
    models, or all in this process for one decode worker."""
    run = settings.run
    if run.ray_address or run.workers > 1:
        return RayRunner(settings)
    if run.decoders > 1:
        return StreamingRunner(settings, worker, run.decoders)
    return InProcessRunner(worker)


__all__ = ["InProcessRunner", "RayRunner", "RayUnavailableError", "Runner", "StreamingRunner", "make_runner"]
