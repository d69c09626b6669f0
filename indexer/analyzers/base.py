"""The contract every analyzer keeps (OCR, persons, speech, ...): see `Analyzer`, and its two
kinds: `FrameAnalyzer` reads keyframe images, `FileAnalyzer` reads the video file itself."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ..settings import IndexSettings


class Analyzer(ABC):
    """Turns what it reads into one kind of stored signal.

    Built from the run's settings and cheap until `load()`. `name` keys its results and their
    storage (the feature's, storage/features/); `signature` says what the results depend on
    (backend, languages: "tesseract+craft:vi+en"), so a video whose plan holds another signature
    for it is analyzed again."""

    name: str
    settings_class: type  # its settings dataclass ([name] in config.toml), with an `enabled` switch

    def __init__(self, settings) -> None:
        """Built from its settings; cheap (nothing is loaded)."""
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: IndexSettings) -> Analyzer | None:
        """The analyzer these settings ask for, or None when they switch it off."""
        own = settings.feature(cls.name)
        return cls(own) if own.enabled else None

    @property
    @abstractmethod
    def signature(self) -> str:
        """e.g. "tesseract:vi+en"; "" when it cannot run at all (no model for any language)."""

    @abstractmethod
    def load(self) -> None:
        """Load the models now (missing weights raise ModelUnavailableError before any work)."""

    def close(self) -> None:
        """Let go of the models (a worker that is done)."""


class FrameAnalyzer(Analyzer):
    """Reads keyframes: one result per keyframe (`NewKeyframe.analyses[name]`)."""

    # Whether its results from a keyframe's 320 px thumbnail are worth having (a caption is; small
    # on-screen text is not): `evr analyze` then runs it on decoded videos' thumbnails.
    reads_thumbnails: bool = False

    @abstractmethod
    def analyze(self, images: list[np.ndarray]) -> list[Any]:
        """One result per RGB image, in order; None where it could not run."""


class FileAnalyzer(Analyzer):
    """Reads the video file once (its sound track): one result per video (`VideoResult.analyses`)."""

    @abstractmethod
    def analyze_file(self, path: str) -> Any:
        """The result for the whole file, or None when the analyzer could not run."""


class BackendAnalyzer(Analyzer):
    """An analyzer that runs on one of several backends (OCR, speech): the one for this run is
    chosen on first use by `_choose` (cheap: it looks for model files and says what is missing),
    or None when no backend can run, and then the analyzer is off for the run (signature "")."""

    _backend: Any = False  # False: not chosen yet

    @abstractmethod
    def _choose(self) -> Any:
        """The backend to use, or None (after a warning that says why)."""

    @property
    def backend(self) -> Any:
        if self._backend is False:
            self._backend = self._choose()
        return self._backend

    @property
    def signature(self) -> str:
        return self.backend.signature if self.backend else ""

    def load(self) -> None:
        if self.backend is not None:
            self.backend.load()

    def close(self) -> None:
        self._backend = False  # chosen and loaded again on next use
