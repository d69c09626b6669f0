"""Persons and poses: one interface, two backends (torchvision, mediapipe), one stored format."""

from __future__ import annotations

import logging

import numpy as np

from evr.storage.features import POSE_LABELS, POSTURES, PersonsInFrame

from ...encoders import ModelUnavailableError, resolve_device
from ..base import FrameAnalyzer
from .mediapipe_backend import MediapipePersons, mediapipe_installed
from .pose_labels import pose_labels
from .settings import PersonSettings
from .torchvision_backend import TorchvisionPersons, weights_cached

log = logging.getLogger(__name__)


class PersonAnalyzer(FrameAnalyzer):
    """Chooses the backend once (see PersonSettings.backend), then counts people, reads their
    poses and masks them, a batch of keyframes at a time."""

    name = "persons"
    settings_class = PersonSettings

    settings: PersonSettings
    _backend: MediapipePersons | TorchvisionPersons | None = None  # chosen on first use

    @property
    def backend(self) -> MediapipePersons | TorchvisionPersons:
        if self._backend is None:
            self._backend = self._choose()
        return self._backend

    @property
    def signature(self) -> str:
        return self.backend.name

    def _choose(self):
        s = self.settings
        if s.backend == "mediapipe":
            return MediapipePersons()
        device = resolve_device(s.device)
        torchvision = TorchvisionPersons(
            device, s.min_score, random_weights=s.weights == "none", detect_size=s.detect_size, mask_size=s.mask_size
        )
        if s.backend == "torchvision":
            torchvision.load()  # raises ModelUnavailableError with a how-to
            return torchvision
        # auto: torchvision where it is cheap to have (cached weights), worth a download (GPU) or
        # the only backend there is (mediapipe is an extra: `pip install "evr[mediapipe]"`).
        if not mediapipe_installed():
            torchvision.load()  # raises ModelUnavailableError saying how to work offline
            return torchvision
        if s.weights == "none" or weights_cached() or device == "cuda":
            try:
                torchvision.load()
                return torchvision
            except ModelUnavailableError as exc:
                log.warning("%s; using the mediapipe backend instead", exc)
        return MediapipePersons()

    def load(self) -> None:
        self.backend.load()

    def close(self) -> None:
        self._backend = None  # chosen and loaded again on next use

    def analyze(self, images: list[np.ndarray]) -> list[PersonsInFrame]:
        return self.backend.analyze(images)


__all__ = ["POSE_LABELS", "POSTURES", "PersonAnalyzer", "PersonSettings", "pose_labels"]
