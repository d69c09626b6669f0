"""How far a run is: tqdm's bar on a terminal, and log lines (`ProgressLines`) where there is no
terminal to draw it on."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

from evr.storage.database import size_text

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


def progress_bar(todo: int, total_size: int | None, shown: bool | None) -> tqdm:
    """The bar of a run of `todo` tasks: by bytes when their sizes are known (`total_size`), else
    by tasks. `shown`: None shows it only on a terminal (tqdm's rule)."""
    hidden = None if shown is None else not shown
    if total_size is None:
        return tqdm(total=todo, unit="video", file=sys.stderr, disable=hidden)
    return tqdm(
        total=total_size,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"0/{todo} videos",
        file=sys.stderr,
        disable=hidden,
    )
