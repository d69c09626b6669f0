"""The work on each video in the writer's own process, one video at a time (the default)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..work import VideoResult, VideoWorker
from .base import Runner


class InProcessRunner(Runner):
    slots = 1

    def __init__(self, worker: VideoWorker):
        self.worker = worker
        self._job: tuple[str, tuple[str, ...]] | None = None

    def start(self, videos: int, first: Sequence[str] = ()) -> None:
        self.worker.load()

    def submit(self, path: str, only: tuple[str, ...] = ()) -> None:
        self._job = (path, only)

    def next_result(self, on_progress: Callable[[str], None] | None = None) -> VideoResult:
        (path, only), self._job = self._job, None
        return self.worker.index_video(path, on_progress, only)

    def close(self) -> None:
        """The models stay loaded: the caller's encoder may serve other uses (searches)."""
