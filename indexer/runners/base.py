"""What every runner does: take videos, give back their results as they finish."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from ..work import VideoResult


class Runner(ABC):
    """Runs `VideoWorker.index_video` on up to `slots` videos at a time, somewhere.

    The writer submits at most `slots` videos before it takes a result back; `next_result`
    blocks until one is done, in whatever order they finish. A worker that dies is replaced
    and its video redone (runners that have workers to lose)."""

    slots: int = 1

    @abstractmethod
    def start(self, videos: int, first: Sequence[str] = ()) -> None:
        """Start the workers (no more than `videos`) and load their models: missing weights
        raise here. `first`: the videos the writer submits next, in that order (at most
        `slots`); a runner may begin decoding them while its models load."""

    @abstractmethod
    def submit(self, path: str, only: tuple[str, ...] = ()) -> None:
        """Hand one video to a free worker (`only`: just these file analyzers, see
        VideoWorker.index_video)."""

    @abstractmethod
    def next_result(self, on_progress: Callable[[str], None] | None = None) -> VideoResult:
        """The next finished video (`on_progress` hears about the work where it can)."""

    @abstractmethod
    def close(self) -> None:
        """Stop the workers."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
