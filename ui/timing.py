"""Where the app's time goes: each script run (the whole page, or one fragment: the grid, the
opened hit) logs one line at INFO on the logger `evr.app`, its parts in milliseconds and its wall
clock span, so a slow click can be split into the server's work and the browser's
(benchmarks/cockpit_latency.py reads these lines). `evr -v ui` shows them on stderr.

    with run_timer("page") as timer:
        with timer.part("search"):
            ...
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

log = logging.getLogger("evr.app")
_current = threading.local()  # each script run is a thread of its own; a fragment runs in its page's


class RunTimer:
    def __init__(self, name: str):
        self.name = name
        self.parts: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.started = time.time()

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.parts[name] = self.parts.get(name, 0.0) + (time.perf_counter() - t) * 1000

    def count(self, name: str) -> None:
        """Something that happened in this run (a search run: the tests count them)."""
        self.counts[name] = self.counts.get(name, 0) + 1

    def line(self, ended: float) -> str:
        parts = ", ".join(f"{k} {v:.0f}" for k, v in self.parts.items())
        counts = "".join(f"; {k} x{n}" for k, n in self.counts.items())
        return (
            f"run {self.name}: {(ended - self.started) * 1000:.0f} ms ({parts}){counts} "
            f"[{self.started:.3f} - {ended:.3f}]"
        )


@contextlib.contextmanager
def run_timer(name: str) -> Iterator[RunTimer]:
    """Time one script run (or fragment run); nested, the inner one is its own line."""
    outer = getattr(_current, "timer", None)
    timer = _current.timer = RunTimer(name)
    try:
        yield timer
    finally:
        _current.timer = outer
        log.info("%s", timer.line(time.time()))


def current() -> RunTimer:
    """The run being timed (a throwaway one outside any)."""
    return getattr(_current, "timer", None) or RunTimer("untimed")
