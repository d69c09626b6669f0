"""The pipeline of one machine, or of one Ray worker (indexer/runners/ray_runner.py)."""

from __future__ import annotations

from ..settings import IndexSettings
from ..work import VideoWorker
from .base import Runner
from .inprocess import InProcessRunner
from .streaming import StreamingRunner


def local_runner(settings: IndexSettings, worker: VideoWorker, decode_workers: int) -> Runner:
    """Decode workers feeding `worker`'s models in this process, or, for one decode worker,
    one video at a time beside them."""
    if decode_workers > 1:
        return StreamingRunner(settings, worker, decode_workers)
    return InProcessRunner(worker)
