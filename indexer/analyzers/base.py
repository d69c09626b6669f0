"""The contract every frame analyzer keeps (OCR, persons, ...): see `Analyzer`."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ..settings import IndexSettings


class Analyzer(ABC):
    """Turns a batch of keyframe images into one kind of stored signal.

    Built from the run's settings and cheap until `load()`; `analyze` gives one result per
    image. `name` keys its results (`NewKeyframe.analyses`) and its storage
    (`storage.ANALYSES`); `signature` says what the results depend on (backend, languages), so
    a video analyzed under another signature is analyzed again."""

    name: str

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: IndexSettings) -> Analyzer | None:
        """The analyzer these settings ask for, or None when they switch it off."""

    @property
    @abstractmethod
    def signature(self) -> str:
        """e.g. "ocr:tesseract:vi+en"; "" when it cannot run at all (no model for any language)."""

    @abstractmethod
    def load(self) -> None:
        """Load the models now (missing weights raise ModelUnavailableError before any work)."""

    def close(self) -> None:
        """Let go of the models (a worker that is done)."""

    @abstractmethod
    def analyze(self, images: list[np.ndarray]) -> list[Any]:
        """One result per RGB image, in order."""
