"""Where the work on each video runs: in the writer's process, with decode workers feeding it,
or on Ray workers (local or a cluster) that each run one of those two inside.

All run the same `indexer.work.VideoWorker` and hand its results to the one writer
(indexer/sources/files.py), which plans the run and commits each video.
"""

from __future__ import annotations

from ..settings import IndexSettings
from ..work import VideoWorker
from .base import Runner
from .inprocess import InProcessRunner
from .local import local_runner
from .ray_runner import RayRunner, RayUnavailableError
from .streaming import StreamingRunner


def make_runner(settings: IndexSettings, worker: VideoWorker) -> Runner:
    """On Ray for a cluster or several Ray workers; else this machine's pipeline (`local_runner`)
    around the writer's own models."""
    run = settings.run
    if run.ray_address or run.workers > 1:
        return RayRunner(settings)
    return local_runner(settings, worker, run.decoders)


__all__ = [
    "InProcessRunner",
    "RayRunner",
    "RayUnavailableError",
    "Runner",
    "StreamingRunner",
    "local_runner",
    "make_runner",
]
