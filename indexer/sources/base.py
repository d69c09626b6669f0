"""What every source of a run is: a `Source` says what a run reads and does; the run loop
(indexer/run.py) is the same for all of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

from evr.storage import ModelInfo, Store

from ..report import RunReport


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

    def followed_by(self) -> list[tuple[str, Source]]:
        """The runs to make after this one, when it was not stopped: (the report field that
        holds each one's report, its source). `evr index` gives the kept keyframes the other
        models' vectors they lack, for one."""
        return []
