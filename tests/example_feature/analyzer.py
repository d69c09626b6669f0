"""The example feature's extractor and settings: how bright each keyframe is (its mean luma,
0 = black, 1 = white)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evr.indexer.analyzers import FrameAnalyzer
from evr.storage.rules import between, rule


@dataclass(frozen=True)
class BrightnessSettings:
    enabled: bool = True
    # Luma is read from a frame shrunk by this factor on each side: brightness needs no detail.
    step: int = rule(between(1, 64), default=4)


class BrightnessAnalyzer(FrameAnalyzer):
    name = "brightness"
    settings_class = BrightnessSettings
    settings: BrightnessSettings

    @property
    def signature(self) -> str:
        return f"luma:{self.settings.step}"

    def load(self) -> None:
        pass  # no model

    def analyze(self, images: list[np.ndarray]) -> list[float]:
        step = self.settings.step
        # ITU-R BT.601 luma of the RGB frame, as a share of full scale.
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return [float((image[::step, ::step, :3].astype(np.float32) @ weights).mean() / 255) for image in images]
