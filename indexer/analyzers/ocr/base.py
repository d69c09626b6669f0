"""What an OCR backend returns before the analyzer normalises, filters and orders it."""

from __future__ import annotations

from typing import NamedTuple


class RawBox(NamedTuple):
    text: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the image read
    confidence: float  # 0-1
