"""Shot boundaries, streamed: one file per detector, behind `ShotDetector` (base.py).

- content.py: PySceneDetect's content and fade detectors on small frames (the CPU default);
- transnetv2.py: the TransNetV2 network (the default where a GPU is).

`[shots] detector = "auto"` is TransNetV2 where the models run on a GPU, the content detector
on a CPU (TransNetV2 reads about 70 frames/s on a 2-core CPU: slower than decoding).
"""

from __future__ import annotations

from dataclasses import replace

from ..pixels import detection_frame
from ..settings import IndexSettings, ShotSettings
from .base import Seen, ShotDetector
from .content import ContentShotDetector

DETECTORS = ("content", "transnetv2")


def chosen(settings: ShotSettings, model_device: str) -> tuple[str, str]:
    """(detector, device it runs on) that `settings` mean where the models run on `model_device`
    (a [clip] device: "auto", "cpu", "cuda")."""
    if settings.detector == "content":
        return "content", "cpu"
    from ..encoders.base import resolve_device

    device = resolve_device(model_device)
    if settings.detector == "auto" and device != "cuda":
        return "content", "cpu"
    return "transnetv2", device


def settled(settings: IndexSettings) -> IndexSettings:
    """`settings` with `[shots] detector = "auto"` made the detector it means on this machine, so
    that decode workers (other processes) need not find out again, nor import torch for it."""
    if settings.shots.detector != "auto":
        return settings
    return replace(settings, shots=replace(settings.shots, detector=chosen(settings.shots, settings.clip.device)[0]))


def make_shot_detector(settings: ShotSettings, fps: float, model_device: str = "cpu") -> ShotDetector:
    detector, device = chosen(settings, model_device)
    if detector == "transnetv2":
        from .transnetv2 import TransNetV2ShotDetector

        return TransNetV2ShotDetector(settings, fps, device)
    return ContentShotDetector(settings, fps)


__all__ = [
    "DETECTORS",
    "ContentShotDetector",
    "Seen",
    "ShotDetector",
    "chosen",
    "detection_frame",
    "make_shot_detector",
    "settled",
]
