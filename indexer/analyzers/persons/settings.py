"""[persons]: people, their poses and where they are, by one of two backends (this package)."""

from __future__ import annotations

from dataclasses import dataclass

from evr.storage.rules import between, one_of, rule

from ...settings import DEVICES

PERSON_BACKENDS = ("auto", "torchvision", "mediapipe")


@dataclass(frozen=True)
class PersonSettings:
    enabled: bool = True
    # auto: torchvision (Keypoint R-CNN + DeepLabV3) when its weights are cached, on a GPU, or
    # where the mediapipe extra is not installed (its weights download on first use); otherwise
    # mediapipe (bundled models, works offline).
    backend: str = rule(one_of(PERSON_BACKENDS), default="auto")
    min_score: float = rule(between(0, 1), default=0.7)  # torchvision detections below this score are dropped
    # torchvision weights: "default" (torchvision's), or "none" = random (tests)
    weights: str = rule(one_of(("default", "none")), default="default")
    device: str = rule(one_of(DEVICES), default="auto")
    # torchvision: Keypoint R-CNN's short side in pixels (800: the size it was trained at; smaller
    # is faster but loses small people), and DeepLabV3's for the mask (stored 160 pixels wide).
    detect_size: int = rule(between(160, 1600), default=800)
    mask_size: int = rule(between(160, 1600), default=320)
