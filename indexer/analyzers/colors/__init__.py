"""Colours: the dominant colours of each cell of a 4x4 grid, by a fixed rule on HSV, no model.

Each keyframe is shrunk to 64x48 (area average), every pixel named by the rule below, and each
cell keeps its most common name and a second one that covers at least a quarter of it: 5.4 ms a
1280x720 keyframe on the 2-core development machine, mostly the shrinking.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from evr.storage.features.colors import COLORS, GRID, ColorGrid

from ..base import FrameAnalyzer

SIZE = (64, 48)  # what a keyframe is shrunk to before its pixels are named (width, height)
SECOND_SHARE = 0.25  # a second colour covers at least this share of its cell
NAMES = tuple(COLORS)
# Hue ranges in degrees (0-360) of the chromatic names, where a pixel is saturated and bright
# enough to have a hue; the red range wraps around 0.
HUES = (
    ("red", 345, 360),
    ("red", 0, 12),
    ("orange", 12, 40),
    ("yellow", 40, 70),
    ("green", 70, 160),
    ("cyan", 160, 200),
    ("blue", 200, 260),
    ("purple", 260, 295),
    ("pink", 295, 345),
)
DARK, GREYISH, BRIGHT = 50, 40, 200  # value below: black; saturation below: grey (white when value is above BRIGHT)
BROWN_VALUE = 150  # orange and dark-red hues below this value are brown


@dataclass(frozen=True)
class ColorSettings:
    """[colors]"""

    enabled: bool = True


def name_pixels(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's colour as an index into NAMES (the rule in this module's constants)."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV).astype(np.int32)
    hue, sat, val = hsv[..., 0] * 2, hsv[..., 1], hsv[..., 2]  # OpenCV keeps hue in 0-179
    out = np.full(hue.shape, NAMES.index("grey"), np.int8)
    for name, low, high in HUES:
        out[(hue >= low) & (hue < high)] = NAMES.index(name)
    out[(hue >= 12) & (hue < 45) & (val < BROWN_VALUE)] = NAMES.index("brown")
    grey = sat < GREYISH
    out[grey] = NAMES.index("grey")
    out[grey & (val > BRIGHT)] = NAMES.index("white")
    out[val < DARK] = NAMES.index("black")
    return out


def color_grid(rgb: np.ndarray) -> ColorGrid:
    named = name_pixels(cv2.resize(rgb, SIZE, interpolation=cv2.INTER_AREA))
    h, w = named.shape
    cells = []
    for r in range(GRID):
        for c in range(GRID):
            cell = named[r * h // GRID : (r + 1) * h // GRID, c * w // GRID : (c + 1) * w // GRID]
            counts = np.bincount(cell.ravel(), minlength=len(NAMES))
            first, second = np.argsort(-counts, kind="stable")[:2]
            keep = counts[second] >= SECOND_SHARE * cell.size
            cells.append((NAMES[first], NAMES[second] if keep else None))
    return ColorGrid(cells)


class ColorAnalyzer(FrameAnalyzer):
    name = "colors"
    settings_class = ColorSettings
    settings: ColorSettings

    @property
    def signature(self) -> str:
        return "hsv-grid4-v1"  # the rule's version: a changed rule analyzes the keyframes again

    def load(self) -> None:
        pass  # no model

    def analyze(self, images: list[np.ndarray]) -> list[ColorGrid]:
        return [color_grid(image) for image in images]
